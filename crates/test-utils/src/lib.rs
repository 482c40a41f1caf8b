//! Harnesses shared by the workspace's integration tests.
//!
//! - [`child_test`]: run one test of the current test binary in a child process, for tests of
//!   process-level behaviour (signals, exit codes, restarts) without extra binaries. The child
//!   test checks its environment variable and does nothing in a normal run.
//! - [`key_ring`]: a deterministic key ring for sealed-transport tests.
//! - [`free_port`]: a loopback TCP port that was free a moment ago.
//! - [`wait_until`]: polls a condition with a deadline, so that no test waits forever.
//! - [`privileged`], [`sh`]: for tests that need root (network namespaces, XDP, nftables).
//!
//! ```
//! let ring = mld_test_utils::key_ring(7, 1);
//! assert_eq!(ring.current_epoch(), 1);
//! ```
#![forbid(unsafe_code)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mld_crypto_transport::{KeyRing, RootSecret};

/// A command that runs only test `name` of the current test binary, with `var=value` set, its
/// stdout discarded (the test harness's chatter) and stderr piped.
pub fn child_test(name: &str, var: &str, value: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    let mut command = Command::new(exe);
    command
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(var, value)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// A key ring whose root secret is 32 bytes of `secret`, at `epoch`.
pub fn key_ring(secret: u8, epoch: u32) -> Arc<KeyRing> {
    Arc::new(KeyRing::new(RootSecret::from_bytes([secret; 32]), epoch))
}

/// A TCP port on 127.0.0.1 that was free when this returned.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0 works")
}

/// Polls `condition` every 10 ms until it holds; panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a test that needs root (`what` it needs it for) can run: true as root; otherwise
/// it fails, unless `MLD_SKIP_PRIVILEGED=1` says to skip it (then false).
pub fn privileged(what: &str) -> bool {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root {
        return true;
    }
    assert!(
        std::env::var("MLD_SKIP_PRIVILEGED").as_deref() == Ok("1"),
        "this test needs root ({what}); set MLD_SKIP_PRIVILEGED=1 to skip it"
    );
    eprintln!("skipped: not root and MLD_SKIP_PRIVILEGED=1");
    false
}

/// Runs `args` (program first) and panics with its stderr unless it succeeds.
pub fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("the program runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}
