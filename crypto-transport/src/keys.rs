use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::KeyInit;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{EpochNotNewer, SecretError};

/// A logical stream of envelopes; each has its own keys, derived per epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Channel {
    /// `flow.v1`: sniffer → ml-detector.
    Flow = 1,
    /// `detection.v1`: ml-detector → firewall-agent, rag-ingester.
    Detection = 2,
    /// `control.v1`: firewall actions and other control events.
    Control = 3,
    /// Configs stored in etcd.
    Config = 4,
    /// Sealed artifacts written to disk.
    Artifact = 5,
}

impl Channel {
    pub const ALL: [Channel; 5] =
        [Self::Flow, Self::Detection, Self::Control, Self::Config, Self::Artifact];

    /// The name used in key derivation and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Flow => "flow",
            Self::Detection => "detection",
            Self::Control => "control",
            Self::Config => "config",
            Self::Artifact => "artifact",
        }
    }

    /// The channel with this wire id, if any.
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Flow),
            2 => Some(Self::Detection),
            3 => Some(Self::Control),
            4 => Some(Self::Config),
            5 => Some(Self::Artifact),
            _ => None,
        }
    }

    /// The wire id.
    pub const fn id(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The deployment's 32-byte root secret. Zeroed on drop; never printed.
///
/// On disk it is 64 hexadecimal characters (a trailing newline is allowed) in a regular file
/// that only its owner may read or write (mode 0600 or stricter).
#[derive(Clone)]
pub struct RootSecret(Zeroizing<[u8; 32]>);

impl RootSecret {
    /// A fresh secret from the operating system's random number generator.
    pub fn generate() -> Result<Self, SecretError> {
        let mut bytes = Zeroizing::new([0_u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(SecretError::Random)?;
        Ok(Self(bytes))
    }

    /// A secret from raw bytes (tests, or secrets supplied by a secret manager).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Loads the secret from `path`, refusing a file that group or others can access.
    pub fn load(path: &Path) -> Result<Self, SecretError> {
        let read_err = |source| SecretError::Read { path: path.to_owned(), source };
        let meta = fs::metadata(path).map_err(read_err)?;
        if !meta.is_file() {
            return Err(SecretError::NotAFile { path: path.to_owned() });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(SecretError::PermissionsTooOpen { path: path.to_owned(), mode });
        }
        let mut text = Zeroizing::new(fs::read(path).map_err(read_err)?);
        let malformed = |what| SecretError::Malformed { path: path.to_owned(), what };
        let trimmed = text.strip_suffix(b"\n").unwrap_or(&text);
        if trimmed.len() != 64 {
            return Err(malformed("wrong length"));
        }
        let mut bytes = Zeroizing::new([0_u8; 32]);
        hex::decode_to_slice(trimmed, bytes.as_mut()).map_err(|_| malformed("not hexadecimal"))?;
        text.zeroize();
        Ok(Self(bytes))
    }

    /// Writes the secret to a new file with mode 0600 and syncs it; never overwrites.
    pub fn write_new(&self, path: &Path) -> Result<(), SecretError> {
        let write_err = |source| SecretError::Write { path: path.to_owned(), source };
        let mut file =
            fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(
                |e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        SecretError::Exists { path: path.to_owned() }
                    } else {
                        write_err(e)
                    }
                },
            )?;
        // Encoded in place, so no copy of the secret is left in freed memory.
        let mut text = Zeroizing::new([0_u8; 65]);
        hex::encode_to_slice(self.0.as_ref(), &mut text[..64]).expect("64 bytes hold 32 in hex");
        text[64] = b'\n';
        file.write_all(text.as_ref()).and_then(|()| file.sync_all()).map_err(write_err)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir).and_then(|d| d.sync_all()).map_err(write_err)?;
        }
        Ok(())
    }

    /// The AEAD for `channel` at `epoch`: HKDF-SHA256 with no salt, the root secret as input
    /// key material and info `"mldefender/v1/<channel>/<epoch>"`.
    pub(crate) fn derive(&self, channel: Channel, epoch: u32) -> XChaCha20Poly1305 {
        let info = format!("mldefender/v1/{}/{epoch}", channel.name());
        let mut key = Zeroizing::new([0_u8; 32]);
        Hkdf::<Sha256>::new(None, self.0.as_ref())
            .expand(info.as_bytes(), key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        XChaCha20Poly1305::new_from_slice(key.as_ref()).expect("the key is 32 bytes")
    }
}

