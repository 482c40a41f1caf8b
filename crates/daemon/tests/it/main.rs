//! The daemon runtime end to end: a probe daemon runs in a child process (this test binary,
//! re-executed), and the parent checks metrics, readiness, signals, drain and exit codes.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mld_config::daemons::etcd_server::EtcdServerConfig;
use mld_daemon::{Daemon, DaemonError, ExitCode, RunContext, Valid};
use mld_telemetry::prometheus_client::metrics::counter::Counter;
use mld_telemetry::prometheus_client::registry::Registry;

/// A daemon that counts ticks until shutdown, then drains for `--drain-ms`.
struct Probe {
    ticks: Counter,
    drain: Duration,
}

#[derive(clap::Args)]
struct ProbeFlags {
    #[arg(long, default_value_t = 0)]
    drain_ms: u64,
    #[arg(long)]
    fail_setup: bool,
}

impl Daemon for Probe {
    const NAME: &'static str = "probe";
    const ABOUT: &'static str = "test daemon";
    // Any config type will do; this one has a metrics address.
    type Config = EtcdServerConfig;
    type Flags = ProbeFlags;

    fn metrics_listen(config: &Valid<Self>) -> Option<SocketAddr> {
        config.metrics.listen
    }

    fn setup(
        _: Valid<Self>,
        flags: ProbeFlags,
        registry: &mut Registry,
    ) -> Result<Self, DaemonError> {
        if flags.fail_setup {
            return Err(DaemonError::unavailable(anyhow::anyhow!("interface eth9 does not exist")));
        }
        let ticks = Counter::default();
        registry.register("ticks", "Ticks of the probe", ticks.clone());
        Ok(Self { ticks, drain: Duration::from_millis(flags.drain_ms) })
    }

    async fn run(self, ctx: RunContext) -> Result<(), DaemonError> {
        ctx.readiness.set(true);
        while !ctx.shutdown.is_cancelled() {
            self.ticks.inc();
            tokio::select! {
                () = ctx.shutdown.cancelled() => {}
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
        tokio::time::sleep(self.drain).await;
        Ok(())
    }
}

const CHILD_ENV: &str = "MLD_DAEMON_PROBE_ARGS";

/// Entry point of the child process; a no-op in a normal test run.
#[test]
fn probe_child() {
    if let Ok(args) = std::env::var(CHILD_ENV) {
        let args = std::iter::once("probe".into()).chain(args.split('\u{1f}').map(Into::into));
        let code = mld_daemon::run_main::<Probe>(args);
        std::process::exit(i32::from(code.code()));
    }
}

fn spawn(args: &[&str]) -> Child {
    mld_test_utils::child_test("probe_child", CHILD_ENV, &args.join("\u{1f}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn config_file(metrics: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(file, r#"{{"metrics": {{"listen": "{metrics}"}}}}"#).unwrap();
    file
}

/// Streams the child's JSON log lines to a channel.
fn log_lines(child: &mut Child) -> mpsc::Receiver<serde_json::Value> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line)
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });
    rx
}

fn wait_for_log(rx: &mpsc::Receiver<serde_json::Value>, message: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| panic!("no log line {message:?}"));
        if line["message"] == message {
            return line;
        }
    }
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

fn signal(child: &Child, sig: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) with a pid we own and a valid signal number has no memory effects.
    #[expect(unsafe_code, reason = "sending a signal to the child process")]
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0);
}

fn wait_exit(child: &mut Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().expect("exited, not killed by a signal");
        }
        assert!(Instant::now() < deadline, "child did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start(
    extra: &[&str],
) -> (Child, mpsc::Receiver<serde_json::Value>, SocketAddr, tempfile::NamedTempFile) {
    let config = config_file("127.0.0.1:0");
    let path = config.path().to_str().unwrap().to_owned();
    let mut args = vec!["--log-format", "json", "run", "--config", &path];
    args.extend_from_slice(extra);
    let mut child = spawn(&args);
    let logs = log_lines(&mut child);
    let line = wait_for_log(&logs, "serving /metrics and /ready");
    let addr = line["addr"].as_str().unwrap().parse().unwrap();
    wait_for_log(&logs, "started");
    (child, logs, addr, config)
}

