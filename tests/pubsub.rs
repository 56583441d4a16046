//! Black-box tests of Pub/Sub for what the differential session
//! (`crates/compat/tests/pubsub.rs`) does not compare: a real client's subscriber API across
//! threads, CLIENT LIST and INFO fields, cleanup when a subscriber goes away, and a subscriber
//! that does not read being cut off at the `pubsub` output limit.

#[allow(dead_code)]
mod common;

use common::Server;
use std::io::Write;
use std::time::{Duration, Instant};

fn stat(c: &mut redis::Connection, name: &str) -> u64 {
    let info: String = redis::cmd("INFO").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in INFO"))
}

fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_redis_crate_subscriber_receives_from_publishers_on_other_threads() {
    let s = Server::start(&["--proactor_threads", "3"]);
    let mut sub_conn = s.conn();
    let mut sub = sub_conn.as_pubsub();
    sub.subscribe("orders").unwrap();
    sub.psubscribe("user:*").unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Publishers on fresh connections land on any of the three threads.
    for i in 0..30 {
        let mut p = s.conn();
        let n: i64 = redis::cmd("PUBLISH")
            .arg(if i % 2 == 0 { "orders" } else { "user:7" })
            .arg(format!("m{i}"))
            .query(&mut p)
            .unwrap();
        assert_eq!(n, 1);
    }
    for i in 0..30 {
        let msg = sub.get_message().unwrap();
        let payload: String = msg.get_payload().unwrap();
        assert_eq!(payload, format!("m{i}"));
        if i % 2 == 0 {
            assert_eq!(msg.get_channel_name(), "orders");
            assert!(!msg.from_pattern());
        } else {
            assert_eq!(msg.get_channel_name(), "user:7");
            assert_eq!(msg.get_pattern::<String>().unwrap(), "user:*");
        }
    }
    let mut admin = s.conn();
    assert_eq!(stat(&mut admin, "pubsub_channels"), 1);
    assert_eq!(stat(&mut admin, "pubsub_patterns"), 1);
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut admin).unwrap();
    assert!(
        list.lines()
            .any(|l| l.contains(" flags=P ") && l.contains(" sub=1 psub=1 ssub=0 ")),
        "{list}"
    );
    let pubsub: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut admin)
        .unwrap();
    assert_eq!(pubsub.lines().count(), 1, "{pubsub}");
    let normal: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("normal")
        .query(&mut admin)
        .unwrap();
    assert!(!normal.contains("flags=P"), "{normal}");
    // CLIENT KILL TYPE pubsub closes the subscriber and nothing else.
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut admin)
        .unwrap();
    assert_eq!(killed, 1);
    drop(sub);
    drop(sub_conn);
    assert!(eventually(
        || stat(&mut admin, "pubsub_channels") == 0 && stat(&mut admin, "pubsub_patterns") == 0
    ));
    let n: i64 = redis::cmd("PUBLISH")
        .arg("orders")
        .arg("x")
        .query(&mut admin)
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn a_subscriber_that_does_not_read_is_cut_off_at_the_pubsub_limit() {
    let s = Server::start(&["--proactor_threads", "2"]);
    let mut admin = s.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("pubsub 1mb 0 0")
        .query(&mut admin)
        .unwrap();
    let mut raw = s.raw();
    raw.write_all(b"SUBSCRIBE flood\r\n").unwrap();
    assert!(eventually(|| stat(&mut admin, "pubsub_channels") == 1));
    // 32 MB of messages to a subscriber that reads nothing (more than the kernel buffers
    // hold): it is closed once 1 MB waits in its sink.
    let big = vec![b'x'; 64 * 1024];
    let mut p = s.conn();
    for _ in 0..512 {
        let _: i64 = redis::cmd("PUBLISH")
            .arg("flood")
            .arg(&big[..])
            .query(&mut p)
            .unwrap();
    }
    assert!(
        eventually(|| stat(&mut admin, "connected_clients") == 2),
        "the subscriber was not closed"
    );
    assert!(eventually(|| stat(&mut admin, "pubsub_channels") == 0));
}
