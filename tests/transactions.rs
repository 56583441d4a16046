//! Black-box tests of MULTI/EXEC/WATCH for what the differential session cannot show with one
//! client at a time: transactions across shards staying atomic under concurrent writers and
//! readers, WATCH-based optimistic locking under contention, a watched key changed from a
//! connection on another thread, cleanup of WATCH and MULTI state when connections close, and
//! an EXEC mixing a multi-shard command with fan-outs and reads.

#[allow(dead_code)]
mod common;

use common::Server;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Their slots (15495, 3300, 7365, 11298) put them on four different shards of four.
const KEYS: [&str; 4] = ["a", "b", "c", "d"];

fn all_equal(vals: &[Option<i64>], ctx: &str) {
    let vals: Vec<i64> = vals.iter().map(|v| v.unwrap_or(0)).collect();
    assert_eq!(vals.len(), 4, "{ctx}: {vals:?}");
    assert!(vals.iter().all(|v| *v == vals[0]), "{ctx}: {vals:?}");
}

#[test]
fn transactions_over_four_shards_are_atomic_to_concurrent_readers() {
    let s = Server::start(&["--proactor_threads", "4"]);
    let mut writers = Vec::new();
    for _ in 0..4 {
        let mut c = s.conn();
        writers.push(std::thread::spawn(move || {
            for _ in 0..300 {
                let r: (i64, i64, i64, i64) = redis::pipe()
                    .atomic()
                    .incr("a", 1)
                    .incr("b", 1)
                    .incr("c", 1)
                    .incr("d", 1)
                    .query(&mut c)
                    .unwrap();
                // Within one EXEC the four counters move together.
                assert!(
                    r.0 == r.1 && r.1 == r.2 && r.2 == r.3,
                    "EXEC of INCRs: {r:?}"
                );
            }
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..2 {
        let mut c = s.conn();
        readers.push(std::thread::spawn(move || {
            for i in 0..300 {
                let (vals,): (Vec<Option<i64>>,) = redis::pipe()
                    .atomic()
                    .cmd("MGET")
                    .arg(&KEYS[..])
                    .query(&mut c)
                    .unwrap();
                all_equal(&vals, &format!("MGET in MULTI, round {i}"));
                let vals: Vec<Option<i64>> =
                    redis::cmd("MGET").arg(&KEYS[..]).query(&mut c).unwrap();
                all_equal(&vals, &format!("plain MGET, round {i}"));
            }
        }));
    }
    for t in writers.into_iter().chain(readers) {
        t.join().unwrap();
    }
    let mut c = s.conn();
    let vals: Vec<i64> = redis::cmd("MGET").arg(&KEYS[..]).query(&mut c).unwrap();
    assert_eq!(vals, vec![1200; 4]);
}

#[test]
fn watch_get_multi_set_exec_loses_no_increment_under_contention() {
    let s = Server::start(&["--proactor_threads", "4"]);
    let attempts = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for _ in 0..4 {
        let mut c = s.conn();
        let attempts = attempts.clone();
        let retries = retries.clone();
        threads.push(std::thread::spawn(move || {
            let mut done = 0;
            while done < 150 {
                let _: () = redis::cmd("WATCH").arg("counter").query(&mut c).unwrap();
                let v: Option<i64> = redis::cmd("GET").arg("counter").query(&mut c).unwrap();
                let next = v.unwrap_or(0) + 1;
                let _: () = redis::cmd("MULTI").query(&mut c).unwrap();
                let q: String = redis::cmd("SET")
                    .arg("counter")
                    .arg(next)
                    .query(&mut c)
                    .unwrap();
                assert_eq!(q, "QUEUED");
                attempts.fetch_add(1, Ordering::Relaxed);
                match redis::cmd("EXEC").query::<redis::Value>(&mut c).unwrap() {
                    redis::Value::Nil => {
                        retries.fetch_add(1, Ordering::Relaxed);
                    }
                    redis::Value::Array(items) => {
                        assert_eq!(items, vec![redis::Value::Okay]);
                        done += 1;
                    }
                    other => panic!("EXEC answered {other:?}"),
                }
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    let attempts = attempts.load(Ordering::Relaxed);
    let retries = retries.load(Ordering::Relaxed);
    eprintln!("WATCH contention: {attempts} EXEC attempts, {retries} aborted");
    assert!(attempts >= 600, "{attempts}");
    assert_eq!(attempts - retries, 600);
    let mut c = s.conn();
    let v: i64 = redis::cmd("GET").arg("counter").query(&mut c).unwrap();
    assert_eq!(v, 600);

    // The redis crate's own WATCH loop agrees.
    let n: i64 = redis::transaction(&mut c, &["counter"], |con, pipe| {
        let v: i64 = redis::cmd("GET").arg("counter").query(con)?;
        pipe.set("counter", v + 1)
            .ignore()
            .get("counter")
            .query::<Option<(i64,)>>(con)
            .map(|r| r.map(|(n,)| n))
    })
    .unwrap();
    assert_eq!(n, 601);
}

#[test]
fn a_write_from_another_connection_aborts_the_watchers_exec() {
    let s = Server::start(&["--proactor_threads", "4"]);
    let mut a = s.conn();
    for i in 0..8 {
        let _: () = redis::cmd("WATCH").arg("w").query(&mut a).unwrap();
        // A fresh connection: with four threads, some land on another thread than A's.
        let mut b = s.conn();
        let _: () = redis::cmd("SET")
            .arg("w")
            .arg(format!("x{i}"))
            .query(&mut b)
            .unwrap();
        drop(b);
        let r: Option<Vec<String>> = redis::pipe().atomic().get("w").query(&mut a).unwrap();
        assert_eq!(r, None, "round {i}: EXEC after a watched key changed");
        // After the aborted EXEC the WATCH is over: the next transaction runs.
        let r: Option<Vec<String>> = redis::pipe().atomic().get("w").query(&mut a).unwrap();
        assert_eq!(r, Some(vec![format!("x{i}")]), "round {i}");
    }
    // A WATCH nobody disturbs lets EXEC through, whichever thread reads the key.
    let _: () = redis::cmd("WATCH").arg("w").query(&mut a).unwrap();
    let mut b = s.conn();
    let v: String = redis::cmd("GET").arg("w").query(&mut b).unwrap();
    assert_eq!(v, "x7");
    let r: Option<Vec<String>> = redis::pipe().atomic().get("w").query(&mut a).unwrap();
    assert_eq!(r, Some(vec!["x7".to_string()]));
}

#[test]
fn closed_connections_leave_no_watches_and_no_queued_commands() {
    let s = Server::start(&["--proactor_threads", "4"]);
    let keys: Vec<String> = (0..100).map(|i| format!("wk{i}")).collect();
    for _ in 0..50 {
        let mut c = s.conn();
        let _: () = redis::cmd("WATCH").arg(&keys).query(&mut c).unwrap();
        drop(c);
    }
    let mut admin = s.conn();
    for (i, k) in keys.iter().enumerate() {
        let _: () = redis::cmd("SET").arg(k).arg(i).query(&mut admin).unwrap();
    }
    let _: () = redis::cmd("MSET")
        .arg(&keys[0])
        .arg("m0")
        .arg(&keys[1])
        .arg("m1")
        .query(&mut admin)
        .unwrap();
    let n: i64 = redis::cmd("DEL").arg(&keys).query(&mut admin).unwrap();
    assert_eq!(n, 100);
    let pong: String = redis::cmd("PING").query(&mut admin).unwrap();
    assert_eq!(pong, "PONG");
    let info: String = redis::cmd("INFO").query(&mut admin).unwrap();
    assert!(info.contains("connected_clients:"), "{info}");

    // A connection closed in MULTI: its queue is gone with it.
    {
        let mut c = s.conn();
        let _: () = redis::cmd("WATCH").arg(&keys).query(&mut c).unwrap();
        let _: () = redis::cmd("MULTI").query(&mut c).unwrap();
        for k in &keys[..10] {
            let q: String = redis::cmd("SET")
                .arg(k)
                .arg("queued")
                .query(&mut c)
                .unwrap();
            assert_eq!(q, "QUEUED");
        }
    }
    let mut c = s.conn();
    let err = redis::cmd("EXEC")
        .query::<redis::Value>(&mut c)
        .unwrap_err();
    assert_eq!(err.code(), Some("ERR"), "{err:?}");
    assert!(err.to_string().contains("EXEC without MULTI"), "{err}");
    let n: i64 = redis::cmd("EXISTS").arg(&keys).query(&mut admin).unwrap();
    assert_eq!(n, 0, "a closed connection's queued SETs ran");
    // The keys it watched can still be written, and a new watcher of them works.
    let _: () = redis::cmd("WATCH").arg(&keys).query(&mut c).unwrap();
    for k in &keys {
        let _: () = redis::cmd("SET").arg(k).arg("v").query(&mut admin).unwrap();
    }
    let r: Option<(String,)> = redis::pipe().atomic().get(&keys[0]).query(&mut c).unwrap();
    assert_eq!(r, None);
    let pong: String = redis::cmd("PING").query(&mut admin).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn exec_with_a_multi_shard_mset_a_fan_out_and_reads() {
    let s = Server::start(&["--proactor_threads", "4"]);
    let mut c = s.conn();
    let _: () = redis::cmd("SET")
        .arg("other")
        .arg("o")
        .query(&mut c)
        .unwrap();
    let keys: Vec<String> = (1..=16).map(|i| format!("k{i}")).collect();
    let mut mset = redis::cmd("MSET");
    for (i, k) in keys.iter().enumerate() {
        mset.arg(k).arg(i + 1);
    }
    let mut p = redis::pipe();
    p.atomic()
        .add_command(mset)
        .cmd("DBSIZE")
        .get("k1")
        .get("k16")
        .cmd("MGET")
        .arg(&keys)
        .arg("missing")
        .cmd("EXISTS")
        .arg(&keys)
        .incr("k8", 10)
        .get("k8")
        .get("other");
    #[allow(clippy::type_complexity)]
    let r: (
        String,
        i64,
        i64,
        i64,
        Vec<Option<i64>>,
        i64,
        i64,
        i64,
        String,
    ) = p.query(&mut c).unwrap();
    let mut expect_mget: Vec<Option<i64>> = (1..=16).map(Some).collect();
    expect_mget.push(None);
    assert_eq!(r.0, "OK");
    assert_eq!(r.1, 17);
    assert_eq!(r.2, 1);
    assert_eq!(r.3, 16);
    assert_eq!(r.4, expect_mget);
    assert_eq!(r.5, 16);
    assert_eq!(r.6, 18);
    assert_eq!(r.7, 18);
    assert_eq!(r.8, "o");

    // The same by hand, with a WATCH on keys of several shards that nobody touches.
    let _: () = redis::cmd("WATCH").arg(&keys).query(&mut c).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut c).unwrap();
    let mut mset = redis::cmd("MSET");
    for k in &keys {
        mset.arg(k).arg("z");
    }
    for q in [
        mset,
        redis::cmd("DBSIZE"),
        redis::cmd("MGET").arg(&keys[0]).arg(&keys[15]).clone(),
        redis::cmd("DEL").arg(&keys[..8]).clone(),
        redis::cmd("DBSIZE"),
    ] {
        let v: String = q.query(&mut c).unwrap();
        assert_eq!(v, "QUEUED");
    }
    let r: redis::Value = redis::cmd("EXEC").query(&mut c).unwrap();
    let z = || redis::Value::BulkString(b"z".to_vec());
    assert_eq!(
        r,
        redis::Value::Array(vec![
            redis::Value::Okay,
            redis::Value::Int(17),
            redis::Value::Array(vec![z(), z()]),
            redis::Value::Int(8),
            redis::Value::Int(9),
        ])
    );
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 9);
}
