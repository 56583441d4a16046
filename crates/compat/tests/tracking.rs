//! CLIENT TRACKING, differential: one scripted session of several clients runs against
//! redis-server and damselfly, and after every step everything each client received (replies
//! and invalidation pushes) must be the same bytes.
//!
//! Clients: `A` (RESP3, tracks), `B` (RESP2, writes), `R` (RESP3, a redirect target), `C`
//! (RESP2, tracks with REDIRECT to R), `D` (RESP2, tracks without a redirect: gets nothing),
//! `X` (RESP3, a redirect target that goes away). Client ids differ between the servers, so
//! `$R`/`$X` in a step stand for those clients' ids and ids after `redirect` and
//! `tracking-redir-broken` are compared as names. After each step every client answers a
//! PING, and what it received before the PONG is that step's output. Within it,
//! a run of consecutive push messages is compared as a set: which shard's keys are
//! invalidated first is not fixed across threads (each message is still compared whole).
//!
//! What the session covers: default mode (reads remembered, invalidated by other clients'
//! writes, by the client's own write right after its reply, by DEL and MSET across shards, by
//! active expiry, once per remembering), FLUSHDB/FLUSHALL null invalidations, NOLOOP,
//! OPTIN/OPTOUT with CLIENT CACHING, BCAST with prefixes, REDIRECT to a RESP3 client and a
//! broken redirect, RESP2 without a redirect (nothing sent), RESET, TRACKINGINFO, GETREDIR and
//! every argument error.

use std::time::Duration;

use damselfly_compat::{escape, frame_end, Pair, RespConn};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

/// The clients of the session.
const NAMES: [&str; 6] = ["A", "B", "R", "C", "D", "X"];

