use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use zeroize::Zeroizing;

use crate::SealError;

const NONCE_LEN: usize = 24;
/// Nonces generated per refill.
const BATCH: usize = 64;

/// Random nonces from a ChaCha20 keystream with a key and IV drawn from the operating system.
///
/// The keystream of a random key is indistinguishable from random bytes, so nonces are random;
/// within one key they never repeat (the keystream is 256 GiB long: IETF ChaCha20 has a 32-bit
/// block counter), and when it runs out (after about 1.1e10 nonces) the source reseeds from the
/// operating system. A new process draws a new key: no counter state survives a restart.
pub(crate) struct NonceSource {
    stream: ChaCha20,
    buf: Zeroizing<[u8; NONCE_LEN * BATCH]>,
    next: usize,
}

impl NonceSource {
    pub(crate) fn new() -> Result<Self, SealError> {
        Ok(Self {
            stream: Self::seeded()?,
            buf: Zeroizing::new([0; NONCE_LEN * BATCH]),
            next: BATCH,
        })
    }

    fn seeded() -> Result<ChaCha20, SealError> {
        let mut seed = Zeroizing::new([0_u8; 32 + 12]);
        getrandom::fill(seed.as_mut()).map_err(SealError::Random)?;
        let (key, iv) = seed.split_at(32);
        Ok(ChaCha20::new_from_slices(key, iv).expect("32-byte key and 12-byte IV"))
    }

    pub(crate) fn next(&mut self) -> Result<[u8; NONCE_LEN], SealError> {
        if self.next == BATCH {
            self.buf.fill(0);
            if self.stream.try_apply_keystream(self.buf.as_mut()).is_err() {
                // Keystream exhausted: a fresh key from the OS.
                self.stream = Self::seeded()?;
                self.stream.apply_keystream(self.buf.as_mut());
            }
            self.next = 0;
        }
        let mut nonce = [0; NONCE_LEN];
        nonce.copy_from_slice(&self.buf[self.next * NONCE_LEN..][..NONCE_LEN]);
        self.next += 1;
        Ok(nonce)
    }

    /// Moves the keystream to its last blocks, to test reseeding.
    #[cfg(test)]
    fn near_exhaustion(&mut self) {
        use chacha20::cipher::StreamCipherSeek;
        self.stream.seek((1_u64 << 38) - 64 * 30);
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
                assert!(seen.insert(source.next().unwrap()), "nonce repeated");
            }
        }
    }

    #[test]
    fn an_exhausted_keystream_reseeds_instead_of_panicking() {
        let mut source = NonceSource::new().unwrap();
        source.near_exhaustion();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..BATCH * 4 {
            assert!(seen.insert(source.next().unwrap()));
        }
    }

    #[test]
    fn nonces_are_not_all_zero_or_constant_bytes() {
        let mut source = NonceSource::new().unwrap();
        let nonces: Vec<_> = (0..BATCH * 2).map(|_| source.next().unwrap()).collect();
        // Every byte position takes many values across 128 nonces.
        for i in 0..NONCE_LEN {
            let distinct: std::collections::HashSet<u8> = nonces.iter().map(|n| n[i]).collect();
            assert!(distinct.len() > 32, "byte {i} takes only {} values", distinct.len());
        }
    }
}
