//! Configs compared field by field, as an operator reads them: dotted paths into the JSON file
//! (`event_log.dir`) and JSON values, never Rust structs. Used by the control plane to refuse a
//! change a daemon cannot apply while running, and by `rag config` and `etcd-server config put`
//! to refuse it before it is written.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// A config as dotted paths to values: objects are walked, arrays and scalars are leaves. An
/// empty object has no fields and so no paths (`"tls": {}` sets nothing, as an absent field).
pub fn flatten(v: &Value) -> BTreeMap<String, Value> {
    fn walk(v: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(x, &p, out);
                }
            }
            _ => {
                out.insert(prefix.to_owned(), v.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(v, "", &mut out);
    out
}

/// One field whose value differs; `None`: absent on that side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "(unset)".to_owned(), Value::to_string)
}

impl Change {
    /// The old value as JSON (`(unset)` when absent).
    pub fn old_json(&self) -> String {
        show(self.old.as_ref())
    }

    /// The new value as JSON (`(unset)` when absent).
    pub fn new_json(&self) -> String {
        show(self.new.as_ref())
    }
}

impl fmt::Display for Change {
    /// `path: old -> new`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} -> {}", self.path, self.old_json(), self.new_json())
    }
}

/// Every field that differs between `old` and `new`, in path order. A field that is `null` on
/// one side and absent on the other is unchanged: serde reads both as "not set".
pub fn changes(old: &Value, new: &Value) -> Vec<Change> {
    let (a, b) = (flatten(old), flatten(new));
    let mut paths: Vec<&String> = a.keys().chain(b.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|p| {
            let (x, y) = (a.get(p), b.get(p));
            let same = x.unwrap_or(&Value::Null) == y.unwrap_or(&Value::Null);
            (!same).then(|| Change { path: p.clone(), old: x.cloned(), new: y.cloned() })
        })
        .collect()
}

/// Whether `path` is one of `live` or lies under one of them.
pub fn is_live(path: &str, live: &[&str]) -> bool {
    live.iter()
        .any(|l| path.strip_prefix(l).is_some_and(|rest| rest.is_empty() || rest.starts_with('.')))
}

/// The changes from `running` to `new` (canonical JSON of both) that a daemon applying only
/// `live` fields while running cannot take.
pub fn restart_only_changes(running: &Value, new: &Value, live: &[&str]) -> Vec<Change> {
    changes(running, new).into_iter().filter(|c| !is_live(&c.path, live)).collect()
}

/// `a.b changes only at restart (running 1, new 2)`, one clause per change, joined by `; `.
pub fn restart_only_message(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| {
            format!(
                "{} changes only at restart (running {}, new {})",
                c.path,
                c.old_json(),
                c.new_json()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn changes_list_paths_and_json_values() {
        let a = json!({"verdict": {"suspicious_score": 0.5, "malicious_score": 0.8}, "x": [1]});
        let b = json!({"verdict": {"suspicious_score": 0.45, "malicious_score": 0.8}, "y": true, "x": [1]});
        let shown: Vec<String> = changes(&a, &b).iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["verdict.suspicious_score: 0.5 -> 0.45", "y: (unset) -> true"]);
        assert!(changes(&a, &a).is_empty());
    }

    #[test]
    fn null_and_absent_are_the_same() {
        let a = json!({"etcd": {"endpoints": [], "tls": null}, "m": {"listen": null}});
        let b = json!({"etcd": {"endpoints": []}, "m": {}});
        assert_eq!(changes(&a, &b), []);
        let c = json!({"etcd": {"endpoints": [], "tls": {"ca_file": "/ca"}}});
        assert_eq!(
            changes(&a, &c).iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["etcd.tls.ca_file: (unset) -> \"/ca\""]
        );
    }

    #[test]
    fn live_paths_cover_their_subfields_only() {
        let live = ["verdict", "caps.max_new_blocks_per_minute"];
        assert!(is_live("verdict", &live));
        assert!(is_live("verdict.malicious_score", &live));
        assert!(!is_live("verdicts", &live));
        assert!(is_live("caps.max_new_blocks_per_minute", &live));
        assert!(!is_live("caps.max_set_elements", &live));
        assert!(!is_live("event_log.dir", &[]));
    }

    #[test]
    fn restart_only_changes_name_the_field_and_json_values() {
        let running = json!({"verdict": {"malicious_score": 0.8},
                             "event_log": {"dir": "/var/log/mldefender/ml-detector", "eve": true}});
        let mut new = running.clone();
        new["verdict"]["malicious_score"] = json!(0.85);
        assert!(restart_only_changes(&running, &new, &["verdict"]).is_empty());
        new["event_log"]["dir"] = json!("/tmp/x");
        let refused = restart_only_changes(&running, &new, &["verdict"]);
        assert_eq!(
            restart_only_message(&refused),
            r#"event_log.dir changes only at restart (running "/var/log/mldefender/ml-detector", new "/tmp/x")"#
        );
    }
}
