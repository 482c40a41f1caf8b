//! The L2-L4 packet parser on arbitrary frames of every link type it knows, and the flow
//! engine (flow table, features, host context, DNS names, fast rules) on whatever parses.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mld_flow::engine::{Engine, EngineConfig};
use mld_flow::packet::{LinkType, parse};
use mld_flow::record::PacketRecord;

/// Link types the parser handles, plus one it does not.
const LINKS: [u32; 8] = [1, 101, 113, 276, 0, 108, 12, 999];

fn config() -> &'static EngineConfig {
    static CONFIG: OnceLock<EngineConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let sniffer = mld_config::parse_str::<mld_config::daemons::sniffer::SnifferConfig>(
            r#"{ "sensor_id": "fuzz" }"#,
            std::path::Path::new("fuzz.json"),
        )
        .expect("the default sniffer config is valid");
        let mut c = EngineConfig::from_sniffer(&sniffer);
        c.capacity = 64;
        c.max_hosts = 64;
        c
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let link = LinkType(LINKS[usize::from(selector) % LINKS.len()]);
    let mut engine = Engine::new(config().clone(), Vec::new());
    let mut outputs = 0usize;
    // The same bytes as several packets over time: one frame, then the frame cut shorter.
    for (i, cut) in [rest.len(), rest.len() / 2, rest.len().saturating_sub(1)].into_iter().enumerate() {
        let frame = &rest[..cut];
        if let Ok(p) = parse(link, frame) {
            assert!(p.payload.end <= frame.len(), "payload range inside the frame");
            let ts = 1_700_000_000_000_000_000 + (i as u64) * 1_000_000;
            let rec = PacketRecord::from_packet(ts, &p, frame, 0);
            engine.process(&rec, &mut |_| outputs += 1);
        }
    }
    engine.flush(&mut |_| outputs += 1);
    assert!(engine.active_flows() == 0);
});
