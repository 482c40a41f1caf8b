//! `etcd-server init`, `config get|put` and `keys rotate` against a running etcd-server, and
//! a key rotation in the middle of bus traffic between two daemons' key rings.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mld_bus::{Publish, Publisher, PublisherOptions, Subscriber, SubscriberOptions, Topic};
use mld_control::keys;
use mld_crypto_transport::{KeyRing, RootSecret};
use mld_proto::Detection;

use crate::control::{Plane, until};
use crate::server::{connect, start};

/// Messages sent in the rotation test.
const N: u64 = 20_000;

fn admin(args: &[&str], endpoint: &str, secret: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_etcd-server"))
        .args(args)
        .args(["--endpoint", &format!("http://{endpoint}"), "--root-secret"])
        .arg(secret)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_config_and_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let port = mld_test_utils::free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let _server = start(dir.path(), port);
    let mut c = connect(&endpoint).await;
    let secret = dir.path().join("etc/root.secret");

    let first = admin(&["init"], &endpoint, &secret);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("wrote a new root secret")
            && text(&first).contains("set the key epoch to 1")
    );
    let mode = std::fs::metadata(&secret)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()))
        .unwrap();
    assert_eq!(mode & 0o777, 0o600);
    let written = std::fs::read(&secret).unwrap();
    let again = admin(&["init"], &endpoint, &secret);
    assert!(
        again.status.success() && text(&again).contains("kept the existing root secret"),
        "{}",
        text(&again)
    );
    assert!(text(&again).contains("kept the key epoch at 1"));
    assert_eq!(std::fs::read(&secret).unwrap(), written, "init never replaces a secret");

    // A valid config goes in sealed; an invalid one is refused, naming the field, and not written.
    let good = dir.path().join("good.json");
    std::fs::write(&good, r#"{ "verdict": { "suspicious_score": 0.4, "malicious_score": 0.85 } }"#)
        .unwrap();
    let put = admin(&["config", "put", "ml-detector", good.to_str().unwrap()], &endpoint, &secret);
    assert!(put.status.success(), "{}", text(&put));
    let raw = c.get(keys::active("ml-detector"), None).await.unwrap().kvs()[0].value().to_vec();
    assert!(!String::from_utf8_lossy(&raw).contains("malicious_score"), "stored sealed");
    let got = admin(&["config", "get", "ml-detector"], &endpoint, &secret);
    assert!(text(&got).contains("0.85"), "{}", text(&got));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{ "verdict": { "malicious_score": 7 } }"#).unwrap();
    let refused =
        admin(&["config", "put", "ml-detector", bad.to_str().unwrap()], &endpoint, &secret);
    assert!(
        !refused.status.success() && text(&refused).contains("verdict.malicious_score"),
        "{}",
        text(&refused)
    );
    // Over an active config, a field the daemon reads only at start is refused, naming it with
    // both values (issue #26, fault 7b); thresholds still go in.
    let restart = dir.path().join("restart.json");
    std::fs::write(
        &restart,
        r#"{ "verdict": { "suspicious_score": 0.4, "malicious_score": 0.9 },
             "publish": { "bind": "tcp://127.0.0.1:6000" } }"#,
    )
    .unwrap();
    let refused =
        admin(&["config", "put", "ml-detector", restart.to_str().unwrap()], &endpoint, &secret);
    assert!(
        !refused.status.success()
            && text(&refused)
                .contains(r#"publish.bind: "tcp://127.0.0.1:5572" -> "tcp://127.0.0.1:6000""#)
            && text(&refused).contains("restart it"),
        "{}",
        text(&refused)
    );
    let got = admin(&["config", "get", "ml-detector"], &endpoint, &secret);
    assert!(text(&got).contains("0.85") && !text(&got).contains("6000"), "{}", text(&got));
    let unknown = admin(&["config", "put", "nosuch", good.to_str().unwrap()], &endpoint, &secret);
    assert!(
        !unknown.status.success() && text(&unknown).contains("unknown component"),
        "{}",
        text(&unknown)
    );

    // Rotation: the epoch moves and the stored config is re-sealed under it.
    let rotated = admin(&["keys", "rotate"], &endpoint, &secret);
    assert!(rotated.status.success(), "{}", text(&rotated));
    assert!(
        text(&rotated).contains("key epoch 1 -> 2; re-sealed 1 stored configs"),
        "{}",
        text(&rotated)
    );
    let raw = c.get(keys::active("ml-detector"), None).await.unwrap().kvs()[0].value().to_vec();
    assert_eq!(mld_control::sealed::epoch_of(&raw), Some(2));
    assert!(text(&admin(&["config", "get", "ml-detector"], &endpoint, &secret)).contains("0.85"));

    // No etcd there: a clear error, non-zero exit.
    let closed = format!("127.0.0.1:{}", mld_test_utils::free_port());
    let down = admin(&["keys", "rotate"], &closed, &secret);
    assert!(!down.status.success() && text(&down).contains("--endpoint"), "{}", text(&down));
}

