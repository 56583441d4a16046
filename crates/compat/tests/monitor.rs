//! MONITOR, differential: the same session runs against redis-server and damselfly while a
//! MONITOR connection watches, and everything the monitor receives must be the same bytes once
//! each line's timestamp and the clients' ports are replaced by placeholders. RESP2 and RESP3.
//!
//! What the session covers: which commands are shown (not the `admin` ones such as CONFIG,
//! DEBUG, CLIENT LIST; not the rejected ones: unknown, wrong arity), the db shown after SELECT
//! and RESET, argument quoting (binary, quotes, newlines), passwords of AUTH and HELLO ... AUTH
//! redacted, the monitor's own commands (its PING shown after its PONG, keyspace commands
//! refused with "Replica can't interact with the keyspace", a second MONITOR ignored without a
//! reply), MULTI/EXEC (the queued commands shown when EXEC runs them, with the db a SELECT
//! inside left; nothing of an aborted one but MULTI and EXEC) and RESET ending the monitoring.

use std::time::Duration;

use damselfly_compat::{escape, Pair, RespConn};

const SILENCE: Duration = Duration::from_millis(300);

/// What the watched client sends, one request per entry (each one's reply is read before the
/// next is sent).
fn session() -> Vec<Vec<&'static [u8]>> {
    let lines: &[&[&[u8]]] = &[
        &[b"SET", b"a", b"1"],
        &[b"get", b"a"],
        &[b"SELECT", b"5"],
        &[b"SET", b"{x}1", b"v"],
        &[b"SELECT", b"99"],
        &[b"MSET", b"k1", b"v1", b"k2", b"v2", b"k3", b"v3"],
        &[b"DEL", b"k1", b"k2", b"k3", b"nokey"],
        &[b"INCRBY", b"n", b"-007"],
        &[b"ECHO", b"a\x01\n\r\t\"q\"\\\xff\x07\x08 ~"],
        &[b"SET", b"\x00bin", b""],
        &[b"AUTH", b"secret"],
        &[b"AUTH", b"user", b"secret"],
        &[b"AUTH", b"a", b"b", b"c"],
        &[
            b"HELLO", b"2", b"AUTH", b"user", b"secret", b"SETNAME", b"me",
        ],
        &[b"HELLO", b"4", b"AUTH", b"user", b"secret"],
        &[b"HELLO", b"2", b"SETNAME", b"me"],
        &[b"CLIENT", b"SETNAME", b"watched"],
        &[b"CLIENT", b"GETNAME"],
        &[b"CLIENT", b"LIST"],
        &[b"CONFIG", b"GET", b"maxmemory"],
        &[b"DEBUG", b"SLEEP", b"0"],
        &[b"NOSUCHCOMMAND", b"x"],
        &[b"GET"],
        &[b"TYPE", b"a"],
        &[b"PING"],
        &[b"EXISTS", b"a", b"b", b"c"],
        // A transaction shows MULTI, then its commands when EXEC runs them, then EXEC.
        &[b"MULTI"],
        &[b"SET", b"{t}1", b"x"],
        &[b"GET", b"{t}1"],
        &[b"EXEC"],
        &[b"MULTI"],
        &[b"SET", b"a", b"2"],
        &[b"SELECT", b"3"],
        &[b"MSET", b"k1", b"v1", b"k2", b"v2", b"k3", b"v3"],
        &[b"CONFIG", b"GET", b"maxmemory"],
        &[b"EXEC"],
        &[b"SELECT", b"0"],
        &[b"MULTI"],
        &[b"SET", b"a", b"3"],
        &[b"NOSUCHCOMMAND"],
        &[b"EXEC"],
        &[b"WATCH", b"a"],
        &[b"UNWATCH"],
        &[b"MULTI"],
        &[b"DISCARD"],
        &[b"RESET"],
        &[b"SET", b"after-reset", b"1"],
    ];
    lines.iter().map(|l| l.to_vec()).collect()
}