/// The session: (client, command). `sleep N` pauses N ms; `close X` closes client X.
fn session() -> Vec<(&'static str, &'static str)> {
    vec![
        ("A", "CLIENT TRACKING ON"),
        ("A", "GET k"),
        ("B", "SET k 1"),
        ("A", "GET k"),
        ("A", "SET k 2"),
        ("B", "SET k 3"),
        ("A", "MGET k j x"),
        ("B", "MSET k 1 j 2 x 3"),
        ("A", "MGET k j x"),
        ("B", "DEL j x nokey"),
        ("A", "EXISTS k j"),
        ("B", "APPEND k z"),
        ("A", "STRLEN k"),
        ("B", "INCR k"),
        ("B", "SET n 10"),
        ("A", "GET n"),
        ("B", "INCR n"),
        ("A", "GET n"),
        ("B", "INCRBY n notanumber"),
        ("B", "SETNX n 1"),
        ("B", "EXPIRE n 100 NX"),
        ("B", "EXPIRE n 100 NX"),
        ("A", "GET n"),
        ("B", "PERSIST n"),
        ("B", "PERSIST n"),
        ("B", "GETEX n PERSIST"),
        ("B", "SETRANGE n 0 \"\""),
        ("B", "RENAME n n2"),
        ("A", "GET e"),
        ("B", "SET e v PX 100"),
        ("A", "GET e"),
        ("A", "sleep 400"),
        ("A", "GET e"),
        ("A", "CLIENT TRACKINGINFO"),
        ("A", "CLIENT GETREDIR"),
        ("A", "GET k"),
        ("A", "FLUSHDB"),
        ("A", "GET k"),
        ("B", "FLUSHALL"),
        ("B", "SET k 1"),
        ("A", "CLIENT TRACKING OFF"),
        ("A", "CLIENT GETREDIR"),
        ("A", "CLIENT TRACKINGINFO"),
        ("B", "SET k 2"),
        // NOLOOP: the client's own writes send it nothing.
        ("A", "CLIENT TRACKING ON NOLOOP"),
        ("A", "GET k"),
        ("A", "SET k 3"),
        ("B", "SET k 4"),
        ("A", "GET k"),
        ("B", "SET k 5"),
        ("A", "CLIENT TRACKINGINFO"),
        ("A", "CLIENT TRACKING OFF"),
        // OPTIN: only after CLIENT CACHING YES, for the next command only.
        ("A", "CLIENT TRACKING ON OPTIN"),
        ("A", "GET k"),
        ("A", "CLIENT CACHING YES"),
        ("A", "CLIENT TRACKINGINFO"),
        ("A", "GET j"),
        ("A", "GET x"),
        ("B", "MSET k 1 j 2 x 3"),
        ("A", "CLIENT CACHING NO"),
        ("A", "CLIENT TRACKING ON OPTOUT"),
        ("A", "CLIENT TRACKING OFF"),
        // OPTOUT: always, except after CLIENT CACHING NO.
        ("A", "CLIENT TRACKING ON OPTOUT"),
        ("A", "CLIENT CACHING NO"),
        ("A", "GET k"),
        ("A", "GET j"),
        ("B", "MSET k 5 j 6"),
        ("A", "CLIENT CACHING YES"),
        ("A", "CLIENT TRACKING OFF"),
        ("A", "CLIENT CACHING YES"),
        // BCAST.
        ("A", "CLIENT TRACKING ON BCAST PREFIX user: PREFIX sess"),
        ("B", "SET user:1 a"),
        ("B", "SET other 1"),
        ("B", "SET sess9 1"),
        ("A", "SET user:2 b"),
        ("B", "DEL user:1"),
        ("A", "CLIENT TRACKINGINFO"),
        ("A", "CLIENT TRACKING ON"),
        ("A", "CLIENT TRACKING ON BCAST PREFIX user:x"),
        ("A", "CLIENT TRACKING ON BCAST PREFIX us"),
        ("A", "CLIENT TRACKING ON BCAST PREFIX new"),
        ("A", "CLIENT TRACKINGINFO"),
        ("B", "SET newkey 1"),
        ("A", "CLIENT TRACKING OFF"),
        ("B", "SET user:3 c"),
        ("A", "CLIENT TRACKING ON BCAST"),
        ("B", "SET anything 1"),
        ("A", "CLIENT TRACKINGINFO"),
        ("A", "CLIENT TRACKING ON BCAST NOLOOP"),
        ("A", "SET mine 1"),
        ("B", "SET theirs 1"),
        ("A", "CLIENT TRACKING OFF"),
        // Argument errors.
        ("A", "CLIENT TRACKING ON PREFIX a"),
        ("A", "CLIENT TRACKING ON BCAST OPTIN"),
        ("A", "CLIENT TRACKING ON OPTIN OPTOUT"),
        ("A", "CLIENT TRACKING ON BCAST PREFIX ab PREFIX a"),
        ("A", "CLIENT TRACKING ON REDIRECT 999999"),
        ("A", "CLIENT TRACKING ON REDIRECT abc"),
        ("A", "CLIENT TRACKING ON REDIRECT $R REDIRECT $R"),
        ("A", "CLIENT TRACKING ON REDIRECT"),
        ("A", "CLIENT TRACKING ON FOO"),
        ("A", "CLIENT TRACKING MAYBE"),
        ("A", "CLIENT TRACKING OFF REDIRECT 999999"),
        ("A", "CLIENT TRACKING OFF PREFIX p"),
        ("A", "CLIENT TRACKING"),
        ("A", "CLIENT CACHING YES"),
        ("A", "CLIENT CACHING"),
        ("A", "CLIENT TRACKINGINFO x"),
        ("A", "CLIENT GETREDIR x"),
        ("A", "CLIENT TRACKING ON OPTIN"),
        ("A", "CLIENT CACHING MAYBE"),
        ("A", "CLIENT CACHING NO"),
        ("A", "CLIENT TRACKING OFF"),
        // REDIRECT from a RESP2 client to a RESP3 one.
        ("C", "CLIENT TRACKING ON REDIRECT $R"),
        ("C", "GET rk"),
        ("B", "SET rk 1"),
        ("C", "CLIENT TRACKINGINFO"),
        ("C", "FLUSHDB"),
        // RESP2 without a redirect: remembered, nothing sent.
        ("D", "CLIENT TRACKING ON"),
        ("D", "GET dk"),
        ("B", "SET dk 1"),
        ("D", "PING"),
        // A redirect target that goes away.
        ("A", "CLIENT TRACKING ON REDIRECT $X"),
        ("A", "GET bk"),
        ("A", "close X"),
        ("B", "SET bk 1"),
        ("A", "CLIENT TRACKINGINFO"),
        ("A", "CLIENT TRACKING OFF"),
        ("A", "CLIENT TRACKING ON"),
        ("A", "CLIENT TRACKINGINFO"),
        // RESET ends tracking.
        ("A", "GET k"),
        ("A", "RESET"),
        ("A", "HELLO 3"),
        ("B", "SET k after-reset"),
        ("A", "CLIENT TRACKINGINFO"),
    ]
}

/// Replaces the integer after `redirect` / `tracking-redir-broken` by the client's name.
fn name_ids(raw: &[u8], ids: &[(i64, &str)]) -> Vec<u8> {
    let mut out = raw.to_vec();
    for tag in [
        &b"$8\r\nredirect\r\n:"[..],
        b"$21\r\ntracking-redir-broken\r\n:",
    ] {
        let mut from = 0;
        while let Some(p) = out[from..].windows(tag.len()).position(|w| w == tag) {
            let start = from + p + tag.len();
            let end = start
                + out[start..]
                    .iter()
                    .position(|&b| b == b'\r')
                    .unwrap_or(out.len() - start);
            let n: i64 = std::str::from_utf8(&out[start..end])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(i64::MIN);
            if let Some((_, name)) = ids.iter().find(|(id, _)| *id == n) {
                out.splice(start..end, name.bytes());
            }
            from = start;
        }
    }
    out
}

