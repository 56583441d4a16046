//! CLIENT TRACKING, differential: one scripted session of several clients runs against
//! redis-server and damselfly, and after every step everything each client received (replies
//! and invalidation pushes) must be the same bytes.
//!
//! Clients: `A` (RESP3, tracks), `B` (RESP2, writes), `R` (RESP3, a redirect target), `C`
//! (RESP2, tracks with REDIRECT to R), `D` (RESP2, tracks without a redirect: gets nothing),
//! `X` (RESP3, a redirect target that goes away), `S` (RESP2, subscribed to
//! `__redis__:invalidate`) and `E` (RESP2, redirects to S). The session runner
//! (`damselfly_compat::session`) syncs every client with a PING after each step and
//! compares what each received, ids as names, a run of messages as a set.
//!
//! What the session covers: default mode (reads remembered, invalidated by other clients'
//! writes, by the client's own write right after its reply, by DEL and MSET across shards, by
//! active expiry, once per remembering), FLUSHDB/FLUSHALL null invalidations, NOLOOP,
//! OPTIN/OPTOUT with CLIENT CACHING, BCAST with prefixes, REDIRECT to a RESP3 client and a
//! broken redirect, RESP2 without a redirect (nothing sent), RESET, TRACKINGINFO, GETREDIR and
//! every argument error.

use damselfly_compat::{assert_same_session, run_session, Pair};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

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
        // Writes that change nothing invalidate nothing.
        ("B", "BITFIELD bf SET u8 0 200"),
        ("A", "GET bf"),
        ("B", "BITFIELD bf OVERFLOW FAIL INCRBY u8 0 100"),
        ("B", "SETBIT bf 0 1"),
        ("B", "SETRANGE bf 0 \"\""),
        ("B", "GETEX bf PERSIST"),
        ("B", "SETBIT bf 1 0"),
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
        // REDIRECT to a RESP2 client in Pub/Sub mode: a message on the tracking channel.
        ("S", "SUBSCRIBE __redis__:invalidate"),
        ("E", "CLIENT TRACKING ON REDIRECT $S"),
        ("E", "GET sk"),
        ("B", "SET sk 1"),
        ("E", "MGET sk"),
        ("B", "FLUSHALL"),
        ("E", "CLIENT TRACKING OFF"),
        ("S", "UNSUBSCRIBE"),
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
        // CLIENT REPLY OFF drops replies, not pushes.
        ("A", "GET rk"),
        (
            "A",
            "send CLIENT REPLY OFF ; SET rk 1 ; GET rk ; CLIENT REPLY ON ; ECHO after",
        ),
        ("A", "send CLIENT REPLY SKIP ; SET rk 2 ; ECHO after"),
        // RESET ends tracking.
        ("A", "GET k"),
        ("A", "RESET"),
        ("A", "HELLO 3"),
        ("B", "SET k after-reset"),
        ("A", "CLIENT TRACKINGINFO"),
    ]
}

/// The clients of the session: name, speaks RESP3.
const CLIENTS: &[(&str, bool)] = &[
    ("A", true),
    ("B", false),
    ("R", true),
    ("C", false),
    ("D", false),
    ("X", true),
    ("S", false),
    ("E", false),
];

#[test]
fn tracking_session_matches_redis() {
    let mut pair = Pair::start();
    let want = assert_same_session(&mut pair, CLIENTS, &session());
    assert!(
        want.iter().any(|l| l.contains("invalidate")),
        "the session must see invalidations"
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

/// One random sequence as session steps (after FLUSHALL and the two clients' CLIENT
/// TRACKING).
fn random_steps(seq: &[(usize, usize, usize, usize)]) -> Vec<(&'static str, String)> {
    let mut steps = vec![
        ("W", "FLUSHALL".to_string()),
        ("W", "CONFIG SET notify-keyspace-events KEA".to_string()),
        ("N", "PSUBSCRIBE __key*__:*".to_string()),
        ("T", "CLIENT TRACKING ON".to_string()),
        ("O", "CLIENT TRACKING ON OPTIN NOLOOP".to_string()),
    ];
    for &(who, cmd, k1, k2) in seq {
        let line = RANDOM_COMMANDS[cmd]
            .replace("%1", RANDOM_KEYS[k1])
            .replace("%2", RANDOM_KEYS[k2]);
        steps.push((["T", "O", "W"][who], line));
    }
    steps
}

/// `N` watches every keyspace notification the sequence causes.
const RANDOM_CLIENTS: &[(&str, bool)] = &[("T", true), ("O", true), ("W", false), ("N", false)];

/// Random sequences of reads by two tracking clients and writes by all three, with a fourth
/// client watching every keyspace notification: every reply, invalidation and notification
/// must be the same bytes as redis-server's. Shrinks to a minimal
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
        let steps = random_steps(&seq);
        let steps: Vec<(&str, &str)> = steps.iter().map(|(w, l)| (*w, l.as_str())).collect();
        let want = run_session(&pair.oracle, RANDOM_CLIENTS, &steps);
        let got = run_session(&pair.dut, RANDOM_CLIENTS, &steps);
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
            with_invalidations.get() > 0,
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
