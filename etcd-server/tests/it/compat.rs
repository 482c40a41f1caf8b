use std::path::Path;
use std::time::Duration;

use crate::server::{Running, connect};
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, KeyValue, PutOptions, SortOrder,
    SortTarget, Txn, TxnOp, TxnOpResponse,
};

/// A real etcd and etcd-server side by side (data and logs in `dir`), each with a client:
/// `(etcd's, ours)`; the two servers stop when the returned guards drop.
async fn side_by_side(dir: &Path) -> ((Running, Running), Client, Client) {
    let (servers, theirs, mine) = crate::server::side_by_side(dir);
    (servers, connect(&theirs).await, connect(&mine).await)
}

/// The scenarios' traces from our server and from etcd must be equal, line by line.
fn assert_same(got: &[String], expected: &[String]) {
    for (i, (e, g)) in expected.iter().zip(got).enumerate() {
        assert_eq!(
            g,
            e,
            "line {i} differs\nours:\n{}\netcd:\n{}",
            got.join("\n"),
            expected.join("\n")
        );
    }
    assert_eq!(got.len(), expected.len());
}

fn kvs(kvs: &[KeyValue]) -> String {
    kvs.iter()
        .map(|kv| {
            format!(
                "{}={} c{} m{} v{} l{}",
                String::from_utf8_lossy(kv.key()),
                String::from_utf8_lossy(kv.value()),
                kv.create_revision(),
                kv.mod_revision(),
                kv.version(),
                kv.lease()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn err(e: &etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(s) => format!("error {:?}: {}", s.code(), s.message()),
        other => format!("error {other}"),
    }
}

/// The scenario; one line per observation.
async fn scenario(c: &mut Client) -> Vec<String> {
    let mut t = Vec::new();
    macro_rules! get {
        ($key:expr, $opts:expr) => {
            match c.get($key, $opts).await {
                Ok(r) => t.push(format!(
                    "get rev {} count {} more {} [{}]",
                    r.header().unwrap().revision(),
                    r.count(),
                    r.more(),
                    kvs(r.kvs())
                )),
                Err(e) => t.push(err(&e)),
            }
        };
    }
    // Revisions, versions, create revisions; puts with prev_kv.
    for (k, v) in [("k1", "a"), ("k2", "b"), ("k1", "c"), ("k3", "d"), ("x", "e")] {
        let r = c.put(k, v, Some(PutOptions::new().with_prev_key())).await.unwrap();
        t.push(format!(
            "put {k} rev {} prev [{}]",
            r.header().unwrap().revision(),
            r.prev_key().map(|kv| kvs(std::slice::from_ref(kv))).unwrap_or_default()
        ));
    }
    get!("k1", None);
    get!("k", Some(GetOptions::new().with_prefix()));
    get!("k", Some(GetOptions::new().with_prefix().with_limit(2)));
    get!("k", Some(GetOptions::new().with_prefix().with_count_only()));
    get!("k", Some(GetOptions::new().with_prefix().with_keys_only()));
    get!("k", Some(GetOptions::new().with_prefix().with_sort(SortTarget::Mod, SortOrder::Descend)));
    get!("k", Some(GetOptions::new().with_prefix().with_sort(SortTarget::Value, SortOrder::None)));
    get!("k1", Some(GetOptions::new().with_range("k3")));
    get!("k2", Some(GetOptions::new().with_from_key()));
    get!("", Some(GetOptions::new().with_all_keys().with_min_mod_revision(4)));
    get!("k", Some(GetOptions::new().with_prefix().with_revision(3)));
    get!("k1", Some(GetOptions::new().with_revision(100)));
    get!("nothing", None);
    get!("", None);
    // Deletes.
    match c.delete("k2", Some(DeleteOptions::new().with_prev_key())).await {
        Ok(r) => t.push(format!(
            "delete rev {} deleted {} [{}]",
            r.header().unwrap().revision(),
            r.deleted(),
            kvs(r.prev_kvs())
        )),
        Err(e) => t.push(err(&e)),
    }
    let r = c.delete("nothing", None).await.unwrap();
    t.push(format!(
        "delete nothing rev {} deleted {}",
        r.header().unwrap().revision(),
        r.deleted()
    ));
    c.put("k2", "again", None).await.unwrap();
    get!("k2", None);
    // Put options.
    match c.put("absent", "", Some(PutOptions::new().with_ignore_value())).await {
        Ok(_) => t.push("ignore_value on a missing key accepted".into()),
        Err(e) => t.push(err(&e)),
    }
    match c.put("k1", "z", Some(PutOptions::new().with_lease(12_345))).await {
        Ok(_) => t.push("unknown lease accepted".into()),
        Err(e) => t.push(err(&e)),
    }
    c.put("k1", "", Some(PutOptions::new().with_ignore_value())).await.unwrap();
    get!("k1", None);
    match c.put("", "v", None).await {
        Ok(_) => t.push("empty key accepted".into()),
        Err(e) => t.push(err(&e)),
    }
    // Transactions: compares on version, create and mod revision, value; both branches.
    let txns = [
        Txn::new()
            .when([Compare::version("k1", CompareOp::Equal, 3)])
            .and_then([
                TxnOp::put("t1", "yes", None),
                TxnOp::get("k", Some(GetOptions::new().with_prefix())),
            ])
            .or_else([TxnOp::put("t1", "no", None)]),
        Txn::new()
            .when([Compare::value("k3", CompareOp::Equal, "nope")])
            .and_then([TxnOp::put("t2", "yes", None)])
            .or_else([
                TxnOp::delete("x", Some(DeleteOptions::new().with_prev_key())),
                TxnOp::put("t2", "no", None),
            ]),
        Txn::new()
            .when([
                Compare::create_revision("k3", CompareOp::Less, 6),
                Compare::mod_revision("k3", CompareOp::Greater, 1),
                Compare::version("missing", CompareOp::Equal, 0),
            ])
            .and_then([TxnOp::get("t", Some(GetOptions::new().with_prefix().with_count_only()))]),
        // Over a range with no keys: compared as one missing key (a value never matches).
        Txn::new().when([Compare::version("nokey", CompareOp::Equal, 0).with_range("nokez")]),
        Txn::new().when([Compare::value("nokey", CompareOp::NotEqual, "x").with_range("nokez")]),
        Txn::new().and_then([TxnOp::put("d", "1", None), TxnOp::put("d", "2", None)]),
        Txn::new().and_then([
            TxnOp::put("dk", "1", None),
            TxnOp::delete("d", Some(DeleteOptions::new().with_prefix())),
        ]),
    ];
    for txn in txns {
        match c.txn(txn).await {
            Ok(r) => {
                let ops: Vec<String> = r
                    .op_responses()
                    .into_iter()
                    .map(|op| match op {
                        TxnOpResponse::Put(p) => {
                            format!("put rev {}", p.header().unwrap().revision())
                        }
                        TxnOpResponse::Get(g) => {
                            format!("get count {} [{}]", g.count(), kvs(g.kvs()))
                        }
                        TxnOpResponse::Delete(d) => {
                            format!("delete {} [{}]", d.deleted(), kvs(d.prev_kvs()))
                        }
                        TxnOpResponse::Txn(_) => "txn".into(),
                    })
                    .collect();
                t.push(format!(
                    "txn rev {} succeeded {} {:?}",
                    r.header().unwrap().revision(),
                    r.succeeded(),
                    ops
                ));
            }
            Err(e) => t.push(err(&e)),
        }
    }
    // Cluster and status: one member, which leads, at the store's revision.
    let members = c.member_list().await.unwrap();
    let status = c.status().await.unwrap();
    t.push(format!(
        "members {} leader is the member {} status revision {}",
        members.members().len(),
        members.members().first().map(etcd_client::Member::id) == Some(status.leader()),
        status.header().unwrap().revision(),
    ));
    // Compaction.
    let rev = c.get("k1", None).await.unwrap().header().unwrap().revision();
    c.compact(rev - 2, None).await.unwrap();
    get!("k", Some(GetOptions::new().with_prefix().with_revision(rev - 3)));
    get!("k", Some(GetOptions::new().with_prefix().with_revision(rev - 2)));
    match c.compact(rev - 2, None).await {
        Ok(_) => t.push("compacting twice accepted".into()),
        Err(e) => t.push(err(&e)),
    }
    match c.compact(rev + 10, None).await {
        Ok(_) => t.push("compacting the future accepted".into()),
        Err(e) => t.push(err(&e)),
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_behaves_as_etcd_3_4() {
    let dir = tempfile::tempdir().unwrap();
    let (_servers, mut theirs, mut mine) = side_by_side(dir.path()).await;
    let expected = scenario(&mut theirs).await;
    let got = scenario(&mut mine).await;
    assert_same(&got, &expected);
    assert!(expected.iter().any(|l| l.contains("compacted")), "{expected:#?}");
}

fn events(r: &etcd_client::WatchResponse) -> String {
    r.events()
        .iter()
        .map(|e| {
            let kv = e.kv().unwrap();
            format!(
                "{:?} {}={} m{} prev={}",
                e.event_type(),
                String::from_utf8_lossy(kv.key()),
                String::from_utf8_lossy(kv.value()),
                kv.mod_revision(),
                e.prev_kv()
                    .map(|p| String::from_utf8_lossy(p.value()).into_owned())
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Reads watch responses until `n` events have come (or a cancel); one line per response.
async fn watch_lines(stream: &mut etcd_client::WatchStream, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = 0;
    while seen < n {
        let Ok(r) = tokio::time::timeout(Duration::from_secs(10), stream.message()).await else {
            out.push("no watch response within 10 s".into());
            break;
        };
        let Some(r) = r.unwrap() else {
            out.push("the watch stream ended".into());
            break;
        };
        if r.canceled() {
            out.push(format!("canceled compact_revision {}", r.compact_revision()));
            break;
        }
        if !r.events().is_empty() {
            seen += r.events().len();
            out.push(events(&r));
        }
    }
    out
}

/// Leases and watches; one line per observation.
async fn scenario_lease_watch(c: &mut Client) -> Vec<String> {
    use etcd_client::{LeaseGrantOptions, LeaseTimeToLiveOptions, WatchOptions};
    let mut t = Vec::new();
    // Leases: grant with an id, attach a key, time to live with keys, list, revoke.
    let g = c.lease_grant(30, Some(LeaseGrantOptions::new().with_id(1000))).await.unwrap();
    t.push(format!("grant id {} ttl {}", g.id(), g.ttl()));
    match c.lease_grant(30, Some(LeaseGrantOptions::new().with_id(1000))).await {
        Ok(_) => t.push("granting an existing id accepted".into()),
        Err(e) => t.push(err(&e)),
    }
    c.put("leased", "v", Some(PutOptions::new().with_lease(1000))).await.unwrap();
    let ttl =
        c.lease_time_to_live(1000, Some(LeaseTimeToLiveOptions::new().with_keys())).await.unwrap();
    t.push(format!(
        "ttl granted {} left in 25..=30 {} keys {:?}",
        ttl.granted_ttl(),
        (25..=30).contains(&ttl.ttl()),
        ttl.keys().iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect::<Vec<_>>()
    ));
    let unknown = c.lease_time_to_live(4242, None).await.unwrap();
    t.push(format!("ttl of an unknown lease {}", unknown.ttl()));
    let (mut keeper, mut kept) = c.lease_keep_alive(1000).await.unwrap();
    keeper.keep_alive().await.unwrap();
    let k = kept.message().await.unwrap().unwrap();
    t.push(format!("keep alive id {} ttl {}", k.id(), k.ttl()));
    let ids: Vec<i64> =
        c.leases().await.unwrap().leases().iter().map(etcd_client::LeaseStatus::id).collect();
    t.push(format!("leases {ids:?}"));
    let r = c.lease_revoke(1000).await.unwrap();
    t.push(format!("revoke rev {}", r.header().unwrap().revision()));
    let g = c.get("leased", None).await.unwrap();
    t.push(format!("after revoke count {}", g.count()));
    match c.lease_revoke(1000).await {
        Ok(_) => t.push("revoking twice accepted".into()),
        Err(e) => t.push(err(&e)),
    }
    // Expiry deletes the key.
    c.lease_grant(5, Some(LeaseGrantOptions::new().with_id(2000))).await.unwrap();
    c.put("short", "v", Some(PutOptions::new().with_lease(2000))).await.unwrap();
    let mut gone = false;
    for _ in 0..150 {
        if c.get("short", None).await.unwrap().count() == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    t.push(format!("key of a 5 s lease gone within 15 s: {gone}"));

    // Watch from now on a prefix, with prev_kv: puts, an overwrite, a delete, a txn of two.
    let start = c.get("w", None).await.unwrap().header().unwrap().revision() + 1;
    let mut live =
        c.watch("w", Some(WatchOptions::new().with_prefix().with_prev_key())).await.unwrap();
    c.put("w1", "a", None).await.unwrap();
    c.put("w1", "b", None).await.unwrap();
    c.put("other", "x", None).await.unwrap();
    c.delete("w1", None).await.unwrap();
    c.txn(Txn::new().and_then([TxnOp::put("w2", "c", None), TxnOp::put("w3", "d", None)]))
        .await
        .unwrap();
    for line in watch_lines(&mut live, 5).await {
        t.push(format!("live: {line}"));
    }
    // The same history replayed from the first of those revisions.
    let mut replay = c
        .watch(
            "w",
            Some(WatchOptions::new().with_prefix().with_prev_key().with_start_revision(start)),
        )
        .await
        .unwrap();
    for line in watch_lines(&mut replay, 5).await {
        t.push(format!("replay: {line}"));
    }
    // A watch from a compacted revision is cancelled with the compaction's revision.
    let now = c.get("w", None).await.unwrap().header().unwrap().revision();
    c.compact(now, None).await.unwrap();
    let mut old = c
        .watch("w", Some(WatchOptions::new().with_prefix().with_start_revision(start)))
        .await
        .unwrap();
    for line in watch_lines(&mut old, 1).await {
        t.push(format!("compacted: {line}"));
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_and_watches_behave_as_etcd_3_4() {
    let dir = tempfile::tempdir().unwrap();
    let (_servers, mut theirs, mut mine) = side_by_side(dir.path()).await;
    let (expected, got) =
        tokio::join!(scenario_lease_watch(&mut theirs), scenario_lease_watch(&mut mine));
    assert!(!expected.iter().any(|l| l.contains("within 10 s")), "etcd itself: {expected:#?}");
    assert_same(&got, &expected);
}

/// A watch created with `progress_notify` (both servers notify every 500 ms here): after its
/// events, an empty response whose header carries the current revision.
async fn scenario_progress(c: &mut Client) -> Vec<String> {
    let mut t = Vec::new();
    let (_requests, mut stream) = c
        .watch("prog", Some(etcd_client::WatchOptions::new().with_progress_notify()))
        .await
        .unwrap()
        .split();
    let created = stream.message().await.unwrap().unwrap();
    t.push(format!("created {}", created.created()));
    let put = c.put("prog", "1", None).await.unwrap().header().unwrap().revision();
    let started = std::time::Instant::now();
    for _ in 0..2 {
        let r = tokio::time::timeout(Duration::from_secs(3), stream.message())
            .await
            .expect("a response within 3 s")
            .unwrap()
            .unwrap();
        t.push(format!(
            "events {} at the put's revision {}",
            r.events().len(),
            r.header().unwrap().revision() == put
        ));
    }
    t.push(format!("notified within 2 s {}", started.elapsed() < Duration::from_secs(2)));
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_notifications_behave_as_etcd_3_4() {
    let dir = tempfile::tempdir().unwrap();
    let (_servers, mut theirs, mut mine) = side_by_side(dir.path()).await;
    let expected = scenario_progress(&mut theirs).await;
    let got = scenario_progress(&mut mine).await;
    assert_same(&got, &expected);
    assert_eq!(expected[2], "events 0 at the put's revision true", "{expected:#?}");
}

/// `watch()` returns once the stream's response headers arrive. etcd sends them with the
/// answer to the first create request, so a put made right after `watch()` returns is always
/// seen; etcd-server answered after sending them and now and then created the watch after such
/// a put (it lost the first event of `leases_and_watches_behave_as_etcd_3_4` once in CI).
async fn scenario_watch_then_put(c: &mut Client) -> Vec<String> {
    let mut t = Vec::new();
    for i in 0..50 {
        let key = format!("wp{i}");
        let mut w = c.watch(key.as_str(), None).await.unwrap();
        c.put(key.as_str(), "v", None).await.unwrap();
        t.push(format!("{key}: {}", watch_lines(&mut w, 1).await.join("; ")));
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_right_after_watch_returns_is_seen_as_with_etcd_3_4() {
    let dir = tempfile::tempdir().unwrap();
    let (_servers, mut theirs, mut mine) = side_by_side(dir.path()).await;
    let (expected, got) =
        tokio::join!(scenario_watch_then_put(&mut theirs), scenario_watch_then_put(&mut mine));
    assert!(!expected.iter().any(|l| l.contains("within 10 s")), "etcd itself: {expected:#?}");
    assert_same(&got, &expected);
}
