//! The streaming pcap/pcapng reader on arbitrary files: every frame or error it returns is
//! well-formed, it ends, and it never panics; frames then go through the packet parser.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mld_flow::capture::{CaptureReader, MAX_FRAME};
use mld_flow::packet::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CaptureReader::new(Cursor::new(data), Path::new("fuzz.pcap")) else {
        return;
    };
    let mut frames = 0usize;
    while let Some(next) = reader.next_frame() {
        match next {
            Ok(frame) => {
                assert!(frame.data.len() <= MAX_FRAME as usize);
                let _ = parse(frame.link, &frame.data);
                frames += 1;
                // Each frame consumes at least a record header from the input.
                assert!(frames <= data.len());
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
