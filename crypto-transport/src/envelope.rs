use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};

use crate::error::{OpenError, SealError};
use crate::keys::{Channel, KeyRing};
use crate::nonce::NonceSource;
use crate::replay::{ReplayWindow, SeqAccepted, SeqRejected};

/// First four bytes of every envelope.
pub const MAGIC: [u8; 4] = *b"MLD1";
/// The envelope format version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Length of the header (associated data) in bytes.
pub const HEADER_LEN: usize = 4 + 1 + 1 + 4 + 1 + 8 + 8 + NONCE_LEN;
/// Length of the Poly1305 tag that ends every envelope.
pub const TAG_LEN: usize = 16;
/// Largest payload (before compression) that may be sealed or opened.
pub const MAX_PAYLOAD_LEN: usize = 16 * 1024 * 1024;

const NONCE_LEN: usize = 24;
const FLAG_LZ4: u8 = 0b0000_0001;
const KNOWN_FLAGS: u8 = FLAG_LZ4;
/// `lz4_flex`'s size prefix.
const LZ4_PREFIX_LEN: usize = 4;

/// The parsed header of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub flags: u8,
    pub key_epoch: u32,
    pub channel: Channel,
    pub sender_id: u64,
    pub seq: u64,
    pub nonce: [u8; NONCE_LEN],
}

impl Header {
    /// Whether the payload was LZ4-compressed before sealing.
    pub const fn compressed(&self) -> bool {
        self.flags & FLAG_LZ4 != 0
    }

    /// The header's wire form.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0; HEADER_LEN];
        let parts: [&[u8]; 8] = [
            &MAGIC,
            &[self.version],
            &[self.flags],
            &self.key_epoch.to_be_bytes(),
            &[self.channel.id()],
            &self.sender_id.to_be_bytes(),
            &self.seq.to_be_bytes(),
            &self.nonce,
        ];
        let mut at = 0;
        for part in parts {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        out
    }

    /// Parses and checks the header of `envelope` (which must hold at least header + tag).
    pub fn parse(envelope: &[u8]) -> Result<Self, OpenError> {
        let min = HEADER_LEN + TAG_LEN;
        if envelope.len() < min {
            return Err(OpenError::Truncated { len: envelope.len(), min });
        }
        let (magic, rest) = envelope.split_at(4);
        if magic != MAGIC {
            let mut found = [0; 4];
            found.copy_from_slice(magic);
            return Err(OpenError::BadMagic { found });
        }
        let mut r = Reader(rest);
        let version = r.u8();
        if version != VERSION {
            return Err(OpenError::UnsupportedVersion { found: version });
        }
        let flags = r.u8();
        if flags & !KNOWN_FLAGS != 0 {
            return Err(OpenError::UnknownFlags { flags });
        }
        let key_epoch = u32::from_be_bytes(r.array());
        let channel_id = r.u8();
        let channel =
            Channel::from_id(channel_id).ok_or(OpenError::UnknownChannel { found: channel_id })?;
        let sender_id = u64::from_be_bytes(r.array());
        let seq = u64::from_be_bytes(r.array());
        let nonce = r.array();
        Ok(Self { version, flags, key_epoch, channel, sender_id, seq, nonce })
    }
}

/// Reads fixed-size fields from a slice already checked to be long enough.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let (head, tail) = self.0.split_at(N);
        self.0 = tail;
        let mut out = [0; N];
        out.copy_from_slice(head);
        out
    }

    fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }
}

/// Seals payloads for one channel as one sender: a random sender id and a sequence number
/// counting from 0. Not shared between threads; make one per publishing thread.
pub struct Sealer {
    ring: Arc<KeyRing>,
    channel: Channel,
    sender_id: u64,
    next_seq: u64,
    cipher: Option<(u32, XChaCha20Poly1305)>,
    nonces: NonceSource,
    /// LZ4's hash table, kept between messages instead of allocated per message.
    lz4_table: Box<lz4_flex::block::CompressTable>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("channel", &self.channel)
            .field("sender_id", &format_args!("{:016x}", self.sender_id))
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer with a fresh random sender id.
    pub fn new(ring: Arc<KeyRing>, channel: Channel) -> Result<Self, SealError> {
        let mut id = [0_u8; 8];
        getrandom::fill(&mut id).map_err(SealError::Random)?;
        Ok(Self {
            ring,
            channel,
            sender_id: u64::from_be_bytes(id),
            next_seq: 0,
            cipher: None,
            nonces: NonceSource::new()?,
            lz4_table: Box::default(),
        })
    }

