//! The shipped configs, the committed schemas, and what an operator sees for bad configs.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::fs;
use std::path::{Path, PathBuf};

use mld_config::daemons::firewall_agent::FirewallAgentConfig;
use mld_config::daemons::ml_detector::MlDetectorConfig;
use mld_config::daemons::sniffer::SnifferConfig;
use mld_config::{COMPONENTS, Component, ConfigError};

fn repo() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../..")
}

#[test]
fn every_shipped_config_is_valid_and_belongs_to_a_daemon() {
    let mut seen = Vec::new();
    for entry in fs::read_dir(repo().join("config")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        assert_eq!(path.extension().and_then(|e| e.to_str()), Some("json"), "{}", path.display());
        let component = Component::named(&name)
            .unwrap_or_else(|| panic!("config/{name}.json matches no daemon config"));
        let text = fs::read_to_string(&path).unwrap();
        (component.check)(&text, &path).unwrap_or_else(|e| panic!("{e}"));
        seen.push(name);
    }
    seen.sort();
    let mut all: Vec<_> = COMPONENTS.iter().map(|c| c.name.to_owned()).collect();
    all.sort();
    assert_eq!(seen, all, "every daemon ships a default config");
}

#[test]
fn committed_schemas_match_the_config_types() {
    for c in COMPONENTS {
        let path = repo().join(format!("docs/config/{}.schema.json", c.name));
        let committed = fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == (c.schema)(),
            "{} is stale: run `cargo xtask schemas` and commit the result",
            path.display()
        );
    }
}

/// Every path a daemon applies while running (`LIVE_FIELDS`) names a field of its config: one
/// that the shipped file, with every default filled in, holds. A misspelt path would make the
/// control plane refuse that field as restart-only.
#[test]
fn live_fields_name_fields_of_the_shipped_configs() {
    for name in ["sniffer", "ml-detector", "firewall-agent", "rag-ingester"] {
        let c = Component::named(name).unwrap();
        assert!(!c.live_fields.is_empty(), "{name} applies some fields while running");
        let path = repo().join(format!("config/{name}.json"));
        let raw: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let full = (c.canonical)(&raw, &path).unwrap_or_else(|e| panic!("{e}"));
        for live in c.live_fields {
            let found = live.split('.').try_fold(&full, |node, part| node.get(part));
            assert!(found.is_some(), "{name}: LIVE_FIELDS names {live}, not in {}", path.display());
        }
    }
    for name in ["rag", "etcd-server"] {
        assert!(Component::named(name).unwrap().live_fields.is_empty(), "{name}");
    }
}

/// A config given as JSON (edited by a command) is checked with errors that name the field but
/// no line or column of text the user never saw.
#[test]
fn json_value_errors_name_the_field_without_a_position() {
    let c = Component::named("ml-detector").unwrap();
    let value = serde_json::json!({ "verdict": { "malicious_score": "high" } });
    let msg = (c.canonical)(&value, Path::new("edited")).unwrap_err().to_string();
    assert_eq!(
        msg,
        "edited: invalid config at `verdict.malicious_score`: invalid type: string \"high\", \
         expected f64"
    );
}

fn sniffer(text: &str) -> Result<mld_config::daemons::sniffer::Sniffer, ConfigError> {
    mld_config::parse_str::<SnifferConfig>(text, Path::new("/etc/mld/sniffer.json"))
}

#[test]
fn unknown_field_is_refused_with_file_line_and_path() {
    let err =
        sniffer("{\n  \"sensor_id\": \"s\",\n  \"flow_table\": { \"capacty\": 5 }\n}").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ConfigError::Parse { line: 3, .. }), "{msg}");
    assert!(msg.starts_with("/etc/mld/sniffer.json:3:"), "{msg}");
    assert!(msg.contains("flow_table.capacty"), "{msg}");
    assert!(msg.contains("unknown field `capacty`"), "{msg}");
}

