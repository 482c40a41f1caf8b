//! The transport demo behind `make run-lab` until the daemons exist: real sealed envelopes
//! over real ZeroMQ on 127.0.0.1, with the accounting an operator would read off /metrics.
//!
//! It publishes synthetic `Detection` messages (ids only; nothing is detected here) and shows:
//! delivery, exact loss accounting when a subscriber stalls, rejection of forged, replayed and
//! wrongly keyed messages by reason, and a key-epoch rotation without loss.
#![allow(clippy::print_stdout, clippy::unwrap_used, reason = "a demo that reports on stdout")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use mld_bus::{Publish, Publisher, PublisherOptions, Subscriber, SubscriberOptions, Topic};
use mld_crypto_transport::{Channel, KeyRing, RootSecret, Sealer};
use mld_proto::Detection;
use prost::Message;

const WAIT: Duration = Duration::from_secs(10);

fn synthetic(id: String) -> Detection {
    Detection { detection_id: id, ..Detection::default() }
}

fn drain(sub: &mut Subscriber<Detection>, until_id: &str) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_mins(1);
    let mut n = 0;
    loop {
        ensure!(Instant::now() < deadline, "{until_id} never arrived");
        if let Some(r) = sub.recv(Duration::from_millis(200))? {
            n += 1;
            if r.message.detection_id == until_id {
                return Ok(n);
            }
        }
    }
}

struct Demo {
    ring: Arc<KeyRing>,
    secret_path: std::path::PathBuf,
    publisher: Publisher,
    subscriber: Subscriber<Detection>,
    sub_registry: mld_telemetry::prometheus_client::registry::Registry,
    _dir: tempfile::TempDir,
}

fn main() -> Result<()> {
    println!("ML Defender transport demo: sealed envelopes over ZeroMQ on 127.0.0.1");
    println!(
        "(synthetic Detection messages carrying only an id: this shows the transport, not detection)\n"
    );
    let mut demo = setup()?;
    delivery(&mut demo)?;
    stalled_subscriber(&mut demo)?;
    rogue_envelopes(&mut demo)?;
    key_rotation(&mut demo)?;
    println!("the subscriber's /metrics (bus counters):");
    for line in mld_telemetry::render(&demo.sub_registry)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.ends_with(" 0"))
    {
        println!("  {line}");
    }
    println!("\nThe daemons that use this transport arrive with issues #3-#7; see README.");
    Ok(())
}

fn setup() -> Result<Demo> {
    let dir = tempfile::tempdir()?;
    let secret_path = dir.path().join("root.key");
    RootSecret::generate()?.write_new(&secret_path)?;
    let ring = Arc::new(KeyRing::with_grace(
        RootSecret::load(&secret_path).context("loading the root secret")?,
        1,
        Duration::from_secs(30),
    ));
    println!(
        "root secret  {} (generated, mode 0600, loaded back with its permissions checked)",
        secret_path.display()
    );

    let ctx = zmq::Context::new();
    let mut pub_registry = mld_telemetry::component_registry("ml-detector");
    let mut sub_registry = mld_telemetry::component_registry("firewall-agent");
    let options =
        PublisherOptions { send_hwm: 1_000, ..PublisherOptions::new("tcp://127.0.0.1:*") };
    let mut publisher = Publisher::bind(&ctx, Arc::clone(&ring), &options, &mut pub_registry)?;
    let sub_options =
        SubscriberOptions { recv_hwm: 1_000, ..SubscriberOptions::new([publisher.endpoint()]) };
    let subscriber =
        Subscriber::<Detection>::connect(&ctx, Arc::clone(&ring), &sub_options, &mut sub_registry)?;
    ensure!(publisher.wait_for_subscriber(Topic::Detection, WAIT)?, "the subscriber never joined");
    println!("publisher    {} (detection.v1, XPUB, send_hwm 1000)", publisher.endpoint());
    println!("subscriber   connected (recv_hwm 1000)\n");
    Ok(Demo { ring, secret_path, publisher, subscriber, sub_registry, _dir: dir })
}