    pub const fn sender_id(&self) -> u64 {
        self.sender_id
    }

    pub const fn channel(&self) -> Channel {
        self.channel
    }

    /// The sequence number the next envelope will carry.
    pub const fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Seals `payload` into a new envelope, compressing first when that makes it smaller.
    pub fn seal(&mut self, payload: &[u8]) -> Result<Vec<u8>, SealError> {
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(SealError::TooLarge { len: payload.len(), max: MAX_PAYLOAD_LEN });
        }
        let seq = self.next_seq;
        self.next_seq =
            seq.checked_add(1).ok_or(SealError::SeqExhausted { sender_id: self.sender_id })?;
        let nonce = self.nonces.next()?;

        // Header first as a placeholder: its flags depend on whether compression pays.
        let max_body = LZ4_PREFIX_LEN + lz4_flex::block::get_maximum_output_size(payload.len());
        let mut out = Vec::with_capacity(HEADER_LEN + max_body + TAG_LEN);
        out.resize(HEADER_LEN, 0);
        let compressed = self.append_body(payload, &mut out);
        let header = Header {
            version: VERSION,
            flags: if compressed { FLAG_LZ4 } else { 0 },
            key_epoch: self.ring.current_epoch(),
            channel: self.channel,
            sender_id: self.sender_id,
            seq,
            nonce,
        };
        out[..HEADER_LEN].copy_from_slice(&header.encode());
        let cipher = self.cipher_for(header.key_epoch);
        let (aad, text) = out.split_at_mut(HEADER_LEN);
        let tag = cipher
            .encrypt_inout_detached(&XNonce::from(nonce), aad, text.into())
            .expect("XChaCha20-Poly1305 accepts messages far larger than MAX_PAYLOAD_LEN");
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Appends the payload to `out`, LZ4-compressed (size-prefixed, as `lz4_flex` reads it)
    /// when that is smaller, and says whether it was compressed.
    fn append_body(&mut self, payload: &[u8], out: &mut Vec<u8>) -> bool {
        // LZ4 cannot shrink a payload shorter than its own size prefix plus a token.
        if payload.len() > LZ4_PREFIX_LEN + 1 {
            let start = out.len();
            let max = lz4_flex::block::get_maximum_output_size(payload.len());
            out.resize(start + LZ4_PREFIX_LEN + max, 0);
            let size =
                u32::try_from(payload.len()).expect("payload length is below MAX_PAYLOAD_LEN");
            out[start..start + LZ4_PREFIX_LEN].copy_from_slice(&size.to_le_bytes());
            let written = lz4_flex::block::compress_into_with_table(
                payload,
                &mut out[start + LZ4_PREFIX_LEN..],
                &mut self.lz4_table,
            );
            match written {
                Ok(n) if LZ4_PREFIX_LEN + n < payload.len() => {
                    out.truncate(start + LZ4_PREFIX_LEN + n);
                    return true;
                }
                _ => out.truncate(start),
            }
        }
        out.extend_from_slice(payload);
        false
    }

    fn cipher_for(&mut self, epoch: u32) -> &XChaCha20Poly1305 {
        if self.cipher.as_ref().is_none_or(|(e, _)| *e != epoch) {
            self.cipher = Some((epoch, self.ring.cipher(self.channel, epoch)));
        }
        &self.cipher.as_ref().expect("set above").1
    }
}

/// An opened envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub header: Header,
    pub payload: Vec<u8>,
    /// Sequence numbers from this sender skipped since the previous one (see
    /// [`SeqAccepted`]).
    pub seq: SeqAccepted,
}

struct SenderState {
    window: ReplayWindow,
    last_seen: Instant,
}

/// Opens envelopes of one channel from any number of senders, rejecting replays.
pub struct Opener {
    ring: Arc<KeyRing>,
    channel: Channel,
    ciphers: Vec<(u32, XChaCha20Poly1305)>,
    senders: HashMap<u64, SenderState>,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("channel", &self.channel)
            .field("senders", &self.senders.len())
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// Senders remembered at most; the least recently heard one is forgotten beyond that.
    pub const MAX_SENDERS: usize = 4096;

    pub fn new(ring: Arc<KeyRing>, channel: Channel) -> Self {
        Self { ring, channel, ciphers: Vec::new(), senders: HashMap::new() }
    }

    pub const fn channel(&self) -> Channel {
        self.channel
    }

    /// Number of senders with a replay window.
    pub fn senders(&self) -> usize {
        self.senders.len()
    }

