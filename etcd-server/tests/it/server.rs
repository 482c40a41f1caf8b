//! The etcd-server under test: started as its binary on a loopback port, stopped on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use etcd_client::Client;

/// A server process, killed (SIGKILL) when dropped so that none outlives its test.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts etcd-server on `127.0.0.1:port` with its store in `dir/data` (the same `dir` and
/// `port` again restart it on the same data); its log goes to `dir/etcd-server.log`.
pub(crate) fn start(dir: &Path, port: u16) -> Running {
    start_with(dir, port, "")
}

/// As [`start`], with `extra` config fields (`"name": value, …`) added (metrics are off
/// unless `extra` sets them).
pub(crate) fn start_with(dir: &Path, port: u16, extra: &str) -> Running {
    let config = dir.join("etcd-server.json");
    let metrics =
        if extra.contains(r#""metrics""#) { "" } else { r#""metrics": { "listen": null },"# };
    let extra = if extra.is_empty() { String::new() } else { format!(", {extra}") };
    std::fs::write(
        &config,
        format!(
            r#"{{ "listen": "127.0.0.1:{port}", {metrics}
                 "watch_progress_notify_interval_ms": 500 {extra} }}"#
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_etcd-server"))
        .args(["run", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("etcd-server.log")).unwrap())
        .spawn()
        .unwrap();
    Running(child)
}

/// A client of `endpoint` once the server there answers (up to 10 s).
pub(crate) async fn connect(endpoint: &str) -> Client {
    for _ in 0..100 {
        if let Ok(mut c) = Client::connect([endpoint], None).await
            && c.get("probe", None).await.is_ok()
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no server answered on {endpoint}");
}

/// A real etcd 3.4 (Debian `etcd-server`) alone on free loopback ports, its data in
/// `dir/etcd`; returns it and its client address.
pub(crate) fn real_etcd(dir: &Path) -> (Running, String) {
    let mut cluster = etcd_cluster(dir, 1);
    cluster.pop().unwrap()
}

/// A real etcd and etcd-server side by side (data and logs in `dir`): the two servers (they
/// stop when dropped) and their client addresses, etcd's first.
pub(crate) fn side_by_side(dir: &Path) -> ((Running, Running), String, String) {
    let (etcd, etcd_addr) = real_etcd(dir);
    let port = mld_test_utils::free_port();
    ((etcd, start(dir, port)), etcd_addr, format!("127.0.0.1:{port}"))
}

/// A cluster of `n` real etcd members on free loopback ports (data in `dir/etcd<i>`, logs in
/// `dir/etcd<i>.log`); returns each member and its client address, in member order.
pub(crate) fn etcd_cluster(dir: &Path, n: usize) -> Vec<(Running, String)> {
    let ports: Vec<(u16, u16)> =
        (0..n).map(|_| (mld_test_utils::free_port(), mld_test_utils::free_port())).collect();
    let initial: Vec<String> =
        ports.iter().enumerate().map(|(i, (_, p))| format!("m{i}=http://127.0.0.1:{p}")).collect();
    ports
        .iter()
        .enumerate()
        .map(|(i, (client, peer))| {
            let c = format!("http://127.0.0.1:{client}");
            let p = format!("http://127.0.0.1:{peer}");
            let child = Command::new("etcd")
                .args(["--name", &format!("m{i}"), "--data-dir"])
                .arg(dir.join(format!("etcd{i}")))
                .args(["--listen-client-urls", &c, "--advertise-client-urls", &c])
                .args(["--listen-peer-urls", &p, "--initial-advertise-peer-urls", &p])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
                .args(["--experimental-watch-progress-notify-interval", "500ms"])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join(format!("etcd{i}.log"))).unwrap())
                .spawn()
                .expect("etcd (Debian package etcd-server) must be installed: make setup");
            (Running(child), format!("127.0.0.1:{client}"))
        })
        .collect()
}