/// Two daemons' key rings, each following etcd through its own control plane, with a
/// publisher and a subscriber on a real ZeroMQ bus between them: `keys rotate` in the middle
/// of the traffic drops nothing, and the traffic ends on the new epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_drops_no_message() {
    let dir = tempfile::tempdir().unwrap();
    let port = mld_test_utils::free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let _server = start(dir.path(), port);
    connect(&endpoint).await;
    let secret = dir.path().join("root.secret");
    RootSecret::from_bytes([1; 32]).write_new(&secret).unwrap();
    assert!(admin(&["init"], &endpoint, &secret).status.success());

    let sender = Plane::with_ring(&[&endpoint], "sender", 0.8, mld_test_utils::key_ring(1, 1));
    let receiver = Plane::with_ring(&[&endpoint], "receiver", 0.8, mld_test_utils::key_ring(1, 1));
    let (send_ring, recv_ring): (Arc<KeyRing>, Arc<KeyRing>) =
        (Arc::clone(&sender.ring), Arc::clone(&receiver.ring));

    let traffic = tokio::task::spawn_blocking(move || {
        let ctx = zmq::Context::new();
        let mut registry = mld_telemetry::component_registry("test");
        let mut publisher = Publisher::bind(
            &ctx,
            send_ring,
            &PublisherOptions::new("tcp://127.0.0.1:*"),
            &mut registry,
        )
        .unwrap();
        let mut subscriber: Subscriber<Detection> = Subscriber::connect(
            &ctx,
            recv_ring,
            &SubscriberOptions::new([publisher.endpoint()]),
            &mut registry,
        )
        .unwrap();
        assert!(publisher.wait_for_subscriber(Topic::Detection, Duration::from_secs(10)).unwrap());
        let mut epochs = Vec::new();
        let mut received = 0;
        for i in 0..N {
            let d = Detection { detection_id: i.to_string(), ..Detection::default() };
            assert_eq!(publisher.publish(&d).unwrap(), Publish::Sent);
            if i % 100 == 99 {
                std::thread::sleep(Duration::from_millis(20)); // ~4 s of traffic
            }
            while let Some(r) = subscriber.recv(Duration::ZERO).unwrap() {
                received += 1;
                epochs.push(r.key_epoch);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while received < N && Instant::now() < deadline {
            if let Some(r) = subscriber.recv(Duration::from_millis(100)).unwrap() {
                received += 1;
                epochs.push(r.key_epoch);
            }
        }
        (received, subscriber.stats(), epochs)
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rotated = admin(&["keys", "rotate"], &endpoint, &secret);
    assert!(rotated.status.success(), "{}", text(&rotated));
    until("both rings on epoch 2", async || {
        sender.ring.current_epoch() == 2 && receiver.ring.current_epoch() == 2
    })
    .await;
    let (received, stats, epochs) = traffic.await.unwrap();
    assert_eq!(received, N, "{stats:?}");
    assert_eq!((stats.lost, stats.rejected.values().sum::<u64>()), (0, 0), "{stats:?}");
    assert_eq!(epochs.first(), Some(&1));
    assert_eq!(epochs.last(), Some(&2), "the traffic ends on the new epoch");
    sender.stop().await;
    receiver.stop().await;
}
