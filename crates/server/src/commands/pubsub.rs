//! Pub/Sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB.
//!
//! All run on the connection's thread against the server-wide registry (`crate::pubsub`).
//! Replies and messages are byte-identical to Redis 7.0 in RESP2 and RESP3; in RESP2 a
//! subscribed connection may send only what `allowed_while_subscribed` lists (checked in
//! `Conn::dispatch`).

use crate::command::TableBuilder;
use crate::conn::Conn;
use crate::pubsub::{encode, Kind};
use bytes::Bytes;
use damselfly_resp::Protocol;
use std::sync::atomic::Ordering;

pub fn register(t: &mut TableBuilder) {
    t.conn("subscribe", subscribe);
    t.conn("psubscribe", psubscribe);
    t.conn("ssubscribe", ssubscribe);
    t.conn("unsubscribe", unsubscribe);
    t.conn("punsubscribe", punsubscribe);
    t.conn("sunsubscribe", sunsubscribe);
    t.conn("publish", publish);
    t.conn("spublish", spublish);
    t.conn("pubsub|channels", pubsub_channels);
    t.conn("pubsub|shardchannels", pubsub_shardchannels);
    t.conn("pubsub|numsub", pubsub_numsub);
    t.conn("pubsub|shardnumsub", pubsub_shardnumsub);
    t.conn("pubsub|numpat", pubsub_numpat);
    t.conn("pubsub|help", pubsub_help);
}

/// What a RESP2 connection in Pub/Sub mode may still run.
pub fn allowed_while_subscribed(name: &str) -> bool {
    matches!(
        name,
        "ping"
            | "subscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "quit"
            | "reset"
    )
}

fn kind_names(kind: Kind) -> (&'static [u8], &'static [u8]) {
    match kind {
        Kind::Channel => (b"subscribe", b"unsubscribe"),
        Kind::Pattern => (b"psubscribe", b"punsubscribe"),
        Kind::Shard => (b"ssubscribe", b"sunsubscribe"),
    }
}

/// A confirmation: `[kind, name or null, count]`.
fn confirm(c: &mut Conn, what: &[u8], name: Option<&[u8]>, count: usize) {
    let resp3 = c.out.proto == Protocol::Resp3;
    let mut m = encode(resp3, &[what]);
    // `encode` wrote a one-element header: rewrite it for three.
    m[1] = b'3';
    match name {
        Some(n) => {
            m.push(b'$');
            m.extend_from_slice(n.len().to_string().as_bytes());
            m.extend_from_slice(b"\r\n");
            m.extend_from_slice(n);
            m.extend_from_slice(b"\r\n");
        }
        None => m.extend_from_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
    }
    m.extend_from_slice(format!(":{count}\r\n").as_bytes());
    c.out.buf.extend_from_slice(&m);
}

/// Publishes the connection's subscription counts for CLIENT LIST and tracking; a client
/// that left Pub/Sub mode is back under the `normal` class's limits.
fn mirror(c: &mut Conn) {
    if c.subs.total() == 0 && !c.monitor && c.shared.in_pubsub() {
        let limits = crate::push::limits_of(&c.globals.config(), "normal");
        c.shared.pushes.set_limits(limits);
    }
    let s = &c.shared.subs;
    s[0].store(c.subs.channels.len(), Ordering::Relaxed);
    s[1].store(c.subs.patterns.len(), Ordering::Relaxed);
    s[2].store(c.subs.shard.len(), Ordering::Relaxed);
}

fn count_for(c: &Conn, kind: Kind) -> usize {
    if kind == Kind::Shard {
        c.subs.shard.len()
    } else {
        c.subs.count()
    }
}

fn subscribe_generic(c: &mut Conn, args: &[Bytes], kind: Kind) {
    if c.subs.total() == 0 {
        // A subscriber's pending messages are bounded by the `pubsub` class's limits.
        let limits = crate::push::limits_of(&c.globals.config(), "pubsub");
        c.shared.pushes.set_limits(limits);
    }
    let (what, _) = kind_names(kind);
    for name in &args[1..] {
        if !c.subs.list(kind).contains(name) {
            c.subs.list(kind).push(name.clone());
            c.globals.pubsub.subscribe(kind, name, &c.shared);
        }
        let n = count_for(c, kind);
        confirm(c, what, Some(name), n);
    }
    mirror(c);
}