/// Splits `raw` into RESP values and sorts each run of consecutive push messages.
fn canonical(raw: &[u8]) -> Vec<Vec<u8>> {
    let mut vals = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        match frame_end(raw, at) {
            Ok(Some(end)) => {
                vals.push(raw[at..end].to_vec());
                at = end;
            }
            _ => {
                vals.push(raw[at..].to_vec());
                break;
            }
        }
    }
    let mut i = 0;
    while i < vals.len() {
        let mut j = i;
        while j < vals.len() && vals[j].starts_with(b">") {
            j += 1;
        }
        if j > i {
            vals[i..j].sort();
            i = j;
        } else {
            i += 1;
        }
    }
    vals
}

/// Runs the session against one server: per step, what each client received.
fn run(server: &damselfly_compat::ServerProc) -> Vec<String> {
    let mut conns: Vec<Option<RespConn>> = NAMES.iter().map(|_| Some(server.connect())).collect();
    let mut ids = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let c = conns[i].as_mut().expect("open");
        if matches!(*name, "A" | "R" | "X") {
            c.call(&["HELLO", "3"]).expect("HELLO 3");
        }
        let id = c.call(&["CLIENT", "ID"]).expect("CLIENT ID");
        let id: i64 = String::from_utf8_lossy(&id[1..id.len() - 2])
            .parse()
            .expect("an id");
        ids.push((id, *name));
    }
    let idx = |n: &str| NAMES.iter().position(|x| *x == n).expect("a client");
    let mut transcript = Vec::new();
    for (who, line) in session() {
        let mut first = Vec::new();
        if let Some(ms) = line.strip_prefix("sleep ") {
            std::thread::sleep(Duration::from_millis(ms.parse().expect("ms")));
        } else if let Some(victim) = line.strip_prefix("close ") {
            if let Some(c) = conns[idx(victim)].take() {
                c.shutdown();
            }
            std::thread::sleep(Duration::from_millis(100));
        } else {
            let mut line = line.to_string();
            for (id, name) in &ids {
                line = line.replace(&format!("${name}"), &id.to_string());
            }
            let args = damselfly_resp::split_args(line.as_bytes()).expect("args");
            let c = conns[idx(who)].as_mut().expect("open");
            // The reply is read before anything else is sent: Redis sends BCAST messages
            // once per event-loop iteration, so a PING read together with the command would
            // put a message of this step after that PING's reply.
            let reply = c.call(&args).expect("call");
            // HELLO's reply names the server's version and the client's id: not compared.
            if !line.starts_with("HELLO") {
                first = reply;
            }
        }
        // Each client then answers a PING: everything it received before the PONG is what
        // this step sent it (a push must come before the reply to any later command).
        // The sender first: its reply says the step ran.
        let sender = idx(who);
        let mut order: Vec<usize> = vec![sender];
        order.extend((0..NAMES.len()).filter(|&i| i != sender));
        let mut step = vec![None; NAMES.len()];
        for i in order {
            let Some(c) = conns[i].as_mut() else { continue };
            c.send(&["PING"]).expect("send PING");
            let mut got = if i == sender {
                std::mem::take(&mut first)
            } else {
                Vec::new()
            };
            loop {
                let v = c.read_reply().expect("read");
                if v == b"+PONG\r\n" {
                    break;
                }
                got.extend(v);
            }
            if got.is_empty() {
                continue;
            }
            let vals = canonical(&name_ids(&got, &ids));
            let shown: Vec<String> = vals.iter().map(|v| escape(v)).collect();
            step[i] = Some(format!(
                "{who}: {line} -> {}: {}",
                NAMES[i],
                shown.join(" ")
            ));
        }
        transcript.extend(step.into_iter().flatten());
    }
    transcript
}

#[test]
fn tracking_session_matches_redis() {
    let mut pair = Pair::start();
    let want = run(&pair.oracle);
    let got = run(&pair.dut);
    if std::env::var("COMPAT_DUMP").is_ok() {
        for l in &got {
            eprintln!("{l}");
        }
    }
    assert!(
        want.iter().any(|l| l.contains("invalidate")),
        "the session must see invalidations"
    );
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        if w != g {
            let logs = pair.keep_logs();
            panic!("step {i} differs:\nredis:     {w}\ndamselfly: {g}\n{logs}");
        }
    }
    assert_eq!(
        want.len(),
        got.len(),
        "redis: {want:#?}\ndamselfly: {got:#?}"
    );
}

