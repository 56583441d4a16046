//! Keyspace notifications, differential: a RESP2 client subscribed to every keyspace and
//! keyevent channel watches while another client runs each write command, and everything it
//! receives must be the same bytes as from redis-server (`damselfly_compat::session`). A RESP3
//! client that watches its own writes gets its notifications before its replies, as in Redis.
//!
//! What it covers: the events and classes of every string, bitmap and key command that
//! changes a key (`set`, `expire`, `del`, `append`, `setrange`, `incrby`, `incrbyfloat`,
//! `setbit`, `persist`, `rename_from`/`rename_to`, `copy_to`, `move_from`/`move_to`,
//! `expired` lazily and actively), that a command that changes nothing notifies nothing, the
//! `n` (new key) and `m` (key miss) classes, and class filtering (`K` or `E` alone, `$` only).

use damselfly_compat::{assert_same_session, Pair};

const CLIENTS: &[(&str, bool)] = &[("N", false), ("W", false), ("M", true)];

fn session() -> Vec<(&'static str, &'static str)> {
    vec![
        ("N", "PSUBSCRIBE __key*__:*"),
        ("W", "CONFIG SET notify-keyspace-events KEA"),
        ("W", "SET k v"),
        ("W", "SET k v EX 100"),
        ("W", "SET k v NX"),
        ("W", "SET k v XX KEEPTTL GET"),
        ("W", "SETEX s 100 v"),
        ("W", "PSETEX p 100000 v"),
        ("W", "SETNX k v"),
        ("W", "SETNX nk v"),
        ("W", "GETSET k w"),
        ("W", "MSET m1 a m2 b {m1}x c"),
        ("W", "MSETNX n1 a n2 b"),
        ("W", "MSETNX n1 a n3 b"),
        ("W", "APPEND k tail"),
        ("W", "APPEND newa x"),
        ("W", "SETRANGE k 1 ZZ"),
        ("W", "SETRANGE k 1 \"\""),
        ("W", "SETRANGE sr 2 x"),
        ("W", "INCR c"),
        ("W", "INCRBY c 5"),
        ("W", "DECR c"),
        ("W", "DECRBY c 2"),
        ("W", "INCR k"),
        ("W", "INCRBYFLOAT f 1.5"),
        ("W", "INCRBYFLOAT f 1"),
        ("W", "INCRBYFLOAT k 1"),
        ("W", "SETBIT b 7 1"),
        ("W", "SETBIT b 7 1"),
        ("W", "BITFIELD bf SET u8 0 200 GET u8 0"),
        ("W", "BITFIELD bf GET u8 0"),
        ("W", "BITFIELD bf OVERFLOW FAIL INCRBY u8 0 100"),
        ("W", "BITOP OR dst b bf"),
        ("W", "BITOP AND dst nokey1 nokey2"),
        ("W", "GETDEL m2"),
        ("W", "GETDEL m2"),
        ("W", "GETEX m1 EX 100"),
        ("W", "GETEX m1 PERSIST"),
        ("W", "GETEX m1 PERSIST"),
        ("W", "GETEX m1"),
        ("W", "GETEX m1 PXAT 1"),
        ("W", "EXPIRE k 100"),
        ("W", "PEXPIRE k 100000 NX"),
        ("W", "EXPIREAT k 1"),
        ("W", "EXPIRE nokey 100"),
        ("W", "PERSIST s"),
        ("W", "PERSIST s"),
        ("W", "DEL n1 n2 nokey"),
        ("W", "UNLINK n3"),
        ("W", "RENAME p {p}q"),
        ("W", "RENAME {p}q other"),
        ("W", "RENAMENX other s"),
        ("W", "COPY s {s}c"),
        ("W", "COPY s {s}c"),
        ("W", "COPY s {s}c REPLACE"),
        ("W", "COPY s cdb DB 3"),
        ("W", "MOVE nk 4"),
        ("W", "MOVE nk 4"),
        ("W", "SELECT 4"),
        ("W", "SET in4 v"),
        ("W", "SELECT 0"),
        ("W", "SET e v PX 1"),
        ("W", "sleep 20"),
        ("W", "GET e"),
        ("W", "SET ae v PX 50"),
        ("W", "sleep 400"),
        ("W", "FLUSHALL"),
        // Classes: only K and string events; then E and generic; then new keys and misses.
        ("W", "CONFIG SET notify-keyspace-events K$"),
        ("W", "SET a 1"),
        ("W", "DEL a"),
        ("W", "CONFIG SET notify-keyspace-events Eg"),
        ("W", "SET a 1"),
        ("W", "EXPIRE a 100"),
        ("W", "CONFIG SET notify-keyspace-events KEnm"),
        ("W", "SET fresh 1"),
        ("W", "SET fresh 2"),
        ("W", "GET missing"),
        ("W", "MGET fresh missing2"),
        ("W", "RENAME fresh fresh2"),
        ("W", "CONFIG SET notify-keyspace-events KEA"),
        // A RESP3 client watching its own writes: the message comes before its reply.
        ("M", "SUBSCRIBE __keyevent@0__:set"),
        ("M", "SET own 1"),
        ("M", "MSET own 2 {own}2 3"),
        ("M", "INCR own"),
        ("W", "SET own 9"),
        (
            "M",
            "send CLIENT REPLY OFF ; SET own 3 ; CLIENT REPLY ON ; ECHO after",
        ),
        (
            "M",
            "send CLIENT REPLY SKIP ; PUBLISH __keyevent@0__:set self ; ECHO after",
        ),
        ("M", "UNSUBSCRIBE"),
        ("W", "CONFIG SET notify-keyspace-events \"\""),
        ("W", "SET quiet 1"),
    ]
}

#[test]
fn keyspace_notifications_match_redis() {
    let mut pair = Pair::start();
    let want = assert_same_session(&mut pair, CLIENTS, &session());
    assert!(
        want.iter().any(|l| l.contains("__keyevent@0__:expired")),
        "the session must see an expiry"
    );
}