/// 1. Delivery with a subscriber that keeps up.
fn delivery(d: &mut Demo) -> Result<()> {
    let n = 10_000;
    let start = Instant::now();
    for i in 0..n {
        ensure!(
            d.publisher.publish(&synthetic(format!("a-{i}")))? == Publish::Sent,
            "dropped with a reading subscriber"
        );
        if i % 500 == 499 {
            drain(&mut d.subscriber, &format!("a-{i}"))?;
        }
    }
    let elapsed = start.elapsed();
    let s = d.subscriber.stats();
    println!(
        "1. delivery: {n} published, {} received, {} lost, in {:.0} ms ({:.0} messages/s)",
        s.received,
        s.lost,
        elapsed.as_secs_f64() * 1e3,
        f64::from(n) / elapsed.as_secs_f64()
    );
    Ok(())
}

/// 2. A stalled subscriber: the publisher never blocks; every drop is counted on both sides.
fn stalled_subscriber(d: &mut Demo) -> Result<()> {
    let before_pub = d.publisher.stats();
    let before_sub = d.subscriber.stats();
    let burst = 100_000;
    for i in 0..burst {
        let _ = d.publisher.publish(&synthetic(format!("b-{i}-{}", "x".repeat(200))))?;
    }
    while d.subscriber.recv(Duration::from_millis(300))?.is_some() {}
    while d.publisher.publish(&synthetic("fence".into()))? == Publish::Dropped {
        std::thread::sleep(Duration::from_millis(10));
    }
    drain(&mut d.subscriber, "fence")?;
    let (p, s) = (d.publisher.stats(), d.subscriber.stats());
    let (sent, dropped) = (p.sent - before_pub.sent, p.dropped - before_pub.dropped);
    let (received, lost) = (s.received - before_sub.received, s.lost - before_sub.lost);
    let verdict = if sent == received && dropped == lost {
        "every message accounted for"
    } else {
        "MISMATCH"
    };
    println!(
        "2. stalled subscriber, burst of {burst} (+ fence): publisher sent {sent}, dropped {dropped}; \
              subscriber received {received}, lost {lost} -> {verdict}"
    );
    ensure!(sent == received && dropped == lost, "accounting mismatch");
    Ok(())
}

/// 3. Forged, replayed and wrongly keyed messages.
fn rogue_envelopes(d: &mut Demo) -> Result<()> {
    let mut good = Sealer::new(Arc::clone(&d.ring), Channel::Detection)?;
    let genuine = good.seal(&synthetic("genuine".into()).encode_to_vec())?;
    // A fresh message (new sequence number) with one bit of its tag flipped.
    let mut tampered = good.seal(&synthetic("tampered".into()).encode_to_vec())?;
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let foreign =
        Sealer::new(Arc::new(KeyRing::new(RootSecret::generate()?, 1)), Channel::Detection)?
            .seal(b"x")?;
    let wrong_epoch = Sealer::new(
        Arc::new(KeyRing::new(RootSecret::load(&d.secret_path)?, 7)),
        Channel::Detection,
    )?
    .seal(b"x")?;
    for envelope in [&genuine, &genuine, &tampered, &foreign, &wrong_epoch, &genuine[..30].to_vec()]
    {
        let _ = d.publisher.send_sealed(Topic::Detection, envelope)?;
    }
    let _ = d.publisher.publish(&synthetic("after-attack".into()))?;
    drain(&mut d.subscriber, "after-attack")?;
    let rejected: Vec<String> =
        d.subscriber.stats().rejected.iter().map(|(r, n)| format!("{r}={n}")).collect();
    println!(
        "3. rogue envelopes (1 genuine, 1 replay of it, 1 tampered, 1 foreign key, 1 unknown epoch, 1 truncated): rejected {}",
        rejected.join(" ")
    );
    Ok(())
}

/// 4. Key rotation: the publisher switches epochs; the subscriber accepts both during grace.
fn key_rotation(d: &mut Demo) -> Result<()> {
    let lost_before = d.subscriber.stats().lost;
    d.ring.rotate(2)?;
    let _ = d.publisher.publish(&synthetic("epoch-2".into()))?;
    let r = loop {
        let r = d.subscriber.recv(WAIT)?.context("no message after rotation")?;
        if r.message.detection_id == "epoch-2" {
            break r;
        }
    };
    println!(
        "4. key rotation 1 -> 2: next message sealed with epoch {}, accepted; {} lost\n",
        r.key_epoch,
        d.subscriber.stats().lost - lost_before
    );
    Ok(())
}
