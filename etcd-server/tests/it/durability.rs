//! Durability: etcd-server is killed with SIGKILL in the middle of a stream of writes; after a
//! restart on the same data directory every acknowledged write is there, and the revision
//! has not gone backwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::server::{connect, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_write_is_lost_to_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let port = mld_test_utils::free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let mut server = start(dir.path(), port);
    let mut c = connect(&endpoint).await;
    // Writers in flight when the kill lands: two concurrent streams of puts.
    let count = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..2 {
        let mut c = c.clone();
        let count = Arc::clone(&count);
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0.. {
                let key = format!("w{w}/{i:06}");
                match c.put(key.clone(), format!("v{i}"), None).await {
                    Ok(r) => acked.push((key, r.header().unwrap().revision())),
                    Err(_) => break,
                }
                count.fetch_add(1, Ordering::Relaxed);
            }
            acked
        }));
    }
    // Kill once the writers are well under way (a count, not a fixed time: on a busy machine
    // fsyncs are slow), while they keep writing.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while count.load(Ordering::Relaxed) <= 200 {
        assert!(std::time::Instant::now() < deadline, "the writers never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.0.kill().unwrap(); // SIGKILL
    server.0.wait().unwrap();
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert!(acked.len() > 100, "the writers got going: {} acknowledged", acked.len());
    let last_rev = acked.iter().map(|(_, r)| *r).max().unwrap();

    let _restarted = start(dir.path(), port);
    drop(c);
    c = connect(&endpoint).await;
    let all = c.get("w", Some(etcd_client::GetOptions::new().with_prefix())).await.unwrap();
    let present: std::collections::HashSet<&[u8]> =
        all.kvs().iter().map(etcd_client::KeyValue::key).collect();
    let lost: Vec<&String> =
        acked.iter().map(|(k, _)| k).filter(|k| !present.contains(k.as_bytes())).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {lost:?}",
        lost.len(),
        acked.len()
    );
    let rev = all.header().unwrap().revision();
    assert!(rev >= last_rev, "revision went backwards: {rev} after {last_rev} was acknowledged");
    // And it goes on from there.
    let next = c.put("after", "restart", None).await.unwrap().header().unwrap().revision();
    assert!(next > rev);
}
