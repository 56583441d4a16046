//! Transactions with several clients, differential: WATCH on one connection while others
//! change (or only read) the watched keys, then that connection's EXEC, run against
//! redis-server and damselfly; every step's output must be the same bytes
//! (`damselfly_compat::session`). The single-connection cases are in
//! `cases/transactions.txt`.
//!
//! What it covers: which commands of another client touch a watched key (writes, failed
//! writes, same-value writes, EXPIRE/PERSIST, DEL of a missing key, RENAME, MOVE, COPY,
//! MSET across shards, FLUSHDB/FLUSHALL/SWAPDB of the key's db and of others, another
//! client's EXEC), that reads do not, expiry between WATCH and EXEC, watches spanning
//! shards, RESP3's null for a failed EXEC, and CLIENT TRACKING invalidations caused inside
//! EXEC (after the whole EXEC reply, as Redis 7.0 sends them). Then CLIENT INFO's `flags`
//! and `multi` for a client in MULTI and one whose watched key changed.

use damselfly_compat::{assert_same_session, Pair};

/// A and B speak RESP2, R speaks RESP3 (and tracks).
const CLIENTS: &[(&str, bool)] = &[("A", false), ("B", false), ("R", true)];

/// `WATCH keys`, then `change` by B, then A's transaction reading `k`: the EXEC shows whether
/// the change touched the key. A transaction is sent as one write (`send`): the session
/// PINGs every client after each step, and a PING in MULTI would be queued.
fn probe(
    steps: &mut Vec<(&'static str, &'static str)>,
    watch: &'static str,
    change: &'static [&'static str],
) {
    steps.push(("A", watch));
    for c in change {
        steps.push(("B", c));
    }
    steps.push(("A", "send MULTI ; GET k ; EXEC"));
}

fn session() -> Vec<(&'static str, &'static str)> {
    let mut s = vec![("B", "SET k 1")];
    probe(&mut s, "WATCH k", &["SET k 2"]);
    probe(
        &mut s,
        "WATCH k",
        &["GET k", "EXISTS k", "TTL k", "STRLEN k"],
    );
    probe(&mut s, "WATCH k", &["SET k 2"]);
    probe(&mut s, "WATCH k", &["INCR k", "GET k"]);
    s.push(("B", "SET k notint"));
    probe(&mut s, "WATCH k", &["INCR k", "SETNX k x", "SET k y NX"]);
    probe(&mut s, "WATCH k", &["APPEND k \"\""]);
    probe(&mut s, "WATCH k", &["SETRANGE k 0 \"\""]);
    probe(&mut s, "WATCH k", &["SETRANGE k 0 n"]);
    probe(&mut s, "WATCH k", &["SETBIT bits 1 1"]);
    probe(&mut s, "WATCH bits", &["SETBIT bits 1 1"]);
    probe(&mut s, "WATCH k", &["EXPIRE k 100"]);
    probe(&mut s, "WATCH k", &["EXPIRE k 100 NX"]);
    probe(&mut s, "WATCH k", &["PERSIST k"]);
    probe(&mut s, "WATCH k", &["PERSIST k"]);
    probe(&mut s, "WATCH nosuch", &["DEL nosuch"]);
    probe(&mut s, "WATCH nosuch", &["SET nosuch 1", "DEL nosuch"]);
    probe(&mut s, "WATCH k", &["RENAME k k2", "RENAME k2 k"]);
    probe(&mut s, "WATCH k2", &["COPY k k2"]);
    probe(&mut s, "WATCH k", &["COPY k k3", "RENAMENX k3 k"]);
    probe(
        &mut s,
        "WATCH k",
        &["MOVE k 1", "SELECT 1", "MOVE k 0", "SELECT 0"],
    );
    probe(&mut s, "WATCH k", &["MSET a 1 b 2 c 3 k 4 d 5"]);
    probe(&mut s, "WATCH a b c d", &["MSETNX a 1 e 2"]);
    probe(&mut s, "WATCH a b c d", &["MGET a b c d k", "DEL e f g"]);
    probe(&mut s, "WATCH a b c d", &["DEL x y d"]);
    probe(
        &mut s,
        "WATCH k",
        &["SELECT 1", "SET k other-db", "SELECT 0"],
    );
    probe(&mut s, "WATCH k", &["SELECT 1", "FLUSHDB", "SELECT 0"]);
    probe(&mut s, "WATCH k", &["FLUSHDB"]);
    s.push(("B", "SET k 1"));
    probe(&mut s, "WATCH k", &["FLUSHALL ASYNC"]);
    s.push(("B", "SET k 1"));
    probe(&mut s, "WATCH k", &["SWAPDB 2 3"]);
    probe(&mut s, "WATCH k", &["SWAPDB 0 1"]);
    probe(&mut s, "WATCH k", &["SWAPDB 1 0"]);
    // Another client's transaction.
    probe(&mut s, "WATCH k", &["send MULTI ; SET k from-b ; EXEC"]);
    probe(
        &mut s,
        "WATCH k",
        &["send MULTI ; SET other 1 ; GET k ; EXEC"],
    );
    // Expiry between WATCH and EXEC: lazily on the read, or by the active sweep.
    s.push(("B", "SET k 1 PX 80"));
    probe(&mut s, "WATCH k", &["sleep 200"]);
    s.push(("B", "SET k 1 PX 80"));
    probe(&mut s, "WATCH k", &["sleep 200", "GET k"]);
    // Expired when watched: its deletion changes nothing, a new value does.
    s.push(("B", "SET k 1 PX 10"));
    s.push(("B", "sleep 50"));
    probe(&mut s, "WATCH k", &["GET k"]);
    s.push(("B", "SET k 1 PX 10"));
    s.push(("B", "sleep 50"));
    probe(&mut s, "WATCH k", &["SET k 2"]);
    // Keys on every shard, one of them changed.
    s.push(("B", "MSET k1 1 k2 2 k3 3 k4 4 k5 5 k6 6"));
    probe(&mut s, "WATCH k1 k2 k3 k4 k5 k6", &["INCR k6"]);
    probe(&mut s, "WATCH k1 k2 k3 k4 k5 k6", &["INCR k7"]);
    // RESP3: a failed EXEC is a null.
    s.extend([
        ("R", "WATCH k"),
        ("B", "SET k r3"),
        ("R", "send MULTI ; GET k ; EXEC"),
    ]);
    // Tracking: invalidations R's own EXEC causes come after its reply; B's change inside
    // B's EXEC reaches R as one push per key.
    s.extend([
        ("R", "CLIENT TRACKING ON"),
        ("R", "MGET k k1 k2"),
        ("R", "send MULTI ; SET k mine ; MSET k1 x k2 y ; EXEC"),
        ("R", "MGET k k1 k2"),
        ("B", "send MULTI ; SET k theirs ; DEL k1 k2 ; EXEC"),
        ("R", "CLIENT TRACKING OFF"),
    ]);
    s
}

