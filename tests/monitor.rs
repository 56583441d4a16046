//! Black-box tests of MONITOR and of the DEBUG gate (`enable-debug-command`): what only the
//! real binary with several shard threads shows. The line format and which commands are shown
//! are compared with redis-server byte for byte in `crates/compat/tests/monitor.rs`.

#[allow(dead_code)]
mod common;

use common::{read_to_close, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Starts MONITOR on a raw connection and reads its +OK.
fn start_monitor(s: &Server) -> TcpStream {
    let mut m = s.raw();
    m.write_all(b"MONITOR\r\n").unwrap();
    let mut ok = [0u8; 5];
    m.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"+OK\r\n");
    m
}

/// Reads monitor lines until `want` of them contain `needle`, or 5 s pass.
fn read_lines_with(m: &mut TcpStream, needle: &str, want: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while text.matches(needle).count() < want && Instant::now() < deadline {
        match m.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => break,
        }
    }
    text.lines().map(str::to_string).collect()
}

#[test]
fn monitor_sees_clients_of_every_thread_and_outlives_the_idle_timeout() {
    let s = Server::start(&["--proactor_threads", "4", "--timeout", "1"]);
    let mut m = start_monitor(&s);
    // Eight clients: the kernel spreads them over the four threads' listeners.
    let mut clients: Vec<_> = (0..8).map(|_| s.conn()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let _: () = redis::cmd("SET")
            .arg(format!("key:{i}"))
            .arg(i)
            .query(c)
            .unwrap();
    }
    let lines = read_lines_with(&mut m, "\"SET\"", 8);
    for i in 0..8 {
        let line = lines
            .iter()
            .find(|l| l.ends_with(&format!("\"SET\" \"key:{i}\" \"{i}\"")))
            .unwrap_or_else(|| panic!("no line for key:{i} in {lines:?}"));
        // +<sec>.<usec> [0 127.0.0.1:<port>] ...
        let (ts, rest) = line[1..].split_once(' ').unwrap();
        assert!(line.starts_with('+'), "{line}");
        assert_eq!(ts.len() - ts.find('.').unwrap(), 7, "{line}");
        assert!(rest.starts_with("[0 127.0.0.1:"), "{line}");
    }
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut clients[0])
        .unwrap();
    assert_eq!(
        list.lines().filter(|l| l.contains(" flags=O ")).count(),
        1,
        "{list}"
    );

    // An idle plain client is closed after 1 s; the monitor, idle as long, is not.
    let mut idle = s.raw();
    idle.write_all(b"PING\r\n").unwrap();
    let mut pong = [0u8; 7];
    idle.read_exact(&mut pong).unwrap();
    let (_, closed) = read_to_close(&mut idle);
    assert!(closed, "the idle client was not closed");
    std::thread::sleep(Duration::from_millis(1500));
    let mut fresh = s.conn();
    let _: () = redis::cmd("SET")
        .arg("late")
        .arg("1")
        .query(&mut fresh)
        .unwrap();
    let lines = read_lines_with(&mut m, "\"late\"", 1);
    assert!(
        lines.iter().any(|l| l.ends_with("\"SET\" \"late\" \"1\"")),
        "the monitor stopped: {lines:?}"
    );
}

#[test]
fn a_monitor_that_does_not_read_is_closed_at_its_limit() {
    let s = Server::start(&["--client-output-buffer-limit", "normal 1mb 0 0"]);
    let mut m = start_monitor(&s);
    let mut c = s.conn();
    // 40 MB of monitor lines: more than the limit plus what the socket buffers hold.
    let value = "a".repeat(100_000);
    for i in 0..400 {
        let _: () = redis::cmd("SET").arg(i).arg(&value).query(&mut c).unwrap();
    }
    let (got, closed) = read_to_close(&mut m);
    assert!(closed, "the monitor was not closed");
    assert!(got.len() < 40_000_000, "it got everything: {}", got.len());
    // The server goes on serving, without the monitor.
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
    assert!(!list.contains(" flags=O "), "{list}");
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn debug_obeys_enable_debug_command() {
    let refused = "DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";
    // Default: allowed (Dragonfly users fill servers with DEBUG POPULATE).
    let s = Server::start(&[]);
    let mut c = s.conn();
    let ok: String = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    let cfg: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("enable-debug-command")
        .query(&mut c)
        .unwrap();
    assert_eq!(cfg, ["enable-debug-command", "yes"]);
    drop(s);

    let s = Server::start(&["--enable-debug-command", "no"]);
    let mut c = s.conn();
    let err = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(10)
        .query::<String>(&mut c)
        .unwrap_err();
    assert_eq!(err.detail(), Some(refused), "{err:?}");
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 0);
    drop(s);

    // local: this client is 127.0.0.1.
    let s = Server::start(&["--enable-debug-command", "local"]);
    let mut c = s.conn();
    let ok: String = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(10)
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 10);
}
