//! Capture reading and packet parsing over the shared labelled captures (`../shared/data`).
#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    clippy::doc_markdown,
    clippy::too_many_lines,
    clippy::cast_precision_loss,
    reason = "test reporting"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mld_flow::capture::CaptureReader;
use mld_flow::packet::parse;

mod behaviours;
mod cicref;
mod detect;

pub(crate) fn shared_data() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/pcap")
}

pub(crate) fn captures() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![shared_data()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng" | "cap")
            ) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[derive(Default, Debug)]
struct Tally {
    files: usize,
    frames: u64,
    parsed: u64,
    skipped: BTreeMap<&'static str, u64>,
    capture_errors: Vec<String>,
    files_without_ip: Vec<String>,
}

fn tally() -> Tally {
    let mut t = Tally::default();
    for path in captures() {
        t.files += 1;
        let mut parsed_here = 0;
        let reader = match CaptureReader::open(&path) {
            Ok(r) => r,
            Err(e) => {
                t.capture_errors.push(e.to_string());
                continue;
            }
        };
        for frame in reader {
            match frame {
                Ok(frame) => {
                    t.frames += 1;
                    match parse(frame.link, &frame.data) {
                        Ok(_) => {
                            t.parsed += 1;
                            parsed_here += 1;
                        }
                        Err(e) => *t.skipped.entry(e.reason()).or_default() += 1,
                    }
                }
                Err(e) => t.capture_errors.push(e.to_string()),
            }
        }
        if parsed_here == 0 {
            t.files_without_ip.push(path.display().to_string());
        }
    }
    t
}

/// Files whose frames contain no parsable IP packet, and why (checked against tcpdump).
const NO_IP: [(&str, &str); 4] = [
    ("ndpi-fuzz-2021-06-07-c6c72a0a56.pcap", "fuzzer output: one frame, not IP"),
    ("ndpi-BGP_Cisco_hdlc_slarp.pcap", "Cisco SLARP keepalives only"),
    ("ndpi-fuzz-2021-10-13.pcap", "fuzzer output: one frame, then a truncated record"),
    ("ndpi-kerberos_fuzz.pcapng", "fuzzer output: TCP headers shorter than 20 bytes"),
];

#[test]
fn every_shared_capture_reads_and_parses() {
    let t = tally();
    eprintln!("{t:#?}");
    assert_eq!(t.files, captures().len());
    assert!(
        t.files >= 500,
        "expected the shared captures in ../shared/data, found {} files",
        t.files
    );
    // Only genuinely truncated files end with an error (tcpdump agrees: see the differential test).
    for e in &t.capture_errors {
        assert!(e.contains("is truncated at byte") || e.contains("is corrupt at byte"), "{e}");
    }
    assert!(t.capture_errors.len() <= 16, "{:#?}", t.capture_errors);
    for f in &t.files_without_ip {
        assert!(NO_IP.iter().any(|(name, _)| f.ends_with(name)), "no IP packet parsed from {f}");
    }
    #[expect(clippy::cast_precision_loss, reason = "a ratio of counts")]
    let ratio = t.parsed as f64 / t.frames as f64;
    assert!(ratio > 0.99, "only {:.2} % of frames parsed: {:?}", ratio * 100.0, t.skipped);
}

/// tcpdump's view of a file: packets read, and first/last timestamps (µs) of the packets it
/// printed. tcpdump reads but does not print packets whose wire length exceeds 262144 bytes
/// (fuzzed files): it prints "[Invalid header: …]" instead.
fn tcpdump(path: &Path) -> (u64, Option<u64>, Option<u64>) {
    let out = std::process::Command::new("tcpdump")
        .args(["-n", "-q", "-tt", "-r"])
        .arg(path)
        .output()
        .expect("tcpdump is installed by make setup");
    let text = String::from_utf8_lossy(&out.stdout);
    let invalid = text.lines().filter(|l| l.starts_with("[Invalid header")).count() as u64;
    let stamps: Vec<u64> = text
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(ts, _)| ts))
        .filter_map(|ts| ts.split_once('.'))
        .filter_map(|(s, us)| {
            Some(s.parse::<u64>().ok()? * 1_000_000 + us.get(..6)?.parse::<u64>().ok()?)
        })
        .collect();
    (stamps.len() as u64 + invalid, stamps.first().copied(), stamps.last().copied())
}

#[test]
fn frame_counts_and_timestamps_match_tcpdump_on_every_shared_capture() {
    let mut compared = 0;
    for path in captures() {
        // Fuzzer output: libpcap's recovery from corrupt records is its own; ours stops at the
        // first one with an error naming the offset (checked in the test above).
        if path.to_string_lossy().contains("fuzz") {
            continue;
        }
        let frames: Vec<_> = CaptureReader::open(&path).unwrap().filter_map(Result::ok).collect();
        let printable: Vec<_> = frames.iter().filter(|f| f.orig_len <= 262_144).collect();
        let ours = (
            frames.len() as u64,
            printable.first().map(|f| f.ts_ns / 1_000),
            printable.last().map(|f| f.ts_ns / 1_000),
        );
        assert_eq!(ours, tcpdump(&path), "{}: (frames, first µs, last µs)", path.display());
        compared += 1;
    }
    assert!(compared >= 500, "{compared}");
}