#[test]
fn serves_metrics_and_drains_on_sigterm() {
    let (mut child, logs, addr, _config) = start(&["--drain-ms", "200"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !http_get(addr, "/ready").starts_with("HTTP/1.1 200") {
        assert!(Instant::now() < deadline, "never became ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    let metrics = http_get(addr, "/metrics");
    assert!(metrics.contains("mld_probe_ticks_total"), "{metrics}");

    signal(&child, libc::SIGTERM);
    let draining = wait_for_log(&logs, "signal received, draining");
    assert_eq!(draining["grace_secs"], 10);
    assert_eq!(wait_exit(&mut child), 0);
}

#[test]
fn sigint_also_drains() {
    let (mut child, _logs, _addr, _config) = start(&[]);
    signal(&child, libc::SIGINT);
    assert_eq!(wait_exit(&mut child), 0);
}

#[test]
fn drain_longer_than_grace_exits_with_drain_timeout() {
    let (mut child, logs, _addr, _config) = start(&["--drain-ms", "60000", "--grace-secs", "1"]);
    signal(&child, libc::SIGTERM);
    wait_for_log(&logs, "drain did not finish within the grace period");
    assert_eq!(wait_exit(&mut child), i32::from(ExitCode::DrainTimeout.code()));
}

#[test]
fn second_signal_cuts_the_drain_short() {
    let (mut child, logs, _addr, _config) = start(&["--drain-ms", "60000"]);
    signal(&child, libc::SIGTERM);
    wait_for_log(&logs, "signal received, draining");
    signal(&child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child), i32::from(ExitCode::Failure.code()));
}

#[test]
fn start_up_failure_maps_to_its_exit_code() {
    let config = config_file("127.0.0.1:0");
    let mut child = spawn(&[
        "--log-format",
        "json",
        "run",
        "--config",
        config.path().to_str().unwrap(),
        "--fail-setup",
    ]);
    let logs = log_lines(&mut child);
    let line = wait_for_log(&logs, "start-up failed");
    assert!(line["error"].as_str().unwrap().contains("eth9"), "{line}");
    assert_eq!(wait_exit(&mut child), i32::from(ExitCode::Unavailable.code()));
}

#[test]
fn metrics_port_in_use_is_unavailable() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = config_file(&taken.local_addr().unwrap().to_string());
    let mut child = spawn(&["run", "--config", config.path().to_str().unwrap()]);
    assert_eq!(wait_exit(&mut child), i32::from(ExitCode::Unavailable.code()));
}

fn output(args: &[&str]) -> (i32, String, String) {
    let out = spawn(args).wait_with_output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().unwrap(), text(out.stdout), text(out.stderr))
}

#[test]
fn bad_config_exits_64_and_names_file_field_and_value() {
    let config = config_file("not-an-address");
    let path = config.path().to_str().unwrap();
    for command in ["run", "validate"] {
        let (code, _, stderr) = output(&[command, "--config", path]);
        assert_eq!(code, 64, "{command}: {stderr}");
        assert!(stderr.contains(path), "{command}: {stderr}");
        assert!(stderr.contains("metrics.listen = \"not-an-address\""), "{command}: {stderr}");
    }
    let (code, _, stderr) = output(&["validate", "--config", "/nonexistent.json"]);
    assert_eq!(code, 64);
    assert!(stderr.contains("/nonexistent.json") && stderr.contains("No such file"), "{stderr}");
}

#[test]
fn validate_accepts_a_good_config() {
    let config = config_file("127.0.0.1:9105");
    let (code, stdout, _) = output(&["validate", "--config", config.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.contains("is a valid etcd-server config"), "{stdout}");
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, stderr) = output(&["run"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--config"), "{stderr}");
    let (code, _, stderr) = output(&["--log-format", "xml", "validate", "--config", "x"]);
    assert_eq!(code, 2, "{stderr}");
}