/// Random steps for `randomized_tracking_matches_redis`: (client, command template).
/// Clients: 0 = `T` (RESP3, default tracking), 1 = `O` (RESP3, OPTIN + NOLOOP), 2 = `W`
/// (RESP2 writer, no tracking). `%1`/`%2` are keys.
const RANDOM_COMMANDS: &[&str] = &[
    "GET %1",
    "MGET %1 %2",
    "EXISTS %1 %2",
    "STRLEN %1",
    "TTL %1",
    "GETRANGE %1 0 1",
    "CLIENT CACHING YES",
    "SET %1 v",
    "MSET %1 a %2 b",
    "DEL %1 %2",
    "APPEND %1 x",
    "INCR %1",
    "SETNX %1 n",
    "EXPIRE %1 1000",
    "PERSIST %1",
    "GETDEL %1",
    "RENAME %1 %2",
    "COPY %1 %2",
    "SETRANGE %1 1 yy",
    "GETEX %1 EX 1000",
];

const RANDOM_KEYS: &[&str] = &["a", "b", "{a}c", "user:1", "x"];

fn random_step() -> impl Strategy<Value = (usize, usize, usize, usize)> {
    (
        0..3usize,
        0..RANDOM_COMMANDS.len(),
        0..RANDOM_KEYS.len(),
        0..RANDOM_KEYS.len(),
    )
}

/// Runs one random sequence on `server` (fresh connections, after FLUSHALL): what each
/// client received per step, synchronised by PINGs as in the session above.
fn run_random(
    server: &damselfly_compat::ServerProc,
    seq: &[(usize, usize, usize, usize)],
) -> Vec<String> {
    let mut setup = server.connect();
    setup.call(&["FLUSHALL"]).expect("FLUSHALL");
    let mut conns: Vec<RespConn> = (0..3).map(|_| server.connect()).collect();
    conns[0].call(&["HELLO", "3"]).expect("HELLO");
    conns[0]
        .call(&["CLIENT", "TRACKING", "ON"])
        .expect("tracking");
    conns[1].call(&["HELLO", "3"]).expect("HELLO");
    conns[1]
        .call(&["CLIENT", "TRACKING", "ON", "OPTIN", "NOLOOP"])
        .expect("tracking");
    let mut out = Vec::new();
    for &(who, cmd, k1, k2) in seq {
        let line = RANDOM_COMMANDS[cmd]
            .replace("%1", RANDOM_KEYS[k1])
            .replace("%2", RANDOM_KEYS[k2]);
        let args = damselfly_resp::split_args(line.as_bytes()).expect("args");
        let first = conns[who].call(&args).expect("call");
        let mut order: Vec<usize> = vec![who];
        order.extend((0..3).filter(|&i| i != who));
        let mut step = vec![String::new(); 3];
        for i in order {
            let c = &mut conns[i];
            c.send(&["PING"]).expect("PING");
            let mut got = if i == who { first.clone() } else { Vec::new() };
            loop {
                let v = c.read_reply().expect("read");
                if v == b"+PONG\r\n" {
                    break;
                }
                got.extend(v);
            }
            let vals: Vec<String> = canonical(&got).iter().map(|v| escape(v)).collect();
            step[i] = vals.join(" ");
        }
        out.push(format!("{who}: {line} -> {}", step.join(" | ")));
    }
    out
}

/// Random sequences of reads by two tracking clients and writes by all three: every reply
/// and every invalidation must be the same bytes as redis-server's. Shrinks to a minimal
/// failing sequence. `COMPAT_TRACKING_CASES=N` sets the number of sequences (default 48).
#[test]
fn randomized_tracking_matches_redis() {
    let cases = std::env::var("COMPAT_TRACKING_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let mut pair = Pair::start();
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let with_invalidations = std::cell::Cell::new(0usize);
    let result = runner.run(&prop::collection::vec(random_step(), 1..=20), |seq| {
        let want = run_random(&pair.oracle, &seq);
        let got = run_random(&pair.dut, &seq);
        if want.iter().any(|l| l.contains("invalidate")) {
            with_invalidations.set(with_invalidations.get() + 1);
        }
        if want != got {
            let at = want.iter().zip(&got).position(|(w, g)| w != g).unwrap_or(0);
            return Err(TestCaseError::fail(format!(
                "step {at}:\nredis:     {}\ndamselfly: {}",
                want.get(at).cloned().unwrap_or_default(),
                got.get(at).cloned().unwrap_or_default()
            )));
        }
        Ok(())
    });
    match result {
        Ok(()) => assert!(
            with_invalidations.get() * 4 >= cases as usize,
            "only {} of {cases} sequences saw an invalidation",
            with_invalidations.get()
        ),
        Err(TestError::Fail(reason, seq)) => {
            let logs = pair.keep_logs();
            panic!("\nminimal failing sequence: {seq:?}\n{reason}\n{logs}\n");
        }
        Err(TestError::Abort(reason)) => panic!("proptest aborted: {reason}"),
    }
}
