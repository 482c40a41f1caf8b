//! The bus over real `ZeroMQ` on <tcp://127.0.0.1>: delivery, exact loss accounting with slow
//! subscribers, rejection of everything that is not a genuine new message, restarts, metrics.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mld_bus::{Publish, Publisher, PublisherOptions, Subscriber, SubscriberOptions, Topic};
use mld_crypto_transport::{Channel, KeyRing, Sealer};
use mld_proto::{Detection, FlowEvent};
use mld_telemetry::prometheus_client::registry::Registry;
use prost::Message;

const WAIT: Duration = Duration::from_secs(10);

fn ring(secret: u8) -> Arc<KeyRing> {
    mld_test_utils::key_ring(secret, 1)
}

/// `len` hexadecimal characters that LZ4 cannot shrink much (xorshift output).
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let _ = write!(out, "{x:016x}");
    }
    out
}

fn detection(id: impl Into<String>) -> Detection {
    Detection { detection_id: id.into(), final_score: 0.5, ..Detection::default() }
}

struct Pair {
    publisher: Publisher,
    subscriber: Subscriber<Detection>,
    pub_registry: Registry,
    sub_registry: Registry,
}

fn pair(send_hwm: u32, recv_hwm: u32) -> Pair {
    let ctx = zmq::Context::new();
    let ring = ring(1);
    let mut pub_registry = mld_telemetry::component_registry("test-pub");
    let mut sub_registry = mld_telemetry::component_registry("test-sub");
    let options = PublisherOptions { send_hwm, ..PublisherOptions::new("tcp://127.0.0.1:*") };
    let mut publisher =
        Publisher::bind(&ctx, Arc::clone(&ring), &options, &mut pub_registry).unwrap();
    let sub_options =
        SubscriberOptions { recv_hwm, ..SubscriberOptions::new([publisher.endpoint()]) };
    let subscriber = Subscriber::connect(&ctx, ring, &sub_options, &mut sub_registry).unwrap();
    assert!(
        publisher.wait_for_subscriber(Topic::Detection, WAIT).unwrap(),
        "subscriber never joined"
    );
    Pair { publisher, subscriber, pub_registry, sub_registry }
}

/// Receives until `id` arrives; returns how many messages came before it.
fn recv_until(subscriber: &mut Subscriber<Detection>, id: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_mins(1);
    let mut count = 0;
    loop {
        assert!(Instant::now() < deadline, "{id} never arrived");
        if let Some(r) = subscriber.recv(Duration::from_millis(100)).unwrap() {
            if r.message.detection_id == id {
                return count;
            }
            count += 1;
        }
    }
}

/// Publishes a fence until it is accepted by `ZeroMQ`, so the tail of a burst is accounted for.
fn publish_fence(p: &mut Pair) {
    let deadline = Instant::now() + WAIT;
    // Make room first: read whatever is queued.
    while p.subscriber.recv(Duration::from_millis(300)).unwrap().is_some() {}
    while p.publisher.publish(&detection("fence")).unwrap() == Publish::Dropped {
        assert!(Instant::now() < deadline, "fence never accepted");
        // The burst's tail may still have been in flight when the reads above went quiet,
        // filling the queues again: keep reading (every read is counted in the stats).
        while p.subscriber.recv(Duration::from_millis(10)).unwrap().is_some() {}
    }
}

#[test]
fn every_message_arrives_intact_when_nothing_is_slow() {
    let mut p = pair(100_000, 100_000);
    let sent: Vec<_> = (0..2_000)
        .map(|i| Detection { final_score: f64::from(i) / 2_000.0, ..detection(format!("d-{i}")) })
        .collect();
    for d in &sent {
        assert_eq!(p.publisher.publish(d).unwrap(), Publish::Sent);
    }
    for (i, expected) in sent.iter().enumerate() {
        let r = p.subscriber.recv(WAIT).unwrap().expect("message");
        assert_eq!(&r.message, expected);
        assert_eq!(r.seq, i as u64);
        assert_eq!(r.key_epoch, 1);
    }
    assert!(p.subscriber.recv(Duration::from_millis(100)).unwrap().is_none());
    let stats = p.subscriber.stats();
    assert_eq!((stats.received, stats.lost, stats.late), (2_000, 0, 0));
    assert!(stats.rejected.is_empty(), "{stats:?}");
    assert_eq!(p.publisher.stats().dropped, 0);
}

