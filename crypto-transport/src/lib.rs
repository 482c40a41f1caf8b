//! Sealed envelope v1 (DESIGN.md §4.1): every bus message and on-disk artifact of ML Defender.
//!
//! ```text
//! magic "MLD1" | version u8 | flags u8 | key_epoch u32 | channel u8 | sender_id u64 | seq u64
//!   | nonce [24] | ciphertext + 16-byte Poly1305 tag          (integers big-endian)
//! ```
//!
//! Design:
//! - XChaCha20-Poly1305 with a random 24-byte nonce per message, so no nonce can repeat across
//!   restarts; the whole 51-byte header is associated data, so no header bit can be changed.
//!   Nonces come from a per-sealer ChaCha20 keystream keyed from the operating system's
//!   random number generator at creation (a syscall per message costs more than the
//!   encryption of a small event); a sealer must not be shared across `fork()`.
//! - The payload is LZ4-compressed (block format, size-prefixed) before sealing, and only when
//!   that makes it smaller; flag bit 0 says so.
//! - Keys: one 32-byte [`RootSecret`] per deployment; per channel and epoch the key is
//!   HKDF-SHA256(root, info = `"mldefender/v1/" + channel name + "/" + epoch`). A [`KeyRing`]
//!   seals with the current epoch and opens the current and, during a grace window after a
//!   rotation, the previous one.
//! - Anti-replay: an [`Opener`] keeps a sliding [`ReplayWindow`] of seen sequence numbers per
//!   (channel, sender id); sender ids are random per [`Sealer`], so a restarted sender starts
//!   a fresh window. The window also reports gaps, which the bus counts as lost messages.
//! - Every rejection is an [`OpenError`] whose [`OpenError::reason`] is a stable label for
//!   metrics; nothing here panics on untrusted bytes.
//!
//! Limits: payloads up to [`MAX_PAYLOAD_LEN`]; the replay window remembers the last
//! [`REPLAY_WINDOW`] sequence numbers per sender and at most [`Opener::MAX_SENDERS`] senders.
//!
//! ```
//! use std::sync::Arc;
//! use mld_crypto_transport::{Channel, KeyRing, Opener, RootSecret, Sealer};
//!
//! let ring = Arc::new(KeyRing::new(RootSecret::generate()?, 1));
//! let mut sealer = Sealer::new(Arc::clone(&ring), Channel::Flow)?;
//! let mut opener = Opener::new(ring, Channel::Flow);
//!
//! let sealed = sealer.seal(b"hello")?;
//! let opened = opener.open(&sealed)?;
//! assert_eq!(opened.payload, b"hello");
//! assert!(opener.open(&sealed).is_err(), "a replay is rejected");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod envelope;
mod error;
mod keys;
mod nonce;
mod replay;

pub use envelope::{
    HEADER_LEN, Header, MAGIC, MAX_PAYLOAD_LEN, Opened, Opener, Sealer, TAG_LEN, VERSION,
};
pub use error::{EpochNotNewer, OpenError, RejectReason, SealError, SecretError};
pub use keys::{Channel, KeyRing, RootSecret};
pub use replay::{REPLAY_WINDOW, ReplayWindow, SeqAccepted, SeqRejected};
