//! `etcdctl` (Debian `etcd-client`, v3 API) against etcd-server: put, get, watch, lease.

use std::process::{Command, Stdio};
use std::time::Duration;

fn etcdctl(endpoint: &str, args: &[&str]) -> String {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(args)
        .output()
        .expect("etcdctl (Debian package etcd-client) must be installed: make setup");
    assert!(out.status.success(), "etcdctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn etcdctl_put_get_watch_lease() {
    let dir = tempfile::tempdir().unwrap();
    let port = mld_test_utils::free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let _server = crate::server::start(dir.path(), port);
    mld_test_utils::wait_until(Duration::from_secs(10), "etcd-server answers", || {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([&format!("--endpoints={endpoint}"), "get", "probe"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    assert_eq!(etcdctl(&endpoint, &["put", "/mldefender/v1/a", "1"]), "OK\n");
    assert_eq!(etcdctl(&endpoint, &["get", "/mldefender/v1/a"]), "/mldefender/v1/a\n1\n");
    // A watch started now sees the next put.
    let watch = Command::new("timeout")
        .args([
            "3",
            "etcdctl",
            &format!("--endpoints={endpoint}"),
            "watch",
            "--prefix",
            "/mldefender/",
        ])
        .env("ETCDCTL_API", "3")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    etcdctl(&endpoint, &["put", "/mldefender/v1/b", "2"]);
    let seen = String::from_utf8(watch.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(seen, "PUT\n/mldefender/v1/b\n2\n");
    // A lease: granted, attached, listed with its key, revoked with it.
    let granted = etcdctl(&endpoint, &["lease", "grant", "30"]);
    let id = granted.split_whitespace().nth(1).unwrap().to_owned();
    etcdctl(&endpoint, &["put", "--lease", &id, "/mldefender/v1/leased", "x"]);
    let ttl = etcdctl(&endpoint, &["lease", "timetolive", &id, "--keys"]);
    assert!(ttl.contains("attached keys([/mldefender/v1/leased])"), "{ttl}");
    etcdctl(&endpoint, &["lease", "revoke", &id]);
    assert_eq!(etcdctl(&endpoint, &["get", "/mldefender/v1/leased"]), "");
}