#[test]
fn stalled_subscriber_losses_are_counted_exactly() {
    let mut p = pair(500, 500);
    // The subscriber reads nothing during the burst: queues fill, then the publisher drops.
    let payload = "x".repeat(200);
    let total = 100_000_u64;
    for i in 0..total {
        let _ = p.publisher.publish(&detection(format!("{i}-{payload}"))).unwrap();
    }
    let burst = p.publisher.stats();
    assert_eq!(burst.sent + burst.dropped, total);
    assert!(burst.dropped > 0, "the burst must overflow the queues: {burst:?}");
    assert!(burst.sent > 0);

    publish_fence(&mut p);
    recv_until(&mut p.subscriber, "fence");
    let pubs = p.publisher.stats();
    let subs = p.subscriber.stats();
    assert_eq!(
        subs.received, pubs.sent,
        "every message ZeroMQ accepted arrived: {subs:?} {pubs:?}"
    );
    assert_eq!(subs.lost, pubs.dropped, "every drop is seen as a loss: {subs:?} {pubs:?}");
    assert_eq!(subs.late, 0);
    assert!(subs.rejected.is_empty(), "{subs:?}");
}

#[test]
fn slow_reading_subscriber_losses_are_counted_exactly() {
    let Pair { mut publisher, subscriber, .. } = pair(200, 200);
    let reader = std::thread::spawn(move || {
        let mut subscriber = subscriber;
        let mut n = 0_u64;
        loop {
            match subscriber.recv(WAIT).unwrap() {
                Some(r) if r.message.detection_id == "fence" => return (n, subscriber.stats()),
                Some(_) => {
                    n += 1;
                    if n.is_multiple_of(10) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                None => panic!("reader starved"),
            }
        }
    });
    // 2 KiB incompressible messages, so that the kernel's socket buffers cannot absorb the
    // burst while the reader takes about 0.5 ms per message.
    let total = 20_000_u64;
    for i in 0..total {
        let _ = publisher.publish(&detection(noise(i, 2_048))).unwrap();
    }
    let deadline = Instant::now() + Duration::from_mins(1);
    while publisher.publish(&detection("fence")).unwrap() == Publish::Dropped {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    let (before_fence, subs) = reader.join().unwrap();
    let pubs = publisher.stats();
    assert!(pubs.dropped > 0, "the reader must be slower than the writer: {pubs:?}");
    assert_eq!(subs.received, pubs.sent);
    assert_eq!(before_fence + 1, pubs.sent);
    assert_eq!(subs.lost, pubs.dropped);
}

#[test]
fn everything_but_genuine_new_messages_is_rejected_and_counted_by_reason() {
    let ctx = zmq::Context::new();
    let good_ring = ring(1);
    // A rogue publisher on its own endpoint, speaking raw ZeroMQ.
    let rogue = ctx.socket(zmq::XPUB).unwrap();
    rogue.bind("tcp://127.0.0.1:*").unwrap();
    let rogue_ep = rogue.get_last_endpoint().unwrap().unwrap();
    let mut registry = Registry::default();
    let mut subscriber = Subscriber::<Detection>::connect(
        &ctx,
        Arc::clone(&good_ring),
        &SubscriberOptions::new([rogue_ep]),
        &mut registry,
    )
    .unwrap();
    rogue.set_rcvtimeo(10_000).unwrap();
    assert_eq!(rogue.recv_bytes(0).unwrap()[0], 1, "subscription notice");

    let topic = b"detection.v1".as_slice();
    let mut good = Sealer::new(Arc::clone(&good_ring), Channel::Detection).unwrap();
    let genuine = good.seal(&detection("genuine").encode_to_vec()).unwrap();
    let undecodable = good.seal(&[0xff, 0xff, 0xff]).unwrap();
    let wrong_key = Sealer::new(ring(2), Channel::Detection).unwrap().seal(b"x").unwrap();
    let wrong_channel =
        Sealer::new(Arc::clone(&good_ring), Channel::Flow).unwrap().seal(b"x").unwrap();
    let other_epoch = Sealer::new(mld_test_utils::key_ring(1, 9), Channel::Detection)
        .unwrap()
        .seal(b"x")
        .unwrap();
    let send = |frames: &[&[u8]]| rogue.send_multipart(frames, 0).unwrap();
    send(&[topic]);
    send(&[topic, &genuine, b"extra"]);
    send(&[b"detection.v1-other", &genuine]);
    send(&[topic, b"garbage that is long enough to hold a header and a tag, but is not MLD1"]);
    send(&[topic, &genuine[..20]]);
    send(&[topic, &wrong_key]);
    send(&[topic, &wrong_channel]);
    send(&[topic, &other_epoch]);
    send(&[topic, &undecodable]);
    send(&[topic, &genuine]);
    send(&[topic, &genuine]);
    send(&[topic, &genuine]);

    let first = subscriber.recv(WAIT).unwrap().expect("the genuine message");
    assert_eq!(first.message.detection_id, "genuine");
    assert!(
        subscriber.recv(Duration::from_millis(300)).unwrap().is_none(),
        "replays are not delivered"
    );
    let stats = subscriber.stats();
    let expected: Vec<(&str, u64)> = vec![
        ("auth_failed", 1),
        ("bad_magic", 1),
        ("decode", 1),
        ("frames", 2),
        ("replay", 2),
        ("topic", 1),
        ("truncated", 1),
        ("unknown_epoch", 1),
        ("wrong_channel", 1),
    ];
    assert_eq!(stats.rejected.into_iter().collect::<Vec<_>>(), expected);
    assert_eq!((stats.received, stats.lost), (1, 0));

    let text = mld_telemetry::render(&registry);
    assert!(
        text.contains(r#"bus_rejected_messages_total{topic="detection.v1",reason="replay"} 2"#),
        "{text}"
    );
}

const CHILD_ENV: &str = "MLD_BUS_PUBLISHER_CHILD";

/// Entry point of a publisher child process (a no-op in a normal test run): binds the given
/// endpoint, waits for a subscriber, publishes ten flow events tagged with the run, exits.
#[test]
fn publisher_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (endpoint, run) = spec.split_once(' ').unwrap();
    let ctx = zmq::Context::new();
    let mut publisher =
        Publisher::bind(&ctx, ring(1), &PublisherOptions::new(endpoint), &mut Registry::default())
            .unwrap();
    assert!(publisher.wait_for_subscriber(Topic::Flow, WAIT).unwrap());
    for i in 0..10 {
        let event = FlowEvent { event_id: format!("{run}-{i}"), ..FlowEvent::default() };
        assert_eq!(publisher.publish(&event).unwrap(), Publish::Sent);
    }
    // The publisher holds the last handle on its context: dropping it waits until the queue
    // is flushed, so exiting right after loses nothing.
    drop(ctx);
    drop(publisher);
    std::process::exit(0);
}

#[test]
fn restarted_publisher_process_is_accepted_without_counting_losses() {
    let ctx = zmq::Context::new();
    let endpoint = format!("tcp://127.0.0.1:{}", mld_test_utils::free_port());
    let mut subscriber = Subscriber::<FlowEvent>::connect(
        &ctx,
        ring(1),
        &SubscriberOptions::new([&endpoint]),
        &mut Registry::default(),
    )
    .unwrap();
    let mut senders = Vec::new();
    for run in 0..3 {
        let mut child =
            mld_test_utils::child_test("publisher_child", CHILD_ENV, &format!("{endpoint} {run}"))
                .stderr(std::process::Stdio::inherit())
                .spawn()
                .unwrap();
        for i in 0..10 {
            let r = subscriber
                .recv(WAIT)
                .unwrap()
                .unwrap_or_else(|| panic!("run {run}: message {i} missing"));
            assert_eq!(r.message.event_id, format!("{run}-{i}"));
            assert_eq!(r.seq, i, "a restarted sender starts at 0");
            senders.push(r.sender_id);
        }
        assert!(child.wait().unwrap().success());
    }
    senders.dedup();
    assert_eq!(senders.len(), 3, "one sender id per process start");
    let stats = subscriber.stats();
    assert_eq!((stats.received, stats.lost), (30, 0));
}

#[test]
fn metrics_are_named_per_component_and_topic() {
    let mut p = pair(10, 10);
    let _ = p.publisher.publish(&detection("one")).unwrap();
    p.subscriber.recv(WAIT).unwrap().unwrap();
    let pubs = mld_telemetry::render(&p.pub_registry);
    let subs = mld_telemetry::render(&p.sub_registry);
    for line in [
        r#"mld_test_pub_bus_published_messages_total{topic="detection.v1"} 1"#,
        r#"mld_test_pub_bus_dropped_messages_total{topic="detection.v1"} 0"#,
    ] {
        assert!(pubs.contains(line), "{line} in {pubs}");
    }
    for line in [
        r#"mld_test_sub_bus_received_messages_total{topic="detection.v1"} 1"#,
        r#"mld_test_sub_bus_lost_messages_total{topic="detection.v1"} 0"#,
        r#"mld_test_sub_bus_rejected_messages_total{topic="detection.v1",reason="auth_failed"} 0"#,
    ] {
        assert!(subs.contains(line), "{line} in {subs}");
    }
}

#[test]
fn bind_errors_name_the_endpoint() {
    let ctx = zmq::Context::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("tcp://127.0.0.1:{}", taken.local_addr().unwrap().port());
    let err = Publisher::bind(&ctx, ring(1), &PublisherOptions::new(&ep), &mut Registry::default())
        .unwrap_err();
    assert!(err.to_string().contains(&ep), "{err}");
    let err = Publisher::bind(
        &ctx,
        ring(1),
        &PublisherOptions::new("bogus://x"),
        &mut Registry::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("bogus://x"), "{err}");
}
