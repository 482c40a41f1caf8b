//! The etcd key names of DESIGN §4.4, all under [`PREFIX`].

/// Every ML Defender key starts with this.
pub const PREFIX: &str = "/mldefender/v1/";

/// The current key epoch (decimal integer).
pub const EPOCH: &str = "/mldefender/v1/keys/epoch";

/// Prefix of every registration.
pub const COMPONENTS: &str = "/mldefender/v1/components/";

/// Prefix of every alert.
pub const ALERTS: &str = "/mldefender/v1/alerts/";

/// Prefix of every config key.
pub const CONFIGS: &str = "/mldefender/v1/config/";

/// Registration of one running daemon, bound to its lease.
pub fn component(name: &str, instance: &str) -> String {
    format!("{COMPONENTS}{name}/{instance}")
}

/// The first validated config of `name`; created once, never overwritten.
pub fn master(name: &str) -> String {
    format!("{CONFIGS}{name}/master")
}

/// The live config of `name`.
pub fn active(name: &str) -> String {
    format!("{CONFIGS}{name}/active")
}

/// An alert raised at `unix_ns` by one instance; the zero-padded time sorts alerts in order.
pub fn alert(unix_ns: u128, name: &str, instance: &str) -> String {
    format!("{ALERTS}{unix_ns:020}-{name}-{instance}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_follow_the_design() {
        assert_eq!(component("sniffer", "gw-1"), "/mldefender/v1/components/sniffer/gw-1");
        assert_eq!(master("ml-detector"), "/mldefender/v1/config/ml-detector/master");
        assert_eq!(active("ml-detector"), "/mldefender/v1/config/ml-detector/active");
        assert_eq!(alert(17, "a", "b"), "/mldefender/v1/alerts/00000000000000000017-a-b");
        assert!(alert(9, "a", "b") < alert(10, "a", "b"), "alerts sort by time");
    }
}
