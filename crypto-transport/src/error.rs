use std::io;
use std::path::PathBuf;

use crate::keys::Channel;

/// Why an envelope was rejected. Every variant is counted by its [`RejectReason`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("envelope truncated: {len} bytes, a sealed envelope has at least {min}")]
    Truncated { len: usize, min: usize },
    #[error("bad magic {found:02x?}, expected \"MLD1\"")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported envelope version {found}, this build reads version 1")]
    UnsupportedVersion { found: u8 },
    #[error("unknown flag bits {flags:#04x} set")]
    UnknownFlags { flags: u8 },
    #[error("unknown channel id {found}")]
    UnknownChannel { found: u8 },
    #[error("envelope for channel {found} arrived on channel {expected}")]
    WrongChannel { expected: Channel, found: Channel },
    #[error("key epoch {epoch} is not accepted (current epoch {current})")]
    UnknownEpoch { epoch: u32, current: u32 },
    #[error(
        "authentication failed (channel {channel}, epoch {epoch}, sender {sender_id:016x}): \
         wrong key, wrong channel or tampered message"
    )]
    AuthFailed { channel: Channel, epoch: u32, sender_id: u64 },
    #[error("replayed message: sender {sender_id:016x} seq {seq} was already accepted")]
    Replay { sender_id: u64, seq: u64 },
    #[error(
        "message too old: sender {sender_id:016x} seq {seq} is behind the window (newest {newest})"
    )]
    TooOld { sender_id: u64, seq: u64, newest: u64 },
    /// Authentic, but its payload claims more than the limit. `gap`: sequence numbers it
    /// skipped (see [`OpenError::seq_gap`]).
    #[error("payload of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize, gap: u64 },
    /// Authentic, but its LZ4 body is corrupt. `gap` as for `TooLarge`.
    #[error("lz4 decompression failed")]
    Decompression {
        #[source]
        source: lz4_flex::block::DecompressError,
        gap: u64,
    },
}

/// Stable, bounded label of a rejection, for metrics and rate-limited logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    Truncated,
    BadMagic,
    UnsupportedVersion,
    UnknownFlags,
    UnknownChannel,
    WrongChannel,
    UnknownEpoch,
    AuthFailed,
    Replay,
    TooOld,
    TooLarge,
    Decompression,
}

impl RejectReason {
    /// Every reason, in a fixed order.
    pub const ALL: [RejectReason; 12] = [
        Self::Truncated,
        Self::BadMagic,
        Self::UnsupportedVersion,
        Self::UnknownFlags,
        Self::UnknownChannel,
        Self::WrongChannel,
        Self::UnknownEpoch,
        Self::AuthFailed,
        Self::Replay,
        Self::TooOld,
        Self::TooLarge,
        Self::Decompression,
    ];

    /// The label used in metrics (`reason="auth_failed"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::BadMagic => "bad_magic",
            Self::UnsupportedVersion => "unsupported_version",
            Self::UnknownFlags => "unknown_flags",
            Self::UnknownChannel => "unknown_channel",
            Self::WrongChannel => "wrong_channel",
            Self::UnknownEpoch => "unknown_epoch",
            Self::AuthFailed => "auth_failed",
            Self::Replay => "replay",
            Self::TooOld => "too_old",
            Self::TooLarge => "too_large",
            Self::Decompression => "decompression",
        }
    }

    /// Reasons that, when they persist, mean the deployment is misconfigured (keys, epochs,
    /// versions or endpoints disagree) rather than that the network misbehaved.
    pub const fn is_misconfiguration(self) -> bool {
        matches!(
            self,
            Self::BadMagic
                | Self::UnsupportedVersion
                | Self::UnknownFlags
                | Self::UnknownChannel
                | Self::WrongChannel
                | Self::UnknownEpoch
                | Self::AuthFailed
        )
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl OpenError {
    /// For rejections after authentication: how many sequence numbers this sender skipped
    /// before the rejected message (they are lost and must be counted); 0 otherwise.
    pub const fn seq_gap(&self) -> u64 {
        match self {
            Self::TooLarge { gap, .. } | Self::Decompression { gap, .. } => *gap,
            _ => 0,
        }
    }

    /// The stable label of this rejection.
    pub const fn reason(&self) -> RejectReason {
        match self {
            Self::Truncated { .. } => RejectReason::Truncated,
            Self::BadMagic { .. } => RejectReason::BadMagic,
            Self::UnsupportedVersion { .. } => RejectReason::UnsupportedVersion,
            Self::UnknownFlags { .. } => RejectReason::UnknownFlags,
            Self::UnknownChannel { .. } => RejectReason::UnknownChannel,
            Self::WrongChannel { .. } => RejectReason::WrongChannel,
            Self::UnknownEpoch { .. } => RejectReason::UnknownEpoch,
            Self::AuthFailed { .. } => RejectReason::AuthFailed,
            Self::Replay { .. } => RejectReason::Replay,
            Self::TooOld { .. } => RejectReason::TooOld,
            Self::TooLarge { .. } => RejectReason::TooLarge,
            Self::Decompression { .. } => RejectReason::Decompression,
        }
    }
}

/// Why a payload could not be sealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    #[error("payload of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("operating system random number generator failed")]
    Random(#[source] getrandom::Error),
    #[error("sequence numbers exhausted for sender {sender_id:016x}")]
    SeqExhausted { sender_id: u64 },
}

/// Why the root secret could not be loaded or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    #[error("cannot read root secret {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write root secret {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("root secret {path} already exists; refusing to overwrite it")]
    Exists { path: PathBuf },
    #[error("root secret {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error(
        "root secret {path} has mode {mode:04o}: it must not be readable or writable by group or \
         others (chmod 600 {path})"
    )]
    PermissionsTooOpen { path: PathBuf, mode: u32 },
    #[error("root secret {path} is malformed: {what}; expected 64 hexadecimal characters")]
    Malformed { path: PathBuf, what: &'static str },
    #[error("operating system random number generator failed")]
    Random(#[source] getrandom::Error),
}

/// A key-epoch change that the ring refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("key epoch {requested} is not newer than the current epoch {current}")]
pub struct EpochNotNewer {
    pub current: u32,
    pub requested: u32,
}