#[test]
fn watch_with_other_clients_matches_redis() {
    let mut pair = Pair::start();
    let want = assert_same_session(&mut pair, CLIENTS, &session());
    // The session is only worth something if both outcomes happen.
    let exec = |who: &str, reply: &str| {
        want.iter()
            .any(|l| l.contains(&format!("EXEC -> {who}: ")) && l.contains(reply))
    };
    assert!(exec("A", r#""*-1\r\n""#), "{want:#?}");
    assert!(exec("A", r#""*1\r\n$1"#), "{want:#?}");
    assert!(exec("R", r#""_\r\n""#), "{want:#?}");
}

/// `flags=` and `multi=` of CLIENT INFO.
fn flags_and_multi(info: &[u8]) -> String {
    let text = String::from_utf8_lossy(info);
    text.split_whitespace()
        .filter(|f| f.starts_with("flags=") || f.starts_with("multi="))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn client_info_shows_multi_and_a_dirty_watch_as_redis() {
    let pair = Pair::start();
    let mut seen = Vec::new();
    for server in [&pair.oracle, &pair.dut] {
        let mut a = server.connect();
        let mut b = server.connect();
        let mut got = Vec::new();
        got.push(flags_and_multi(&a.call(&["CLIENT", "INFO"]).unwrap()));
        a.call(&["WATCH", "w"]).unwrap();
        got.push(flags_and_multi(&a.call(&["CLIENT", "INFO"]).unwrap()));
        b.call(&["SET", "w", "1"]).unwrap();
        got.push(flags_and_multi(&a.call(&["CLIENT", "INFO"]).unwrap()));
        a.call(&["MULTI"]).unwrap();
        a.call(&["SET", "x", "1"]).unwrap();
        a.call(&["CLIENT", "INFO"]).unwrap();
        let exec = a.call(&["EXEC"]).unwrap();
        got.push(String::from_utf8_lossy(&exec).into_owned());
        a.call(&["MULTI"]).unwrap();
        a.call(&["SET", "x", "1"]).unwrap();
        a.call(&["CLIENT", "INFO"]).unwrap();
        let exec = a.call(&["EXEC"]).unwrap();
        got.push(flags_and_multi(&exec));
        got.push(flags_and_multi(&a.call(&["CLIENT", "INFO"]).unwrap()));
        seen.push(got);
    }
    assert_eq!(seen[0], seen[1], "redis vs damselfly");
    assert!(seen[0][4].contains("flags=x multi=2"), "{:?}", seen[0]);
}
