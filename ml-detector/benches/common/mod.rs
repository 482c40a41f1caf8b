//! What the ml-detector benches score: real flow events of shared captures (a spoofed SYN
//! flood, web, DNS, lateral movement), so the paths walked are the ones real traffic takes.

use std::path::PathBuf;

use mld_proto::FlowEvent;

/// Up to 256 finished or early-exported flow events of each of four shared captures.
///
/// # Panics
/// When a capture cannot be read (the shared data is expected beside the repository).
pub(crate) fn flows() -> Vec<FlowEvent> {
    let root = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../../shared/data/pcap");
    let mut out = Vec::new();
    for f in [
        "ddos/stopddos-pkt.TCP.synflood.spoofed.pcap",
        "benign/ndpi-443-chrome.pcap",
        "benign/ndpi-dns.pcap",
        "lateral/otrf-empire_psexec_dcerpc_tcp_svcctl.cap",
    ] {
        let path = root.join(f);
        let run = mld_flow::offline::run_file(&path, mld_flow::offline::default_config("bench"))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.extend(run.flows.into_iter().take(256));
    }
    out
}
