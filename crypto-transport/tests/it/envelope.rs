use std::sync::Arc;
use std::time::Duration;

use mld_crypto_transport::{
    Channel, HEADER_LEN, KeyRing, OpenError, Opener, REPLAY_WINDOW, RejectReason, RootSecret,
    Sealer, SeqAccepted, TAG_LEN,
};
use proptest::prelude::*;

fn ring(secret: u8, epoch: u32) -> Arc<KeyRing> {
    Arc::new(KeyRing::new(RootSecret::from_bytes([secret; 32]), epoch))
}

fn pair(channel: Channel) -> (Sealer, Opener) {
    let ring = ring(1, 1);
    (Sealer::new(Arc::clone(&ring), channel).unwrap(), Opener::new(ring, channel))
}

/// Deterministic payloads: `kind` 0 random (incompressible), 1 repetitive, 2 zeros.
fn payload(len: usize, seed: u64, kind: u8) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|i| match kind {
            0 => {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            }
            1 => b"src=10.0.0.1 dst=10.0.0.2 dport=445 "[i % 36],
            _ => 0,
        })
        .collect()
}

fn reason(result: Result<mld_crypto_transport::Opened, OpenError>) -> RejectReason {
    result.expect_err("must be rejected").reason()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_any_size_up_to_1_mib(
        len in prop_oneof![0..=256_usize, 257..=65_536_usize, 65_537..=1_048_576_usize],
        seed in any::<u64>(),
        kind in 0..3_u8,
    ) {
        let (mut sealer, mut opener) = pair(Channel::Detection);
        let data = payload(len, seed, kind);
        let sealed = sealer.seal(&data).unwrap();
        let opened = opener.open(&sealed).unwrap();
        prop_assert_eq!(&opened.payload, &data);
        prop_assert_eq!(opened.header.channel, Channel::Detection);
        prop_assert_eq!(opened.header.sender_id, sealer.sender_id());
        // Compression only when it shrinks: a compressed envelope is smaller than the
        // uncompressed one would be.
        if opened.header.compressed() {
            prop_assert!(sealed.len() < HEADER_LEN + data.len() + TAG_LEN);
        } else {
            prop_assert_eq!(sealed.len(), HEADER_LEN + data.len() + TAG_LEN);
        }
    }

    #[test]
    fn arbitrary_bytes_are_rejected_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let (_, mut opener) = pair(Channel::Flow);
        prop_assert!(opener.open(&bytes).is_err());
    }

    #[test]
    fn valid_header_with_arbitrary_body_is_rejected(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let (mut sealer, mut opener) = pair(Channel::Flow);
        let mut sealed = sealer.seal(b"genuine").unwrap();
        sealed.truncate(HEADER_LEN);
        sealed.extend_from_slice(&body);
        prop_assert!(opener.open(&sealed).is_err());
    }
}

#[test]
fn boundary_sizes_round_trip() {
    for len in [0, 1, 4, 5, 6, 15, 16, 17, 63, 64, 65, 1400, 1_048_576] {
        for kind in 0..3 {
            let (mut sealer, mut opener) = pair(Channel::Flow);
            let data = payload(len, 7, kind);
            let opened = opener.open(&sealer.seal(&data).unwrap()).unwrap();
            assert_eq!(opened.payload, data, "len {len} kind {kind}");
        }
    }
}

#[test]
fn compression_is_used_only_when_it_shrinks() {
    let (mut sealer, mut opener) = pair(Channel::Flow);
    let repetitive = payload(4096, 1, 1);
    let random = payload(4096, 1, 0);
    let a = opener.open(&sealer.seal(&repetitive).unwrap()).unwrap();
    let b = opener.open(&sealer.seal(&random).unwrap()).unwrap();
    assert!(a.header.compressed());
    assert!(!b.header.compressed());
}

#[test]
fn every_single_bit_flip_is_rejected() {
    for data in [payload(100, 3, 0), payload(300, 3, 1), Vec::new()] {
        let (mut sealer, mut opener) = pair(Channel::Flow);
        let sealed = sealer.seal(&data).unwrap();
        for byte in 0..sealed.len() {
            for bit in 0..8 {
                let mut tampered = sealed.clone();
                tampered[byte] ^= 1 << bit;
                let err = opener.open(&tampered).expect_err("a flipped bit must be rejected");
                let expected: &[RejectReason] = match byte {
                    0..4 => &[RejectReason::BadMagic],
                    4 => &[RejectReason::UnsupportedVersion],
                    5 => &[RejectReason::UnknownFlags, RejectReason::AuthFailed],
                    6..10 => &[RejectReason::UnknownEpoch],
                    10 => &[RejectReason::UnknownChannel, RejectReason::WrongChannel],
                    _ => &[RejectReason::AuthFailed],
                };
                assert!(
                    expected.contains(&err.reason()),
                    "byte {byte} bit {bit}: {err} (len {})",
                    data.len()
                );
            }
        }
        // Nothing above touched the replay window: the genuine message still opens.
        assert_eq!(opener.open(&sealed).unwrap().payload, data);
    }
}

