//! The control-plane library (`mld-control`) against etcd-server and against a real etcd 3.4:
//! registration and heartbeats, master created once, hot reload, rollback with alerts,
//! misconfiguration, key epochs, etcd restarts, and a 3-member etcd cluster losing its leader.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::Client;
use mld_config::daemons::ml_detector::{MlDetector, MlDetectorConfig};
use mld_control::{ControlPlane, Options, keys, restart_only, sealed};
use mld_crypto_transport::KeyRing;
use mld_telemetry::prometheus_client::registry::Registry;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::server::{connect, etcd_cluster, real_etcd, start};

const NAME: &str = "ml-detector";

/// One daemon's control plane, run in-process on an ml-detector config; `applied` records the
/// malicious threshold of every config it applied.
pub(crate) struct Plane {
    pub(crate) ring: Arc<KeyRing>,
    /// The config it started on.
    pub(crate) local: MlDetectorConfig,
    applied: Arc<Mutex<Vec<f64>>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Plane {
    pub(crate) fn start(endpoints: &[&str], instance: &str, malicious: f64) -> Self {
        Self::with_ring(endpoints, instance, malicious, mld_test_utils::key_ring(1, 1))
    }

    pub(crate) fn with_ring(
        endpoints: &[&str],
        instance: &str,
        malicious: f64,
        ring: Arc<KeyRing>,
    ) -> Self {
        let mut local = MlDetectorConfig::default();
        local.verdict.malicious_score = malicious;
        local.etcd.endpoints = endpoints.iter().map(|e| format!("http://{e}")).collect();
        local.etcd.lease_ttl_secs = 2;
        Self::with_config(&local, instance, ring)
    }

    /// The control plane of a daemon that started on `local`.
    pub(crate) fn with_config(
        local: &MlDetectorConfig,
        instance: &str,
        ring: Arc<KeyRing>,
    ) -> Self {
        let running: MlDetector = mld_config::DaemonConfig::validate(local).unwrap();
        let etcd = running.etcd.clone();
        let applied = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&applied);
        // As ml-detector: thresholds change while running, endpoints only at restart.
        let apply = move |new: &MlDetector| {
            restart_only("publish", &running.publish, &new.publish)?;
            record.lock().unwrap().push(new.malicious_score);
            Ok(())
        };
        let plane = ControlPlane::<MlDetectorConfig>::new(
            Options {
                component: NAME,
                instance: instance.into(),
                version: "test",
                etcd,
                ring: Arc::clone(&ring),
                apply: Box::new(apply),
            },
            local,
            &mut Registry::default(),
        );
        let stop = CancellationToken::new();
        let task = tokio::spawn(plane.run(stop.clone()));
        Self { ring, local: local.clone(), applied, stop, task }
    }

    fn applied(&self) -> Vec<f64> {
        self.applied.lock().unwrap().clone()
    }

    pub(crate) async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(3), self.task).await.unwrap().unwrap();
    }
}

/// Waits up to 10 s for `check` to hold.
pub(crate) async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn value(c: &mut Client, key: &str) -> Option<(Vec<u8>, i64)> {
    let r = c.get(key, None).await.ok()?;
    r.kvs().first().map(|kv| (kv.value().to_vec(), kv.mod_revision()))
}

async fn json(c: &mut Client, key: &str) -> Option<Value> {
    value(c, key).await.map(|(v, _)| serde_json::from_slice(&v).unwrap())
}

/// The malicious threshold in a stored config.
fn malicious(ring: &Arc<KeyRing>, stored: &[u8]) -> f64 {
    let text = sealed::unseal(ring, stored).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["verdict"]["malicious_score"].as_f64().unwrap()
}

/// `base` (a daemon's own config: a change to its `etcd` section would be refused as
/// restart-only) with `edit` applied, sealed with `ring`.
fn sealed_config(
    ring: &Arc<KeyRing>,
    base: &MlDetectorConfig,
    edit: impl FnOnce(&mut Value),
) -> Vec<u8> {
    let mut v = serde_json::to_value(base).unwrap();
    edit(&mut v);
    sealed::seal(ring, &v.to_string()).unwrap()
}

async fn alerts(c: &mut Client) -> Vec<Value> {
    let r = c.get(keys::ALERTS, Some(etcd_client::GetOptions::new().with_prefix())).await.unwrap();
    r.kvs().iter().map(|kv| serde_json::from_slice(kv.value()).unwrap()).collect()
}

