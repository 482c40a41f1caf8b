//! Configs as stored in etcd: JSON text sealed on the `config` channel (DESIGN §4.4).

use std::sync::Arc;

use mld_crypto_transport::{Channel, KeyRing, OpenError, Opener, SealError, Sealer};

/// Why a stored config could not be opened: a misconfiguration (wrong root secret, an epoch
/// this host does not accept), or something other than a sealed config under the key.
#[derive(Debug, thiserror::Error)]
pub enum UnsealError {
    #[error("not a config sealed for this deployment: {0}")]
    Envelope(#[from] OpenError),
    #[error("the sealed config is not UTF-8 text")]
    NotText,
}

/// Seals config text for storing under a `config/` key.
pub fn seal(ring: &Arc<KeyRing>, text: &str) -> Result<Vec<u8>, SealError> {
    Sealer::new(Arc::clone(ring), Channel::Config)?.seal(text.as_bytes())
}

/// Opens a stored config: authenticity and epoch are checked; a stored value may be read any
/// number of times, so no replay window applies.
pub fn unseal(ring: &Arc<KeyRing>, stored: &[u8]) -> Result<String, UnsealError> {
    let opened = Opener::new(Arc::clone(ring), Channel::Config).open_stored(stored)?;
    String::from_utf8(opened.payload).map_err(|_| UnsealError::NotText)
}

/// The key epoch a stored config was sealed with, if it is an envelope at all.
pub fn epoch_of(stored: &[u8]) -> Option<u32> {
    mld_crypto_transport::Header::parse(stored).ok().map(|h| h.key_epoch)
}

#[cfg(test)]
mod tests {
    use mld_crypto_transport::{RejectReason, RootSecret};

    use super::*;

    #[test]
    fn round_trip_and_misconfigurations() {
        let ring = Arc::new(KeyRing::new(RootSecret::from_bytes([1; 32]), 3));
        let stored = seal(&ring, r#"{"a":1}"#).unwrap();
        assert_eq!(unseal(&ring, &stored).unwrap(), r#"{"a":1}"#);
        assert_eq!(unseal(&ring, &stored).unwrap(), r#"{"a":1}"#, "readable again");
        assert_eq!(epoch_of(&stored), Some(3));

        let other = Arc::new(KeyRing::new(RootSecret::from_bytes([2; 32]), 3));
        let err = unseal(&other, &stored).unwrap_err();
        assert!(matches!(&err, UnsealError::Envelope(e) if e.reason() == RejectReason::AuthFailed));
        let later = Arc::new(KeyRing::new(RootSecret::from_bytes([1; 32]), 9));
        let err = unseal(&later, &stored).unwrap_err();
        assert!(err.to_string().contains("epoch 3"), "{err}");
        assert!(unseal(&ring, br#"{"a":1}"#).is_err(), "plain JSON is not a sealed config");
    }
}
