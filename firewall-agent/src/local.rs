//! This host's own addresses and its default gateways, read at start with iproute2
//! (`ip -j addr show`, `ip -j route show default`, the same for IPv6), so that a detection
//! naming them can never lock the host out of its own network.

use std::net::IpAddr;
use std::process::Command;

fn ip_json(args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = Command::new("ip")
        .arg("-j")
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run `ip -j {}`: {e}", args.join(" ")))?;
    anyhow::ensure!(
        out.status.success(),
        "`ip -j {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Addresses in `ip -j addr show` output.
pub fn addresses_of(v: &serde_json::Value) -> Vec<IpAddr> {
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|link| link["addr_info"].as_array().into_iter().flatten())
        .filter_map(|a| a["local"].as_str()?.parse().ok())
        .collect()
}

/// Gateways in `ip -j route show default` output.
pub fn gateways_of(v: &serde_json::Value) -> Vec<IpAddr> {
    v.as_array().into_iter().flatten().filter_map(|r| r["gateway"].as_str()?.parse().ok()).collect()
}

/// The host's addresses and default gateways.
pub fn detect() -> anyhow::Result<Vec<IpAddr>> {
    let mut out = addresses_of(&ip_json(&["addr", "show"])?);
    out.extend(gateways_of(&ip_json(&["route", "show", "default"])?));
    out.extend(gateways_of(&ip_json(&["-6", "route", "show", "default"])?));
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn parses_iproute2_json() {
        let addrs: serde_json::Value = serde_json::from_str(
            r#"[{"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8},
                {"family":"inet6","local":"::1","prefixlen":128}]},
               {"ifname":"eth0","addr_info":[{"family":"inet","local":"192.0.2.10","prefixlen":24}]},
               {"ifname":"down0","addr_info":[]}]"#,
        )
        .unwrap();
        let want: Vec<IpAddr> =
            ["127.0.0.1", "::1", "192.0.2.10"].iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(addresses_of(&addrs), want);
        let routes: serde_json::Value = serde_json::from_str(
            r#"[{"dst":"default","gateway":"192.0.2.1","dev":"eth0"},{"dst":"default","dev":"wg0"}]"#,
        )
        .unwrap();
        assert_eq!(gateways_of(&routes), vec!["192.0.2.1".parse::<IpAddr>().unwrap()]);
        // This machine's own view parses (it has at least loopback).
        assert!(detect().unwrap().contains(&"127.0.0.1".parse().unwrap()));
    }
}
