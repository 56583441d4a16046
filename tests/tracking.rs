//! Black-box tests of client-side caching (CLIENT TRACKING) for what the differential session
//! (`crates/compat/tests/tracking.rs`) cannot compare byte for byte: the tracking table's
//! limit, INFO's tracking fields, a tracking client going away, and a client that keeps
//! reading under a stream of invalidations.

#[allow(dead_code)]
mod common;

use common::Server;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn stat(c: &mut redis::Connection, section: &str, name: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg(section).query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {info}"))
}

/// Sends `req` and reads until the bytes read end with `end` (or 5 s pass).
fn send_until(s: &mut TcpStream, req: &[u8], end: &[u8]) -> Vec<u8> {
    s.write_all(req).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    while !out.ends_with(end) && Instant::now() < deadline {
        if let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }
    out
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

#[test]
fn the_tracking_table_is_bounded_and_dropped_keys_are_invalidated() {
    let s = Server::start(&["--proactor_threads", "2"]);
    let mut admin = s.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("tracking-table-max-keys")
        .arg(10)
        .query(&mut admin)
        .unwrap();
    let mut a = s.raw();
    let hello = send_until(&mut a, b"HELLO 3\r\nCLIENT TRACKING ON\r\n", b"+OK\r\n");
    assert!(hello.ends_with(b"+OK\r\n"));
    let mut req = Vec::new();
    for i in 0..200 {
        req.extend_from_slice(format!("GET key:{i}\r\n").as_bytes());
    }
    req.extend_from_slice(b"PING\r\n");
    let got = send_until(&mut a, &req, b"+PONG\r\n");
    // Each shard keeps its share (5 of 10 with two shards); every key it dropped to stay
    // there was invalidated for the client.
    let keys = stat(&mut admin, "stats", "tracking_total_keys");
    assert!((1..=10).contains(&keys), "tracking_total_keys {keys}");
    assert_eq!(stat(&mut admin, "stats", "tracking_total_items"), keys);
    let invalidations = count(&got, b"invalidate");
    assert_eq!(
        invalidations as u64,
        200 - keys,
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(stat(&mut admin, "clients", "tracking_clients"), 1);

    // A write of a remembered key invalidates it and forgets it.
    let _: () = redis::cmd("FLUSHALL").query(&mut admin).unwrap();
    assert_eq!(stat(&mut admin, "stats", "tracking_total_keys"), 0);
    let got = send_until(&mut a, b"PING\r\n", b"+PONG\r\n");
    assert_eq!(got, b">2\r\n$10\r\ninvalidate\r\n_\r\n+PONG\r\n");

    // A tracking client that goes away is no longer counted.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    while stat(&mut admin, "clients", "tracking_clients") != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(stat(&mut admin, "clients", "tracking_clients"), 0);
}

#[test]
fn bcast_prefixes_are_counted_and_a_busy_writer_reaches_an_idle_tracker() {
    let s = Server::start(&["--proactor_threads", "3"]);
    let mut admin = s.conn();
    let mut a = s.raw();
    send_until(
        &mut a,
        b"HELLO 3\r\nCLIENT TRACKING ON BCAST PREFIX p: PREFIX q:\r\n",
        b"+OK\r\n",
    );
    assert_eq!(stat(&mut admin, "stats", "tracking_total_prefixes"), 2);
    // The tracker sends nothing while another client writes: its messages still arrive.
    let mut w = s.raw();
    let mut req = Vec::new();
    for i in 0..500 {
        req.extend_from_slice(format!("SET p:{i} v\r\nSET other:{i} v\r\n").as_bytes());
    }
    req.extend_from_slice(b"PING\r\n");
    let done = send_until(&mut w, &req, b"+PONG\r\n");
    assert!(done.ends_with(b"+PONG\r\n"));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    a.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 64 * 1024];
    while count(&got, b"\r\np:") < 500 && Instant::now() < deadline {
        if let Ok(n) = a.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    let seen = count(&got, b"\r\np:");
    assert_eq!(seen, 500, "{}", String::from_utf8_lossy(&got));
    assert_eq!(count(&got, b"other:"), 0);
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    while stat(&mut admin, "stats", "tracking_total_prefixes") != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(stat(&mut admin, "stats", "tracking_total_prefixes"), 0);
}

#[test]
fn the_connect_time_commands_of_caching_clients_succeed() {
    // rueidis sends CLIENT TRACKING ON OPTIN by default; Redis 8 clients send CLIENT CAPA.
    let s = Server::start(&["--proactor_threads", "2"]);
    let mut a = s.raw();
    let got = send_until(
        &mut a,
        b"HELLO 3\r\nCLIENT TRACKING ON OPTIN\r\nCLIENT CAPA redirect\r\nCLIENT CACHING YES\r\nGET k\r\nPING\r\n",
        b"+PONG\r\n",
    );
    assert!(
        got.ends_with(b"+OK\r\n+OK\r\n+OK\r\n_\r\n+PONG\r\n"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    let mut w = s.conn();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut w).unwrap();
    let got = send_until(&mut a, b"PING\r\n", b"+PONG\r\n");
    assert_eq!(
        got,
        b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n+PONG\r\n"
    );
}