/// The whole behaviour, against the server at `endpoint`.
async fn scenario(endpoint: &str) {
    let mut c = connect(endpoint).await;
    let active = keys::active(NAME);
    let master = keys::master(NAME);

    // The first daemon registers, and its config becomes master and active.
    let a = Plane::start(&[endpoint], "a", 0.8);
    until("a registered", async || json(&mut c, &keys::component(NAME, "a")).await.is_some()).await;
    let reg = json(&mut c, &keys::component(NAME, "a")).await.unwrap();
    assert_eq!((reg["component"].as_str(), reg["instance"].as_str()), (Some(NAME), Some("a")));
    assert_eq!(reg["pid"].as_u64(), Some(u64::from(std::process::id())));
    let (m, _) = value(&mut c, &master).await.unwrap();
    assert_eq!(malicious(&a.ring, &m), 0.8);
    assert_eq!(malicious(&a.ring, &value(&mut c, &active).await.unwrap().0), 0.8);
    assert!(a.applied().is_empty(), "its own config is not re-applied");

    // A second instance with another local config: the master stays; it takes up active.
    let b = Plane::start(&[endpoint], "b", 0.7);
    until("b applied the active config", async || b.applied() == [0.8]).await;
    assert_eq!(value(&mut c, &master).await.unwrap().0, m, "the master is never overwritten");

    // The lease is kept alive past its 2 s TTL.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(json(&mut c, &keys::component(NAME, "a")).await.is_some(), "heartbeats keep it");

    // Hot reload: both apply, and their registrations show the revision.
    let put = c
        .put(
            active.as_str(),
            sealed_config(&a.ring, &a.local, |v| v["verdict"]["malicious_score"] = 0.9.into()),
            None,
        )
        .await
        .unwrap();
    let rev = put.header().unwrap().revision();
    until("both applied 0.9", async || a.applied() == [0.9] && b.applied() == [0.8, 0.9]).await;
    until("registrations show the revision", async || {
        let (ra, rb) = (
            json(&mut c, &keys::component(NAME, "a")).await,
            json(&mut c, &keys::component(NAME, "b")).await,
        );
        ra.is_some_and(|r| r["config_revision"] == rev)
            && rb.is_some_and(|r| r["config_revision"] == rev)
    })
    .await;

    // Not JSON: rolled back to master once (not once per instance), with an alert.
    let bad = sealed::seal(&a.ring, "{ not json").unwrap();
    c.put(active.as_str(), bad, None).await.unwrap();
    until("rolled back", async || value(&mut c, &active).await.is_some_and(|(v, _)| v == m)).await;
    until("both back on master", async || {
        a.applied() == [0.9, 0.8] && b.applied() == [0.8, 0.9, 0.8]
    })
    .await;
    let version = c.get(active.as_str(), None).await.unwrap().kvs()[0].version();
    let found = alerts(&mut c).await;
    assert!(
        found.iter().any(|x| x["kind"] == "invalid_config"
            && x["action"] == "restored the master config as active"
            && x["error"].as_str().unwrap().contains("line 1")),
        "{found:#?}"
    );

    // Valid JSON, invalid value: the error names the field.
    c.put(
        active.as_str(),
        sealed_config(&a.ring, &a.local, |v| v["verdict"]["malicious_score"] = 2.0.into()),
        None,
    )
    .await
    .unwrap();
    until("alert naming the field", async || {
        alerts(&mut c)
            .await
            .iter()
            .any(|x| x["error"].as_str().unwrap().contains("verdict.malicious_score"))
    })
    .await;
    until("rolled back again", async || value(&mut c, &active).await.is_some_and(|(v, _)| v == m))
        .await;
    let after = c.get(active.as_str(), None).await.unwrap().kvs()[0].version();
    assert_eq!(after, version + 2, "one bad write and one rollback, not one per instance");

    // Valid, but the daemon cannot apply it while running: rejected, rolled back.
    c.put(
        active.as_str(),
        sealed_config(&a.ring, &a.local, |v| v["publish"]["bind"] = "tcp://127.0.0.1:6000".into()),
        None,
    )
    .await
    .unwrap();
    until("rejected alert", async || {
        alerts(&mut c).await.iter().any(|x| {
            x["kind"] == "rejected_config"
                // The field as in the JSON file, and JSON values (issue #26, fault 7a).
                && x["error"].as_str().unwrap().contains(r#"publish.bind changes only at restart (running "tcp://"#)
                && x["error"].as_str().unwrap().contains(r#"new "tcp://127.0.0.1:6000")"#)
        })
    })
    .await;
    until("rolled back after rejection", async || {
        value(&mut c, &active).await.is_some_and(|(v, _)| v == m)
    })
    .await;

    // Sealed with another deployment's secret: a misconfiguration; nothing is overwritten.
    let foreign = sealed_config(&mld_test_utils::key_ring(9, 1), &a.local, |_| {});
    c.put(active.as_str(), foreign.clone(), None).await.unwrap();
    until("misconfiguration alert", async || {
        alerts(&mut c).await.iter().any(|x| {
            x["kind"] == "misconfiguration"
                && x["error"].as_str().unwrap().contains("authentication failed")
        })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(value(&mut c, &active).await.unwrap().0, foreign, "left for the operator");
    assert_eq!(a.applied(), [0.9, 0.8], "nothing applied from a config it cannot open");

    // A key rotation: every ring follows keys/epoch.
    c.put(keys::EPOCH, "2", None).await.unwrap();
    until("epoch 2", async || a.ring.current_epoch() == 2 && b.ring.current_epoch() == 2).await;
    until("registration shows epoch 2", async || {
        json(&mut c, &keys::component(NAME, "b")).await.is_some_and(|r| r["key_epoch"] == 2)
    })
    .await;

    // Stopping revokes the lease: the component is down at once, not after its TTL.
    a.stop().await;
    assert!(json(&mut c, &keys::component(NAME, "a")).await.is_none());
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_on_etcd_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = mld_test_utils::free_port();
    let _server = start(dir.path(), port);
    scenario(&format!("127.0.0.1:{port}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_on_real_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let (_etcd, endpoint) = real_etcd(dir.path());
    scenario(&endpoint).await;
}

/// etcd-server killed and restarted: the daemon keeps its config meanwhile, then registers
/// again and follows changes made after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_survives_an_etcd_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = mld_test_utils::free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let server = start(dir.path(), port);
    let mut c = connect(&endpoint).await;
    let plane = Plane::start(&[&endpoint], "r", 0.8);
    let reg = keys::component(NAME, "r");
    until("registered", async || json(&mut c, &reg).await.is_some()).await;
    c.put(
        keys::active(NAME),
        sealed_config(&plane.ring, &plane.local, |v| v["verdict"]["malicious_score"] = 0.85.into()),
        None,
    )
    .await
    .unwrap();
    until("applied 0.85", async || plane.applied() == [0.85]).await;

    drop(server); // SIGKILL
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(plane.applied(), [0.85], "running on the last good config");

    let _server = start(dir.path(), port);
    let mut c = connect(&endpoint).await;
    until("registered again", async || json(&mut c, &reg).await.is_some()).await;
    c.put(
        keys::active(NAME),
        sealed_config(&plane.ring, &plane.local, |v| v["verdict"]["malicious_score"] = 0.95.into()),
        None,
    )
    .await
    .unwrap();
    until("applied 0.95 after the restart", async || plane.applied() == [0.85, 0.95]).await;
    plane.stop().await;
}

/// The config taken from etcd is kept in `etcd.cache_file` (0600); a daemon that restarts
/// while etcd is down starts from it; a kept config it cannot apply is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_etcd_is_down_starts_from_the_kept_config() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let port = mld_test_utils::free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let cache = dir.path().join("ml-detector.active-config.json");
    let mut local = MlDetectorConfig::default();
    local.verdict.malicious_score = 0.8;
    local.etcd.endpoints = vec![format!("http://{endpoint}")];
    local.etcd.lease_ttl_secs = 2;
    local.etcd.cache_file = Some(cache.clone());
    let ring = mld_test_utils::key_ring(1, 1);

    let server = start(dir.path(), port);
    let mut c = connect(&endpoint).await;
    let plane = Plane::with_config(&local, "k", Arc::clone(&ring));
    let reg = keys::component(NAME, "k");
    until("registered", async || json(&mut c, &reg).await.is_some()).await;
    let kept = || -> Option<f64> {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&cache).ok()?).ok()?;
        v["verdict"]["malicious_score"].as_f64()
    };
    assert_eq!(kept(), Some(0.8), "the running config, published as active, is kept");
    c.put(
        keys::active(NAME),
        sealed_config(&ring, &local, |v| v["verdict"]["malicious_score"] = 0.85.into()),
        None,
    )
    .await
    .unwrap();
    until("applied 0.85", async || plane.applied() == [0.85]).await;
    until("0.85 kept", async || kept() == Some(0.85)).await;
    assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o600);
    plane.stop().await;
    drop(server);

    // etcd is down: the restarted daemon (local file 0.8) applies the kept 0.85.
    let plane = Plane::with_config(&local, "k", Arc::clone(&ring));
    until("the kept config applied", async || plane.applied() == [0.85]).await;
    plane.stop().await;

    // A kept config the daemon cannot apply while running (publish differs) is left.
    let mut other: Value = serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    other["publish"]["bind"] = "tcp://127.0.0.1:1".into();
    std::fs::write(&cache, other.to_string()).unwrap();
    let plane = Plane::with_config(&local, "k", Arc::clone(&ring));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(plane.applied().is_empty(), "{:?}", plane.applied());
    plane.stop().await;
}

/// A real 3-member etcd cluster loses its leader: registration, heartbeats and the config
/// watch carry on through the other members. Prints the write stall and the recovery time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_survives_losing_the_etcd_leader() {
    let dir = tempfile::tempdir().unwrap();
    let mut members = etcd_cluster(dir.path(), 3);
    let endpoints: Vec<String> = members.iter().map(|(_, e)| e.clone()).collect();
    let all: Vec<&str> = endpoints.iter().map(String::as_str).collect();
    for e in &all {
        connect(e).await;
    }
    let plane = Plane::start(&all, "ha", 0.8);
    let reg = keys::component(NAME, "ha");
    let mut c = connect(all[0]).await;
    until("registered", async || json(&mut c, &reg).await.is_some()).await;

    // Make the member the plane talks to (the first endpoint) the leader, then kill it: the
    // worst case, its session and the cluster's leader lost at once.
    let list = c.member_list().await.unwrap();
    let url = |i: usize| format!("http://{}", endpoints[i]);
    let id_of =
        |i: usize| list.members().iter().find(|m| m.client_urls()[0] == url(i)).unwrap().id();
    let leader_id = c.status().await.unwrap().leader();
    if leader_id != id_of(0) {
        let current = (0..3).find(|&i| id_of(i) == leader_id).unwrap();
        let mut at_leader = connect(all[current]).await;
        at_leader.move_leader(id_of(0)).await.unwrap();
    }
    until("m0 leads", async || c.status().await.is_ok_and(|s| s.leader() == id_of(0))).await;
    let leader = 0;
    let lease_of = async |c: &mut Client| {
        c.get(reg.as_str(), None).await.ok()?.kvs().first().map(etcd_client::KeyValue::lease)
    };
    let lease_before = lease_of(&mut c).await.unwrap();
    let killed_at = Instant::now();
    drop(members.remove(leader));
    let rest: Vec<&str> = endpoints
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, e)| e.as_str())
        .collect();

    // Write stall: how long until a write through the survivors succeeds.
    let mut survivor = Client::connect(&rest, None).await.unwrap();
    loop {
        let attempt =
            tokio::time::timeout(Duration::from_millis(500), survivor.put("/ha/probe", "x", None))
                .await;
        if matches!(attempt, Ok(Ok(_))) {
            break;
        }
        assert!(killed_at.elapsed() < Duration::from_secs(15), "the cluster did not recover");
    }
    let stall = killed_at.elapsed();

    // The daemon's registration (2 s lease) is alive after more than two TTLs, and a config
    // change made through the survivors is applied.
    // The daemon's registration (2 s lease) outlives the leader: present after more than
    // two TTLs (re-registered through a survivor if its session was on the dead member).
    tokio::time::sleep(Duration::from_secs(5)).await;
    until("registration after the leader's death", async || {
        json(&mut survivor, &reg).await.is_some()
    })
    .await;
    let changed = Instant::now();
    survivor
        .put(
            keys::active(NAME),
            sealed_config(&plane.ring, &plane.local, |v| {
                v["verdict"]["malicious_score"] = 0.9.into();
            }),
            None,
        )
        .await
        .unwrap();
    until("config watch continues", async || plane.applied() == [0.9]).await;
    let applied = changed.elapsed();
    let lease_after = lease_of(&mut survivor).await.unwrap();
    eprintln!(
        "HA: killed the leader, m{leader}, which the daemon was connected to; writes stalled {} ms; \
         the daemon re-registered through a survivor ({}); a config change was applied {} ms after its write",
        stall.as_millis(),
        if lease_after == lease_before { "same lease" } else { "new lease" },
        applied.as_millis()
    );
    plane.stop().await;
}