/// Replaces `+<sec>.<usec> [<db> <addr>]` at each line start by `+T [<db> <name>]`, `<name>`
/// from `names` (address -> placeholder). Panics on a line of another shape or a timestamp
/// more than a minute off this machine's clock.
fn normalize(raw: &[u8], names: &[(String, &str)]) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| p + 2)
            .unwrap_or(rest.len());
        let (line, tail) = rest.split_at(end);
        rest = tail;
        let s = String::from_utf8_lossy(line);
        let is_monitor_line = s.starts_with('+')
            && s[1..].split(' ').next().is_some_and(|t| {
                t.len() > 7 && t.as_bytes()[t.len() - 7] == b'.' && t.parse::<f64>().is_ok()
            });
        if !is_monitor_line {
            out.extend_from_slice(line);
            continue;
        }
        let (ts, after) = s[1..].split_once(' ').expect("timestamp");
        let t: f64 = ts.parse().expect("timestamp");
        assert!((t - now).abs() < 60.0, "timestamp {ts} is not now ({now})");
        let inner = after.strip_prefix('[').expect("'[' after the timestamp");
        let (db, inner) = inner.split_once(' ').expect("db");
        let (addr, args) = inner.split_once("] ").expect("addr");
        let name = names
            .iter()
            .find(|(a, _)| a == addr)
            .map(|(_, n)| *n)
            .unwrap_or_else(|| panic!("unknown client address {addr} in {s:?}"));
        out.extend_from_slice(format!("+T [{db} {name}] {args}").as_bytes());
    }
    out
}

/// The local address of `c` as the server names it (`ip:port`).
fn addr_of(c: &RespConn) -> String {
    c.local_addr().to_string()
}

/// Runs the whole scenario against one server; returns the monitor's normalized bytes and the
/// watched client's replies.
fn run(server: &damselfly_compat::ServerProc, resp3: bool) -> (Vec<u8>, Vec<u8>) {
    let mut mon = server.connect();
    let mut cli = server.connect();
    let mut other = server.connect();
    let names = vec![
        (addr_of(&mon), "M"),
        (addr_of(&cli), "C"),
        (addr_of(&other), "O"),
    ];
    if resp3 {
        for c in [&mut mon, &mut cli, &mut other] {
            c.call(&["HELLO", "3"]).expect("HELLO 3");
        }
    }
    let mut seen = Vec::new();
    let mut replies = Vec::new();
    seen.extend(mon.call(&["MONITOR"]).expect("MONITOR"));
    for req in session() {
        replies.extend(cli.call(&req).expect("watched client"));
        // A second client's command in between, from wherever its thread is.
        replies.extend(other.call(&["EXISTS", "a"]).expect("other client"));
    }
    // The monitor's own commands: PING is shown after its PONG; keys are refused; a second
    // MONITOR gets no reply.
    mon.send(&["PING"]).expect("send");
    mon.send(&["GET", "a"]).expect("send");
    mon.send(&["MONITOR"]).expect("send");
    mon.send(&["ECHO", "done"]).expect("send");
    seen.extend(
        mon.read_until_close_or_silence(SILENCE, Duration::from_secs(5))
            .expect("monitor read")
            .0,
    );
    // RESET ends it: nothing after arrives.
    seen.extend(mon.call(&["RESET"]).expect("RESET"));
    cli.call(&["SET", "unseen", "1"]).expect("set");
    seen.extend(
        mon.read_until_close_or_silence(SILENCE, Duration::from_secs(5))
            .expect("monitor read")
            .0,
    );
    (normalize(&seen, &names), replies)
}

#[test]
fn monitor_output_matches_redis() {
    let mut pair = Pair::start();
    for resp3 in [false, true] {
        let (want, want_replies) = run(&pair.oracle, resp3);
        let (got, got_replies) = run(&pair.dut, resp3);
        if std::env::var("COMPAT_DUMP").is_ok() {
            eprintln!("{}", String::from_utf8_lossy(&got));
        }
        if want != got {
            let logs = pair.keep_logs();
            panic!(
                "MONITOR output differs (RESP{}):\nredis:     {}\ndamselfly: {}\n{logs}",
                if resp3 { 3 } else { 2 },
                escape(&want),
                escape(&got)
            );
        }
        assert!(
            want.windows(12).any(|w| w == b"\"(redacted)\""),
            "the session must show a redacted password"
        );
        // The watched client's replies go through the ordinary differential cases; here only
        // their count and error lines are checked, as a guard that the session ran alike.
        let errors = |r: &[u8]| {
            r.split(|&b| b == b'\n')
                .filter(|l| l.starts_with(b"-"))
                .count()
        };
        assert_eq!(errors(&want_replies), errors(&got_replies));
    }
}