    /// Authenticates, decrypts, decompresses and replay-checks one envelope.
    pub fn open(&mut self, envelope: &[u8]) -> Result<Opened, OpenError> {
        let (header, body) = self.authenticate(envelope, true)?;
        // Authentic from here on: record the sequence number before anything else can fail,
        // so that an authentic but undecodable message cannot be replayed either.
        let seq = self
            .window_for(header.sender_id)
            .accept(header.seq)
            .map_err(|e| seq_error(&header, e))?;
        let payload = if header.compressed() { decompress(&body, seq.gap)? } else { body };
        Ok(Opened { header, payload, seq })
    }

    /// Authenticates, decrypts and decompresses a *stored* envelope (a config value in etcd,
    /// an artifact on disk), which is legitimately read more than once: channel, epoch and
    /// tag are checked as in [`Opener::open`], but no replay window is consulted or updated.
    pub fn open_stored(&mut self, envelope: &[u8]) -> Result<Opened, OpenError> {
        let (header, body) = self.authenticate(envelope, false)?;
        let payload = if header.compressed() { decompress(&body, 0)? } else { body };
        Ok(Opened { header, payload, seq: SeqAccepted { gap: 0, late: false } })
    }

    /// Checks the header (and, when `replay`, the sender's window) and decrypts the body.
    fn authenticate(
        &mut self,
        envelope: &[u8],
        replay: bool,
    ) -> Result<(Header, Vec<u8>), OpenError> {
        let header = Header::parse(envelope)?;
        if header.channel != self.channel {
            return Err(OpenError::WrongChannel { expected: self.channel, found: header.channel });
        }
        if !self.ring.accepts(header.key_epoch) {
            return Err(OpenError::UnknownEpoch {
                epoch: header.key_epoch,
                current: self.ring.current_epoch(),
            });
        }
        if replay && let Some(state) = self.senders.get(&header.sender_id) {
            state.window.check(header.seq).map_err(|e| seq_error(&header, e))?;
        }

        let (aad, rest) = envelope.split_at(HEADER_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut body = ciphertext.to_vec();
        let tag = Tag::try_from(tag).expect("split at TAG_LEN");
        self.cipher_for(header.key_epoch)
            .decrypt_inout_detached(
                &XNonce::from(header.nonce),
                aad,
                body.as_mut_slice().into(),
                &tag,
            )
            .map_err(|_| OpenError::AuthFailed {
                channel: header.channel,
                epoch: header.key_epoch,
                sender_id: header.sender_id,
            })?;
        Ok((header, body))
    }

    fn cipher_for(&mut self, epoch: u32) -> &XChaCha20Poly1305 {
        let index = if let Some(i) = self.ciphers.iter().position(|(e, _)| *e == epoch) {
            i
        } else {
            // Keep only epochs the ring still accepts, then add this one.
            let ring = &self.ring;
            self.ciphers.retain(|(e, _)| ring.accepts(*e));
            self.ciphers.push((epoch, ring.cipher(self.channel, epoch)));
            self.ciphers.len() - 1
        };
        &self.ciphers[index].1
    }

    fn window_for(&mut self, sender_id: u64) -> &mut ReplayWindow {
        let now = Instant::now();
        if !self.senders.contains_key(&sender_id)
            && self.senders.len() >= Self::MAX_SENDERS
            && let Some(oldest) =
                self.senders.iter().min_by_key(|(_, s)| s.last_seen).map(|(id, _)| *id)
        {
            self.senders.remove(&oldest);
        }
        let state = self
            .senders
            .entry(sender_id)
            .or_insert_with(|| SenderState { window: ReplayWindow::new(), last_seen: now });
        state.last_seen = now;
        &mut state.window
    }
}

fn seq_error(header: &Header, rejected: SeqRejected) -> OpenError {
    match rejected {
        SeqRejected::Duplicate => {
            OpenError::Replay { sender_id: header.sender_id, seq: header.seq }
        }
        SeqRejected::TooOld { newest } => {
            OpenError::TooOld { sender_id: header.sender_id, seq: header.seq, newest }
        }
    }
}

/// `gap`: sequence numbers the (authentic) message skipped, carried by the errors.
fn decompress(body: &[u8], gap: u64) -> Result<Vec<u8>, OpenError> {
    // Check the claimed size before allocating for it.
    let claimed = body
        .get(..LZ4_PREFIX_LEN)
        .map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as usize)
        .ok_or(OpenError::Decompression {
            source: lz4_flex::block::DecompressError::ExpectedAnotherByte,
            gap,
        })?;
    if claimed > MAX_PAYLOAD_LEN {
        return Err(OpenError::TooLarge { len: claimed, max: MAX_PAYLOAD_LEN, gap });
    }
    lz4_flex::block::decompress_size_prepended(body)
        .map_err(|source| OpenError::Decompression { source, gap })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::RootSecret;

