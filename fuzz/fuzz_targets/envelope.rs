//! Opening envelopes: arbitrary bytes, and real envelopes (sealed from the input, with and
//! without LZ4) with one byte changed, are rejected with an error, never a panic; an unchanged
//! envelope opens to its payload.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use mld_crypto_transport::{Channel, KeyRing, Opener, RootSecret, Sealer};

fuzz_target!(|data: &[u8]| {
    let ring = Arc::new(KeyRing::new(RootSecret::from_bytes([7; 32]), 1));
    let mut opener = Opener::new(ring.clone(), Channel::Flow);
    let _ = opener.open(data);

    let Some((&at, payload)) = data.split_first() else { return };
    let mut sealer = Sealer::new(ring.clone(), Channel::Flow).expect("sealer");
    let mut envelope = sealer.seal(payload).expect("payload fits");
    let i = usize::from(at) * envelope.len() / 256;
    let flip = if at % 2 == 0 { 0x01 } else { 0x80 };
    let mut opener = Opener::new(ring, Channel::Flow);
    envelope[i] ^= flip;
    assert!(opener.open(&envelope).is_err(), "a changed byte at {i} was accepted");
    envelope[i] ^= flip;
    let opened = opener.open(&envelope).expect("the unchanged envelope opens");
    assert_eq!(opened.payload, payload);
});