impl fmt::Debug for RootSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootSecret(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy)]
struct Epochs {
    current: u32,
    /// The epoch before the last rotation and until when it is still accepted.
    previous: Option<(u32, Instant)>,
}

/// The root secret plus the key epochs in force: seals with the current epoch, opens the
/// current one and the previous one until its grace window ends. Shared between sealers and
/// openers (`Arc<KeyRing>`); rotation takes effect on their next message.
#[derive(Debug)]
pub struct KeyRing {
    root: RootSecret,
    grace: Duration,
    current: AtomicU32,
    epochs: RwLock<Epochs>,
}

impl KeyRing {
    /// Grace window after a rotation during which the previous epoch is still accepted.
    pub const DEFAULT_GRACE: Duration = Duration::from_mins(1);

    pub fn new(root: RootSecret, epoch: u32) -> Self {
        Self::with_grace(root, epoch, Self::DEFAULT_GRACE)
    }

    pub fn with_grace(root: RootSecret, epoch: u32, grace: Duration) -> Self {
        Self {
            root,
            grace,
            current: AtomicU32::new(epoch),
            epochs: RwLock::new(Epochs { current: epoch, previous: None }),
        }
    }

    /// The epoch new envelopes are sealed with.
    pub fn current_epoch(&self) -> u32 {
        self.current.load(Ordering::Acquire)
    }

    /// Switches to a newer epoch; the old one stays accepted for the grace window.
    pub fn rotate(&self, new_epoch: u32) -> Result<(), EpochNotNewer> {
        let mut epochs = self.epochs.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if new_epoch <= epochs.current {
            return Err(EpochNotNewer { current: epochs.current, requested: new_epoch });
        }
        epochs.previous = Some((epochs.current, Instant::now() + self.grace));
        epochs.current = new_epoch;
        self.current.store(new_epoch, Ordering::Release);
        Ok(())
    }

    /// Whether envelopes sealed with `epoch` are accepted now.
    pub fn accepts(&self, epoch: u32) -> bool {
        self.accepts_at(epoch, Instant::now())
    }

    /// The current epoch, the previous one during its grace window, and the *next* one: after
    /// a rotation the daemons learn the new epoch from etcd at slightly different moments, and
    /// a sender that switched first must not have its messages dropped by a receiver that has
    /// not switched yet (docs/adr/0007-next-epoch-accepted.md).
    fn accepts_at(&self, epoch: u32, now: Instant) -> bool {
        let epochs = self.epochs.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        epoch == epochs.current
            || Some(epoch) == epochs.current.checked_add(1)
            || epochs.previous.is_some_and(|(prev, until)| epoch == prev && now < until)
    }

    pub(crate) fn cipher(&self, channel: Channel, epoch: u32) -> XChaCha20Poly1305 {
        self.root.derive(channel, epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ids_round_trip_and_unknown_ids_are_none() {
        for channel in Channel::ALL {
            assert_eq!(Channel::from_id(channel.id()), Some(channel));
        }
        for id in [0_u8, 6, 255] {
            assert_eq!(Channel::from_id(id), None);
        }
    }

    #[test]
    fn rotation_keeps_previous_epoch_only_during_grace() {
        let ring = KeyRing::with_grace(RootSecret::from_bytes([7; 32]), 3, Duration::from_secs(10));
        assert!(ring.accepts(3));
        assert!(!ring.accepts(2));
        assert!(ring.accepts(4), "the next epoch: a sender may rotate before this receiver");
        assert!(!ring.accepts(5));
        ring.rotate(4).unwrap();
        assert_eq!(ring.current_epoch(), 4);
        let now = Instant::now();
        assert!(ring.accepts_at(3, now));
        assert!(ring.accepts_at(4, now));
        assert!(ring.accepts_at(5, now));
        assert!(!ring.accepts_at(6, now));
        assert!(!ring.accepts_at(3, now + Duration::from_secs(11)));
        assert!(ring.accepts_at(4, now + Duration::from_secs(11)));
        assert_eq!(ring.rotate(4), Err(EpochNotNewer { current: 4, requested: 4 }));
        assert_eq!(ring.rotate(1), Err(EpochNotNewer { current: 4, requested: 1 }));
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let secret = RootSecret::from_bytes([0xab; 32]);
        let shown = format!("{secret:?} {:?}", KeyRing::new(secret.clone(), 1));
        assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
    }
}
