use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use zeroize::Zeroizing;

use crate::SealError;

const NONCE_LEN: usize = 24;
/// Nonces generated per refill.
const BATCH: usize = 64;

/// Random nonces from a ChaCha20 keystream with a key and IV drawn from the operating system.
///
/// The keystream of a random key is indistinguishable from random bytes and does not repeat
/// for 2^70 bytes, so consecutive nonces never collide within a process, and a new process
/// (new key) draws independently: no counter state survives a restart.
pub(crate) struct NonceSource {
    stream: ChaCha20,
    buf: Zeroizing<[u8; NONCE_LEN * BATCH]>,
    next: usize,
}

impl NonceSource {
    pub(crate) fn new() -> Result<Self, SealError> {
        let mut seed = Zeroizing::new([0_u8; 32 + 12]);
        getrandom::fill(seed.as_mut()).map_err(SealError::Random)?;
        let (key, iv) = seed.split_at(32);
        let stream = ChaCha20::new_from_slices(key, iv).expect("32-byte key and 12-byte IV");
        Ok(Self { stream, buf: Zeroizing::new([0; NONCE_LEN * BATCH]), next: BATCH })
    }

    pub(crate) fn next(&mut self) -> [u8; NONCE_LEN] {
        if self.next == BATCH {
            self.buf.fill(0);
            self.stream.apply_keystream(self.buf.as_mut());
            self.next = 0;
        }
        let mut nonce = [0; NONCE_LEN];
        nonce.copy_from_slice(&self.buf[self.next * NONCE_LEN..][..NONCE_LEN]);
        self.next += 1;
        nonce
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_distinct_within_and_across_sources() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..4 {
            let mut source = NonceSource::new().unwrap();
            for _ in 0..(BATCH * 10 + 3) {
                assert!(seen.insert(source.next()), "nonce repeated");
            }
        }
    }

    #[test]
    fn nonces_are_not_all_zero_or_constant_bytes() {
        let mut source = NonceSource::new().unwrap();
        let nonces: Vec<_> = (0..BATCH * 2).map(|_| source.next()).collect();
        // Every byte position takes many values across 128 nonces.
        for i in 0..NONCE_LEN {
            let distinct: std::collections::HashSet<u8> = nonces.iter().map(|n| n[i]).collect();
            assert!(distinct.len() > 32, "byte {i} takes only {} values", distinct.len());
        }
    }
}
