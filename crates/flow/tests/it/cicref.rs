//! Differential test: our CICFlowMeter features against the reference extractor (the PyPI
//! `cicflowmeter` 0.2.0 Python port, installed by `make setup` into a venv used only here) on
//! shared captures. Features whose definitions agree are compared exactly; the deliberate
//! differences are listed in `docs/features.md`, with the reference's own quirks.
//!
//! The reference keys flows without the protocol, never ends a flow on FIN/RST and reads only
//! IPv4 TCP/UDP: flows are matched by (src, sport, dst, dport, proto) where both sides have
//! exactly one flow.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use mld_proto::FlowEvent;

use crate::detect::{run, test_config};
use crate::shared_data;

fn reference_tool() -> PathBuf {
    let venv = std::env::var_os("MLD_CICREF_VENV")
        .map_or_else(|| PathBuf::from("/opt/mldefender/cicref-venv"), PathBuf::from);
    let tool = venv.join("bin/cicflowmeter");
    assert!(
        tool.exists(),
        "{} missing: `make setup` installs the reference extractor",
        tool.display()
    );
    tool
}

type Row = HashMap<String, String>;

fn reference(pcap: &Path, dir: &Path) -> Vec<Row> {
    let csv = dir.join(format!("{}.csv", pcap.file_name().unwrap().to_string_lossy()));
    let out = Command::new(reference_tool())
        .env("TZ", "UTC")
        .arg("-f")
        .arg(pcap)
        .arg("-c")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(out.status.success(), "reference failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("Traceback"),
        "reference crashed (its output is cut short): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("reference wrote no CSV header")
        .split(',')
        .map(str::to_owned)
        .collect();
    lines.map(|l| header.iter().cloned().zip(l.split(',').map(str::to_owned)).collect()).collect()
}

type Key = (String, u32, String, u32, u32);

fn our_key(ev: &FlowEvent) -> Key {
    let v = mld_flow::json::flow_event(ev);
    (v.src_ip.unwrap().to_string(), v.src_port, v.dst_ip.unwrap().to_string(), v.dst_port, v.proto)
}

fn f(row: &Row, k: &str) -> f64 {
    row[k].parse().unwrap_or_else(|_| panic!("{k} = {:?}", row[k]))
}

#[test]
fn features_match_the_reference_extractor_where_definitions_agree() {
    let files = [
        "bruteforce/slips-ssh-bruteforce.pcap",
        "scan/ndpi-synscan.pcap",
        "benign/ndpi-443-curl.pcap",
        "benign/ndpi-443-chrome.pcap",
        "benign/ndpi-NTPv4.pcap",
        "webattack/ndpi-WebattackSQLinj.pcap",
    ];
    let dir = tempfile::tempdir().unwrap();
    let (mut compared, mut checks) = (0usize, 0usize);
    let mut mismatches = Vec::new();
    for file in files {
        let pcap = shared_data().join(file);
        let rows = reference(&pcap, dir.path());
        // The reference's timeouts: 240 s idle, no FIN/RST end; ours with long timeouts.
        let mut cfg = test_config();
        cfg.idle_ns = 240_000_000_000;
        cfg.active_ns = 3_600_000_000_000;
        let ours: Vec<FlowEvent> =
            run(&pcap, cfg).flows.into_iter().filter(|f| !f.snapshot).collect();
        let mut by_key: HashMap<Key, Vec<&FlowEvent>> = HashMap::new();
        for ev in &ours {
            by_key.entry(our_key(ev)).or_default().push(ev);
        }
        let mut ref_count: HashMap<Key, usize> = HashMap::new();
        let key = |r: &Row| -> Key {
            (
                r["src_ip"].clone(),
                r["src_port"].parse().unwrap(),
                r["dst_ip"].clone(),
                r["dst_port"].parse().unwrap(),
                r["protocol"].parse().unwrap(),
            )
        };
        for r in &rows {
            *ref_count.entry(key(r)).or_default() += 1;
        }
        let mut matched_here = 0;
        for r in &rows {
            let k = key(r);
            let Some([ev]) = by_key.get(&k).map(Vec::as_slice) else { continue };
            if ref_count[&k] != 1 {
                continue;
            }
            matched_here += 1;
            let x = ev.features.unwrap();
            #[allow(clippy::cast_precision_loss)]
            let cmp: Vec<(&str, f64, f64, bool)> = vec![
                ("tot_fwd_pkts", f(r, "tot_fwd_pkts"), x.total_fwd_packets as f64, true),
                ("tot_bwd_pkts", f(r, "tot_bwd_pkts"), x.total_bwd_packets as f64, true),
                ("flow_duration", f(r, "flow_duration"), x.flow_duration_us, true),
                ("fin_flag_cnt", f(r, "fin_flag_cnt"), x.fin_flag_count as f64, true),
                ("syn_flag_cnt", f(r, "syn_flag_cnt"), x.syn_flag_count as f64, true),
                ("rst_flag_cnt", f(r, "rst_flag_cnt"), x.rst_flag_count as f64, true),
                ("psh_flag_cnt", f(r, "psh_flag_cnt"), x.psh_flag_count as f64, true),
                ("ack_flag_cnt", f(r, "ack_flag_cnt"), x.ack_flag_count as f64, true),
                ("urg_flag_cnt", f(r, "urg_flag_cnt"), x.urg_flag_count as f64, true),
                ("fwd_psh_flags", f(r, "fwd_psh_flags"), x.fwd_psh_flags as f64, true),
                ("bwd_psh_flags", f(r, "bwd_psh_flags"), x.bwd_psh_flags as f64, true),
                ("down_up_ratio", f(r, "down_up_ratio"), x.down_up_ratio, true),
                // The reference takes the first non-zero forward window.
                (
                    "init_fwd_win_byts",
                    f(r, "init_fwd_win_byts"),
                    x.init_win_bytes_fwd as f64,
                    x.init_win_bytes_fwd > 0,
                ),
                // The reference zeroes timing statistics with fewer than two values.
                (
                    "flow_iat_max",
                    f(r, "flow_iat_max"),
                    x.flow_iat_max,
                    x.total_fwd_packets + x.total_bwd_packets >= 3,
                ),
                (
                    "flow_iat_min",
                    f(r, "flow_iat_min"),
                    x.flow_iat_min,
                    x.total_fwd_packets + x.total_bwd_packets >= 3,
                ),
                ("fwd_iat_tot", f(r, "fwd_iat_tot"), x.fwd_iat_total, x.total_fwd_packets >= 3),
                ("bwd_iat_tot", f(r, "bwd_iat_tot"), x.bwd_iat_total, x.total_bwd_packets >= 3),
            ];
            for (name, theirs, mine, applies) in cmp {
                if !applies {
                    continue;
                }
                checks += 1;
                // Timestamps: the reference's are float seconds (µs rounding).
                let tol = if name.contains("iat") || name == "flow_duration" { 1.5 } else { 1e-9 };
                if (theirs - mine).abs() > tol {
                    mismatches
                        .push(format!("{file} {k:?} {name}: reference {theirs}, ours {mine}"));
                }
            }
        }
        // Nearly every reference flow has a single counterpart (the rest reuse a 5-tuple
        // after FIN/RST, which ends our flow and not theirs).
        assert!(
            matched_here * 100 >= rows.len() * 95,
            "{file}: matched {matched_here} of {} reference flows",
            rows.len()
        );
        compared += matched_here;
    }
    eprintln!(
        "compared {compared} flows, {checks} feature values, {} mismatches",
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}