fn unsubscribe_generic(c: &mut Conn, args: &[Bytes], kind: Kind) {
    let (_, what) = kind_names(kind);
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        c.subs.list(kind).clone()
    };
    if names.is_empty() {
        let n = count_for(c, kind);
        confirm(c, what, None, n);
    }
    for name in names {
        if let Some(p) = c.subs.list(kind).iter().position(|x| *x == name) {
            c.subs.list(kind).remove(p);
            c.globals.pubsub.unsubscribe(kind, &name, c.id);
        }
        let n = count_for(c, kind);
        confirm(c, what, Some(&name), n);
    }
    mirror(c);
}

/// Drops every subscription without replies (RESET, and the connection going away).
pub fn unsubscribe_all(c: &mut Conn) {
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        for name in std::mem::take(c.subs.list(kind)) {
            c.globals.pubsub.unsubscribe(kind, &name, c.id);
        }
    }
    mirror(c);
}

fn subscribe(c: &mut Conn, args: &[Bytes]) {
    subscribe_generic(c, args, Kind::Channel)
}

fn psubscribe(c: &mut Conn, args: &[Bytes]) {
    subscribe_generic(c, args, Kind::Pattern)
}

fn ssubscribe(c: &mut Conn, args: &[Bytes]) {
    if c.cluster_emulated && !same_slot(&args[1..]) {
        c.out
            .error("CROSSSLOT Keys in request don't hash to the same slot");
        return;
    }
    subscribe_generic(c, args, Kind::Shard)
}

fn same_slot(names: &[Bytes]) -> bool {
    let slot = |n: &Bytes| damselfly_core::slot::key_slot(n);
    names.windows(2).all(|w| slot(&w[0]) == slot(&w[1]))
}

fn unsubscribe(c: &mut Conn, args: &[Bytes]) {
    unsubscribe_generic(c, args, Kind::Channel)
}

fn punsubscribe(c: &mut Conn, args: &[Bytes]) {
    unsubscribe_generic(c, args, Kind::Pattern)
}

fn sunsubscribe(c: &mut Conn, args: &[Bytes]) {
    unsubscribe_generic(c, args, Kind::Shard)
}

fn publish_generic(c: &mut Conn, args: &[Bytes], shard: bool) {
    // A message to this connection itself comes before the reply, as in Redis.
    let mut own = Vec::new();
    let n = c
        .globals
        .pubsub
        .publish(&args[1], &args[2], shard, c.id, &mut own);
    if c.reply_mode == crate::conn::ReplyMode::On {
        c.out.buf.extend_from_slice(&own);
    } else if !own.is_empty() {
        // CLIENT REPLY OFF/SKIP drops the reply, not the message.
        c.shared.pushes.push(&own);
    }
    c.out.int(n as i64);
}

fn publish(c: &mut Conn, args: &[Bytes]) {
    publish_generic(c, args, false)
}

fn spublish(c: &mut Conn, args: &[Bytes]) {
    publish_generic(c, args, true)
}

fn channels_generic(c: &mut Conn, args: &[Bytes], shard: bool) {
    if args.len() > 3 {
        super::subcommand_syntax_error(c, args);
        return;
    }
    let list = c
        .globals
        .pubsub
        .channels(shard, args.get(2).map(|p| p.as_ref()));
    c.out.array(list.len());
    for ch in list {
        c.out.bulk(&ch);
    }
}

fn pubsub_channels(c: &mut Conn, args: &[Bytes]) {
    channels_generic(c, args, false)
}

fn pubsub_shardchannels(c: &mut Conn, args: &[Bytes]) {
    channels_generic(c, args, true)
}

fn numsub_generic(c: &mut Conn, args: &[Bytes], shard: bool) {
    let chans = &args[2..];
    c.out.array(chans.len() * 2);
    for ch in chans {
        let n = c.globals.pubsub.numsub(shard, ch);
        c.out.bulk(ch);
        c.out.int(n as i64);
    }
}

fn pubsub_numsub(c: &mut Conn, args: &[Bytes]) {
    numsub_generic(c, args, false)
}

fn pubsub_shardnumsub(c: &mut Conn, args: &[Bytes]) {
    numsub_generic(c, args, true)
}

fn pubsub_numpat(c: &mut Conn, _args: &[Bytes]) {
    let n = c.globals.pubsub.count(Kind::Pattern);
    c.out.int(n as i64);
}

fn pubsub_help(c: &mut Conn, _args: &[Bytes]) {
    const LINES: &[&str] = &[
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
    ];
    super::reply_help(c, LINES);
}
