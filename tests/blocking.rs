//! Black-box tests of blocked clients (WAIT without replicas): what needs two connections or
//! a client going away. Replies and errors are compared with redis-server in
//! `crates/compat/cases/replication.txt`.

#[allow(dead_code)]
mod common;

use common::{read_to_close, roundtrip, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn client_id(s: &mut TcpStream) -> u64 {
    let r = roundtrip(s, b"CLIENT ID\r\n", 4);
    let text = String::from_utf8_lossy(&r);
    text.trim_start_matches(':')
        .trim()
        .parse()
        .expect("CLIENT ID")
}

/// INFO clients' `name` field, read over `c`.
fn info_field(c: &mut redis::Connection, name: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("clients").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {info}"))
}

/// Polls until `f` holds or 5 s pass.
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

/// Reads what arrives within `wait` (nothing: empty).
fn read_for(s: &mut TcpStream, wait: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    out
}

#[test]
fn wait_blocks_until_client_unblock_and_pipelined_requests_follow_it() {
    let s = Server::start(&["--proactor_threads", "2"]);
    let mut other = s.conn();
    for how in ["", " TIMEOUT", " ERROR"] {
        let mut a = s.raw();
        let id = client_id(&mut a);
        a.write_all(b"WAIT 1 0\r\nPING\r\n").unwrap();
        assert!(
            eventually(|| info_field(&mut other, "blocked_clients") == 1),
            "WAIT did not block"
        );
        assert_eq!(info_field(&mut other, "clients_in_timeout_table"), 0);
        // Blocked: neither WAIT nor the PING behind it has answered.
        assert_eq!(read_for(&mut a, Duration::from_millis(200)), b"");
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .arg("ID")
            .arg(id)
            .query(&mut other)
            .unwrap();
        assert!(
            list.contains(" flags=b ") && list.contains(" cmd=wait "),
            "{list}"
        );

        let mut unblock = redis::cmd("CLIENT");
        unblock.arg("UNBLOCK").arg(id);
        if !how.is_empty() {
            unblock.arg(how.trim());
        }
        let n: i64 = unblock.query(&mut other).unwrap();
        assert_eq!(n, 1);
        let want: &[u8] = if how == " ERROR" {
            b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n+PONG\r\n"
        } else {
            b":0\r\n+PONG\r\n"
        };
        let got = roundtrip(&mut a, b"", want.len());
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
        assert_eq!(info_field(&mut other, "blocked_clients"), 0);
        // Not blocked any more: a second UNBLOCK finds nothing.
        let n: i64 = unblock.query(&mut other).unwrap();
        assert_eq!(n, 0);
    }
}

#[test]
fn wait_with_a_timeout_answers_zero_and_counts_in_the_timeout_table() {
    let s = Server::start(&[]);
    let mut other = s.conn();
    let mut a = s.raw();
    a.write_all(b"WAIT 2 300\r\n").unwrap();
    assert!(eventually(|| info_field(
        &mut other,
        "clients_in_timeout_table"
    ) == 1));
    let got = roundtrip(&mut a, b"", 4);
    assert_eq!(got, b":0\r\n");
    assert_eq!(info_field(&mut other, "blocked_clients"), 0);
    assert_eq!(info_field(&mut other, "clients_in_timeout_table"), 0);
}

#[test]
fn a_blocked_client_that_goes_away_is_released() {
    let s = Server::start(&["--timeout", "1"]);
    let mut other = s.conn();
    // Closes its connection while blocked forever.
    let mut a = s.raw();
    a.write_all(b"WAIT 1 0\r\n").unwrap();
    assert!(eventually(|| info_field(&mut other, "blocked_clients") == 1));
    drop(a);
    assert!(
        eventually(|| info_field(&mut other, "blocked_clients") == 0),
        "a closed client stays blocked"
    );
    // Blocked with more input behind it, then killed.
    let mut b = s.raw();
    let id = client_id(&mut b);
    b.write_all(b"WAIT 1 0\r\nPING\r\n").unwrap();
    assert!(eventually(|| info_field(&mut other, "blocked_clients") == 1));
    // A blocked client outlives the idle timeout.
    std::thread::sleep(Duration::from_millis(1500));
    // (`other` itself was idle as long, and is gone.)
    let mut other = s.conn();
    assert_eq!(info_field(&mut other, "blocked_clients"), 1);
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query(&mut other)
        .unwrap();
    assert_eq!(killed, 1);
    let (_, closed) = read_to_close(&mut b);
    assert!(closed, "the killed client's connection stayed open");
    assert!(eventually(|| info_field(&mut other, "blocked_clients") == 0));
    let connected = info_field(&mut other, "connected_clients");
    assert_eq!(connected, 1, "only this client is left");
}
