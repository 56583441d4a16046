//! Pub/Sub, differential: a scripted session of subscribers and publishers runs against
//! redis-server and damselfly, and after every step everything each client received
//! (replies, confirmations, messages) must be the same bytes (see
//! `damselfly_compat::session`). Clients: `S` (RESP2 subscriber), `T` (RESP3 subscriber),
//! `P` (RESP2 publisher), `Q` (RESP3, subscribes and keeps running commands).
//!
//! What it covers: SUBSCRIBE/PSUBSCRIBE/SSUBSCRIBE and their UNSUBSCRIBEs (with and without
//! arguments, of what was never subscribed, the counts), PUBLISH/SPUBLISH counts and message
//! shapes in both protocols, channel before pattern delivery, a RESP3 client publishing to
//! itself (its message before the reply), RESP2's subscribed-mode refusals and PING, RESET
//! leaving Pub/Sub, glob patterns, PUBSUB CHANNELS/NUMSUB/NUMPAT/SHARDCHANNELS/SHARDNUMSUB
//! and their errors.

use damselfly_compat::{assert_same_session, Pair};

const CLIENTS: &[(&str, bool)] = &[("S", false), ("T", true), ("P", false), ("Q", true)];

fn session() -> Vec<(&'static str, &'static str)> {
    vec![
        ("S", "SUBSCRIBE news sports"),
        ("S", "SUBSCRIBE news"),
        ("S", "GET k"),
        ("S", "CLIENT ID"),
        ("S", "PING"),
        ("S", "PING hi"),
        ("S", "PING a b"),
        ("P", "PUBLISH news hello"),
        ("P", "PUBLISH nobody x"),
        ("T", "PSUBSCRIBE n* h[ae]llo"),
        ("P", "PUBLISH news m2"),
        ("P", "PUBLISH hallo m3"),
        ("P", "PUBLISH hello m4"),
        ("P", "PUBLISH hillo m5"),
        ("T", "SUBSCRIBE news"),
        ("P", "PUBLISH news m6"),
        ("T", "PUBLISH news self"),
        ("T", "GET k"),
        ("T", "PING"),
        ("P", "PUBSUB NUMSUB news sports none"),
        ("P", "PUBSUB NUMSUB"),
        ("P", "PUBSUB NUMPAT"),
        ("P", "PUBSUB CHANNELS s*"),
        ("P", "PUBSUB CHANNELS x*"),
        ("P", "PUBSUB CHANNELS a b"),
        ("P", "PUBSUB SHARDCHANNELS"),
        ("P", "PUBSUB SHARDNUMSUB sh"),
        ("P", "PUBSUB NOSUCH"),
        ("P", "PUBSUB"),
        ("S", "UNSUBSCRIBE sports"),
        ("S", "UNSUBSCRIBE nonsub"),
        ("S", "PSUBSCRIBE s?"),
        ("P", "PUBLISH so both"),
        ("S", "PUNSUBSCRIBE"),
        ("S", "UNSUBSCRIBE"),
        ("S", "GET k"),
        ("S", "UNSUBSCRIBE"),
        ("S", "PUNSUBSCRIBE"),
        ("S", "SUNSUBSCRIBE"),
        ("S", "PING"),
        ("S", "SSUBSCRIBE sh"),
        ("S", "SET k v"),
        ("P", "SPUBLISH sh hi"),
        ("P", "PUBLISH sh not-shard"),
        ("P", "PUBSUB SHARDCHANNELS"),
        ("P", "PUBSUB SHARDCHANNELS s*"),
        ("P", "PUBSUB SHARDNUMSUB sh none"),
        ("S", "UNSUBSCRIBE"),
        ("S", "SUNSUBSCRIBE sh"),
        ("S", "GET k"),
        ("T", "PUNSUBSCRIBE n*"),
        ("P", "PUBLISH news m7"),
        ("T", "RESET"),
        ("T", "HELLO 3"),
        ("P", "PUBLISH news after-reset"),
        ("P", "PUBSUB NUMPAT"),
        ("Q", "SUBSCRIBE \"bin\\x00chan\""),
        ("Q", "SET k v"),
        ("Q", "GET k"),
        ("P", "PUBLISH \"bin\\x00chan\" \"\\xff\\x00\""),
        ("P", "PUBLISH bin x"),
        ("Q", "UNSUBSCRIBE \"bin\\x00chan\""),
        ("S", "SUBSCRIBE"),
        ("P", "PUBLISH onlychannel"),
        ("P", "SPUBLISH"),
        ("S", "PSUBSCRIBE"),
        ("S", "SUBSCRIBE last"),
        ("S", "RESET"),
        ("S", "GET k"),
        ("P", "PUBLISH last x"),
    ]
}

#[test]
fn pubsub_session_matches_redis() {
    let mut pair = Pair::start();
    let want = assert_same_session(&mut pair, CLIENTS, &session());
    assert!(
        want.iter().any(|l| l.contains("pmessage")),
        "the session must deliver pattern messages"
    );
}