#[test]
fn wrong_type_names_the_field() {
    let err = sniffer(
        r#"{"sensor_id": "s", "publish": {"bind": "tcp://127.0.0.1:1", "send_hwm": "many"}}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("publish.send_hwm"), "{err}");
}

#[test]
fn syntax_errors_and_trailing_garbage_are_parse_errors() {
    for text in ["", "{", "{\"sensor_id\": \"s\"} x", "[]"] {
        let err = sniffer(text).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{text:?}: {err}");
    }
}

#[test]
fn missing_file_names_the_path() {
    let err =
        mld_config::load::<SnifferConfig>(Path::new("/nonexistent/sniffer.json")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/sniffer.json"), "{err}");
}

#[test]
fn every_validation_error_is_reported_at_once_with_field_and_value() {
    let text = r#"{
        "sensor_id": "bad id!",
        "interfaces": [{"name": "eth0", "role": "lan"}, {"name": "eth0", "role": "wan"}],
        "flow_table": {"capacity": 10, "shards": 3, "idle_timeout_secs": 500, "active_timeout_secs": 100},
        "fast_detector": {"scan_distinct_ports": 1, "flood_packets_per_sec": 5, "web_ports": [80, 0]},
        "publish": {"bind": "udp://x", "send_hwm": 0},
        "metrics": {"listen": "localhost"},
        "etcd": {"endpoints": ["127.0.0.1:2379"]}
    }"#;
    let ConfigError::Invalid { path, errors } = sniffer(text).unwrap_err() else {
        panic!("not Invalid")
    };
    assert_eq!(path, Path::new("/etc/mld/sniffer.json"));
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let expected = [
        "sensor_id = \"bad id!\": must be 1-64 characters",
        "interfaces[1].name = \"eth0\": is listed twice",
        "flow_table.capacity = 10: must be between 1024 and",
        "flow_table.shards = 3: must be a power of two",
        "flow_table.idle_timeout_secs = 500: must not exceed active_timeout_secs",
        "fast_detector.scan_distinct_ports = 1: must be between 2 and 1024",
        "fast_detector.flood_packets_per_sec = 5: must be between 10 and",
        "fast_detector.web_ports[1] = 0: must be 1-65535",
        "publish.bind = \"udp://x\": expected tcp://host:port",
        "publish.send_hwm = 0: must be between 1 and",
        "metrics.listen = \"localhost\": expected host:port",
        "etcd.endpoints[0] = \"127.0.0.1:2379\": expected http(s)://host:port",
    ];
    for want in expected {
        assert!(shown.iter().any(|s| s.starts_with(want)), "missing {want:?} in {shown:#?}");
    }
    assert_eq!(shown.len(), expected.len(), "{shown:#?}");
}

#[test]
fn interface_role_combinations() {
    let cases = [
        (r"[]", true),
        (r#"[{"name":"eth0","role":"host"}]"#, true),
        (r#"[{"name":"eth0","role":"lan"},{"name":"eth1","role":"wan"}]"#, true),
        (r#"[{"name":"eth0","role":"host"},{"name":"eth1","role":"host"}]"#, false),
        (r#"[{"name":"eth0","role":"lan"}]"#, false),
        (r#"[{"name":"a-very-long-interface-name","role":"host"}]"#, false),
        (r#"[{"name":"eth0","role":"dmz"}]"#, false),
    ];
    for (interfaces, ok) in cases {
        let text = format!(r#"{{"sensor_id":"s","interfaces":{interfaces}}}"#);
        assert_eq!(sniffer(&text).is_ok(), ok, "{interfaces}: {:?}", sniffer(&text).err());
    }
}

#[test]
fn defaults_fill_omitted_sections() {
    let valid = sniffer(r#"{"sensor_id": "s"}"#).unwrap();
    assert_eq!(valid.publish.bind.as_str(), "tcp://127.0.0.1:5571");
    assert_eq!(valid.metrics.listen.unwrap().to_string(), "127.0.0.1:9101");
    assert_eq!(valid.idle_timeout.as_secs(), 60);
    assert!(valid.etcd.endpoints.is_empty(), "standalone by default");

    let det = mld_config::parse_str::<MlDetectorConfig>("{}", Path::new("d.json")).unwrap();
    assert_eq!(det.subscribe.connect[0].as_str(), "tcp://127.0.0.1:5571");
    assert_eq!(det.publish.bind.as_str(), "tcp://127.0.0.1:5572");
}

#[test]
fn detector_thresholds_must_be_ordered() {
    let err = mld_config::parse_str::<MlDetectorConfig>(
        r#"{"verdict": {"suspicious_score": 0.9, "malicious_score": 0.8}}"#,
        Path::new("d.json"),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("verdict.suspicious_score = 0.9: must be below malicious_score"),
        "{err}"
    );
}

#[test]
fn firewall_allowlist_must_be_networks_without_host_bits() {
    let parse = |list: &str| {
        mld_config::parse_str::<FirewallAgentConfig>(
            &format!(r#"{{"allowlist": {list}}}"#),
            Path::new("f.json"),
        )
    };
    let ok = parse(r#"["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]"#).unwrap();
    assert_eq!(ok.allowlist.len(), 3);
    let err = parse(r#"["10.0.0.1/8", "not-a-net", "10.0.0.0/33"]"#).unwrap_err().to_string();
    assert!(
        err.contains("allowlist[0] = \"10.0.0.1/8\": has host bits set; did you mean 10.0.0.0/8?"),
        "{err}"
    );
    assert!(err.contains("allowlist[1] = \"not-a-net\""), "{err}");
    assert!(err.contains("allowlist[2] = \"10.0.0.0/33\""), "{err}");
    assert!(err.contains("3 errors"), "{err}");
}
