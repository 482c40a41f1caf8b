//! Run by hand (not by systemd, which makes a unit's `StateDirectory` and `LogsDirectory`),
//! ml-detector creates the folders its config names, with the units' mode, or refuses to start
//! naming the folder; nothing is skipped silently (the kept config used to be lost with
//! "cannot keep the config (`etcd.cache_file`) … No such file or directory" on every change).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mld_crypto_transport::RootSecret;
use serde_json::json;

fn write_config(dir: &Path, logs: &Path, cache: &Path) -> std::path::PathBuf {
    let secret = dir.join("root.secret");
    if !secret.exists() {
        RootSecret::from_bytes([5; 32]).write_new(&secret).unwrap();
    }
    let c = json!({
        "subscribe": { "connect": [format!("tcp://127.0.0.1:{}", mld_test_utils::free_port())] },
        "publish": { "bind": format!("tcp://127.0.0.1:{}", mld_test_utils::free_port()) },
        "metrics": { "listen": null },
        "event_log": { "dir": logs },
        // Nothing listens there: the daemon runs on its local config and retries.
        "etcd": { "endpoints": [format!("http://127.0.0.1:{}", mld_test_utils::free_port())],
                  "cache_file": cache },
        "transport": { "root_secret_file": secret, "key_epoch": 1 },
    });
    let p = dir.join("ml-detector.json");
    std::fs::write(&p, serde_json::to_vec(&c).unwrap()).unwrap();
    p
}

fn start(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ml-detector"))
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn state_folders_are_created_with_the_units_mode_or_the_start_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("log/mldefender/ml-detector");
    let cache = dir.path().join("lib/mldefender/ml-detector/active-config.json");
    let cfg = write_config(dir.path(), &logs, &cache);
    let mut child = start(&cfg);
    let state = cache.parent().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(logs.is_dir() && state.is_dir()) {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!("exited {status}: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert!(Instant::now() < deadline, "the folders were not made within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(mode(&logs), 0o750, "{err}");
    assert_eq!(mode(state), 0o750, "{err}");
    assert_eq!(mode(logs.parent().unwrap()), 0o755, "{err}");
    assert!(!err.contains("cannot keep the config"), "{err}");

    // A folder that cannot be made: the daemon says which, and why, and does not start.
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"a file").unwrap();
    let cfg = write_config(dir.path(), &blocker.join("logs"), &cache);
    let out = start(&cfg).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{err}");
    let want = format!(
        "cannot create the folder {}: {} is not a folder",
        blocker.join("logs").display(),
        blocker.display()
    );
    assert!(err.contains(&want), "{err}");
}