    /// Seals `body` verbatim with the given flags, bypassing the sealer's own compression.
    fn forge(ring: &KeyRing, flags: u8, body: &[u8]) -> Vec<u8> {
        forge_seq(ring, 0, flags, body)
    }

    fn forge_seq(ring: &KeyRing, seq: u64, flags: u8, body: &[u8]) -> Vec<u8> {
        let header = Header {
            version: VERSION,
            flags,
            key_epoch: ring.current_epoch(),
            channel: Channel::Flow,
            sender_id: 1,
            seq,
            nonce: [3; NONCE_LEN],
        };
        let mut out = header.encode().to_vec();
        out.extend_from_slice(body);
        let (aad, text) = out.split_at_mut(HEADER_LEN);
        let tag = ring
            .cipher(Channel::Flow, header.key_epoch)
            .encrypt_inout_detached(&XNonce::from(header.nonce), aad, text.into())
            .unwrap();
        out.extend_from_slice(&tag);
        out
    }

    #[test]
    fn authentic_but_corrupt_lz4_is_a_decompression_error() {
        let ring = Arc::new(KeyRing::new(RootSecret::from_bytes([1; 32]), 1));
        let mut opener = Opener::new(Arc::clone(&ring), Channel::Flow);
        let err = opener.open(&forge(&ring, FLAG_LZ4, &[10, 0, 0, 0, 0xff, 0xff])).unwrap_err();
        assert_eq!(err.reason(), crate::RejectReason::Decompression, "{err}");
        let err = opener.open(&forge(&ring, FLAG_LZ4, &[1, 2])).unwrap_err();
        assert_eq!(err.reason(), crate::RejectReason::Replay, "the seq was recorded: {err}");
        // A later corrupt message still reports the sequence numbers it skipped.
        let err = opener.open(&forge_seq(&ring, 5, FLAG_LZ4, &[10, 0, 0, 0, 0xff])).unwrap_err();
        assert_eq!((err.reason(), err.seq_gap()), (crate::RejectReason::Decompression, 4), "{err}");
    }

    #[test]
    fn decompression_bomb_is_refused_before_allocation() {
        let ring = Arc::new(KeyRing::new(RootSecret::from_bytes([1; 32]), 1));
        let mut opener = Opener::new(Arc::clone(&ring), Channel::Flow);
        let claimed = u32::try_from(MAX_PAYLOAD_LEN + 1).unwrap().to_le_bytes();
        let err =
            opener.open(&forge(&ring, FLAG_LZ4, &[&claimed[..], &[0x10, 0]].concat())).unwrap_err();
        assert!(matches!(err, OpenError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn oversized_payload_is_refused_by_the_sealer() {
        let ring = Arc::new(KeyRing::new(RootSecret::from_bytes([1; 32]), 1));
        let mut sealer = Sealer::new(ring, Channel::Flow).unwrap();
        let err = sealer.seal(&vec![0; MAX_PAYLOAD_LEN + 1]).unwrap_err();
        assert!(matches!(err, SealError::TooLarge { .. }), "{err}");
        assert_eq!(sealer.next_seq(), 0, "a refused payload consumes no sequence number");
    }

    #[test]
    fn header_layout_is_exactly_the_design() {
        let ring = Arc::new(KeyRing::new(RootSecret::from_bytes([1; 32]), 0x0102_0304));
        let mut sealer = Sealer::new(ring, Channel::Detection).unwrap();
        sealer.seal(b"first").unwrap();
        let sealed = sealer.seal(b"").unwrap();
        assert_eq!(HEADER_LEN, 51);
        assert_eq!(&sealed[0..4], b"MLD1");
        assert_eq!(sealed[4], 1, "version");
        assert_eq!(sealed[5], 0, "flags: empty payload is not compressed");
        assert_eq!(&sealed[6..10], &[1, 2, 3, 4], "epoch, big-endian");
        assert_eq!(sealed[10], 2, "channel id of detection");
        assert_eq!(&sealed[11..19], &sealer.sender_id().to_be_bytes());
        assert_eq!(&sealed[19..27], &1_u64.to_be_bytes(), "seq, big-endian");
        assert_eq!(sealed.len(), HEADER_LEN + TAG_LEN);
    }
}