#[test]
fn every_truncation_is_rejected() {
    let (mut sealer, mut opener) = pair(Channel::Flow);
    let sealed = sealer.seal(&payload(200, 9, 1)).unwrap();
    for len in 0..sealed.len() {
        assert!(opener.open(&sealed[..len]).is_err(), "prefix of {len} bytes");
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert_eq!(reason(opener.open(&longer)), RejectReason::AuthFailed);
    assert!(opener.open(&sealed).is_ok());
}

#[test]
fn wrong_root_secret_is_an_authentication_failure() {
    let mut sealer = Sealer::new(ring(1, 1), Channel::Flow).unwrap();
    let mut opener = Opener::new(ring(2, 1), Channel::Flow);
    let err = opener.open(&sealer.seal(b"secret").unwrap()).unwrap_err();
    assert!(matches!(err, OpenError::AuthFailed { epoch: 1, channel: Channel::Flow, .. }), "{err}");
}

#[test]
fn wrong_channel_is_rejected_even_when_relabelled() {
    let ring = ring(1, 1);
    let mut sealer = Sealer::new(Arc::clone(&ring), Channel::Flow).unwrap();
    let mut opener = Opener::new(ring, Channel::Detection);
    let sealed = sealer.seal(b"flow event").unwrap();
    assert!(matches!(
        opener.open(&sealed).unwrap_err(),
        OpenError::WrongChannel { expected: Channel::Detection, found: Channel::Flow }
    ));
    // Rewriting the channel byte does not help: the key and the associated data differ.
    let mut relabelled = sealed;
    relabelled[10] = Channel::Detection.id();
    assert_eq!(reason(opener.open(&relabelled)), RejectReason::AuthFailed);
}

#[test]
fn replay_is_rejected_and_does_not_disturb_later_messages() {
    let (mut sealer, mut opener) = pair(Channel::Flow);
    let first = sealer.seal(b"one").unwrap();
    let second = sealer.seal(b"two").unwrap();
    opener.open(&first).unwrap();
    assert!(matches!(opener.open(&first).unwrap_err(), OpenError::Replay { seq: 0, .. }));
    assert_eq!(opener.open(&second).unwrap().payload, b"two");
    assert_eq!(reason(opener.open(&second)), RejectReason::Replay);
}

#[test]
fn reordering_within_the_window_is_accepted_and_reported() {
    let (mut sealer, mut opener) = pair(Channel::Flow);
    let sealed: Vec<_> = (0..6).map(|i| sealer.seal(&[i]).unwrap()).collect();
    let order = [0, 2, 1, 5, 3, 4];
    let seen: Vec<_> = order.iter().map(|&i| opener.open(&sealed[i]).unwrap().seq).collect();
    let gap = |gap| SeqAccepted { gap, late: false };
    let late = SeqAccepted { gap: 0, late: true };
    assert_eq!(seen, [gap(0), gap(1), late, gap(2), late, late]);
    for s in &sealed {
        assert_eq!(reason(opener.open(s)), RejectReason::Replay);
    }
}

#[test]
fn reordering_beyond_the_window_is_too_old() {
    let (mut sealer, mut opener) = pair(Channel::Flow);
    let count = usize::try_from(REPLAY_WINDOW).unwrap() + 2;
    let sealed: Vec<_> = (0..count).map(|_| sealer.seal(b"x").unwrap()).collect();
    opener.open(&sealed[count - 1]).unwrap();
    assert!(matches!(opener.open(&sealed[0]).unwrap_err(), OpenError::TooOld { seq: 0, .. }));
    assert_eq!(reason(opener.open(&sealed[1])), RejectReason::TooOld);
    // The oldest number still inside the window is accepted.
    assert!(opener.open(&sealed[2]).is_ok());
}

#[test]
fn restarted_sender_gets_a_new_id_and_is_accepted_from_seq_zero() {
    let ring = ring(1, 1);
    let mut opener = Opener::new(Arc::clone(&ring), Channel::Flow);
    let mut before = Sealer::new(Arc::clone(&ring), Channel::Flow).unwrap();
    for _ in 0..100 {
        opener.open(&before.seal(b"before").unwrap()).unwrap();
    }
    let mut after = Sealer::new(ring, Channel::Flow).unwrap();
    assert_ne!(after.sender_id(), before.sender_id());
    let opened = opener.open(&after.seal(b"after restart").unwrap()).unwrap();
    assert_eq!(opened.header.seq, 0);
    assert_eq!(opened.payload, b"after restart");
    assert_eq!(opener.senders(), 2);
}

#[test]
fn nonces_are_never_reused() {
    let (mut sealer, _) = pair(Channel::Flow);
    let mut nonces = std::collections::HashSet::new();
    for _ in 0..10_000 {
        let sealed = sealer.seal(b"same payload").unwrap();
        assert!(nonces.insert(sealed[HEADER_LEN - 24..HEADER_LEN].to_vec()));
    }
}

#[test]
fn epoch_rotation_accepts_previous_epoch_during_grace_only() {
    let ring = Arc::new(KeyRing::with_grace(
        RootSecret::from_bytes([5; 32]),
        7,
        Duration::from_millis(200),
    ));
    let mut sealer = Sealer::new(Arc::clone(&ring), Channel::Control).unwrap();
    let mut opener = Opener::new(Arc::clone(&ring), Channel::Control);
    let old = [sealer.seal(b"a").unwrap(), sealer.seal(b"b").unwrap(), sealer.seal(b"c").unwrap()];
    opener.open(&old[0]).unwrap();

    ring.rotate(8).unwrap();
    let new = sealer.seal(b"new").unwrap();
    let opened = opener.open(&new).unwrap();
    assert_eq!(opened.header.key_epoch, 8, "the sealer switches on its next message");
    assert_eq!(opener.open(&old[1]).unwrap().header.key_epoch, 7, "grace window");

    std::thread::sleep(Duration::from_millis(400));
    assert!(matches!(
        opener.open(&old[2]).unwrap_err(),
        OpenError::UnknownEpoch { epoch: 7, current: 8 }
    ));
}

#[test]
fn a_sender_that_rotated_first_is_still_understood() {
    // The sender learnt epoch 5 from etcd before the receiver did: its messages must not be
    // dropped, and once the receiver rotates too, both sides agree.
    let sender_ring = ring(2, 4);
    let receiver_ring = ring(2, 4);
    let mut sealer = Sealer::new(Arc::clone(&sender_ring), Channel::Flow).unwrap();
    let mut opener = Opener::new(Arc::clone(&receiver_ring), Channel::Flow);
    sender_ring.rotate(5).unwrap();
    let early = opener.open(&sealer.seal(b"early").unwrap()).unwrap();
    assert_eq!((early.header.key_epoch, early.payload.as_slice()), (5, &b"early"[..]));
    receiver_ring.rotate(5).unwrap();
    assert_eq!(opener.open(&sealer.seal(b"later").unwrap()).unwrap().payload, b"later");
    // Two epochs ahead is not "next": rejected.
    sender_ring.rotate(7).unwrap();
    assert!(matches!(
        opener.open(&sealer.seal(b"x").unwrap()).unwrap_err(),
        OpenError::UnknownEpoch { epoch: 7, current: 5 }
    ));
}

#[test]
fn stored_envelopes_open_any_number_of_times_but_are_still_authenticated() {
    let keys = ring(3, 1);
    let mut sealer = Sealer::new(Arc::clone(&keys), Channel::Config).unwrap();
    let mut opener = Opener::new(keys, Channel::Config);
    let stored = sealer.seal(br#"{"verdict":{"malicious_score":0.9}}"#).unwrap();
    for _ in 0..3 {
        assert_eq!(
            opener.open_stored(&stored).unwrap().payload,
            br#"{"verdict":{"malicious_score":0.9}}"#
        );
    }
    let mut tampered = stored.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(opener.open_stored(&tampered).unwrap_err().reason(), RejectReason::AuthFailed);
    let mut other = Opener::new(ring(4, 1), Channel::Config);
    assert_eq!(other.open_stored(&stored).unwrap_err().reason(), RejectReason::AuthFailed);
}

#[test]
fn unknown_epoch_is_rejected_before_decryption() {
    let mut sealer = Sealer::new(ring(1, 3), Channel::Flow).unwrap();
    let mut opener = Opener::new(ring(1, 4), Channel::Flow);
    assert!(matches!(
        opener.open(&sealer.seal(b"x").unwrap()).unwrap_err(),
        OpenError::UnknownEpoch { epoch: 3, current: 4 }
    ));
}

#[test]
fn different_channels_and_epochs_derive_different_keys() {
    // A message sealed on one (channel, epoch) and relabelled to another must fail auth:
    // each pair has its own key.
    let base = ring(9, 1);
    for (channel, epoch) in [(Channel::Flow, 2), (Channel::Config, 1), (Channel::Artifact, 1)] {
        let mut sealer =
            Sealer::new(Arc::new(KeyRing::new(RootSecret::from_bytes([9; 32]), epoch)), channel)
                .unwrap();
        let mut sealed = sealer.seal(b"payload").unwrap();
        sealed[6..10].copy_from_slice(&1_u32.to_be_bytes());
        sealed[10] = Channel::Flow.id();
        let mut opener = Opener::new(Arc::clone(&base), Channel::Flow);
        assert_eq!(reason(opener.open(&sealed)), RejectReason::AuthFailed, "{channel} {epoch}");
    }
}
