//! Key commands (Redis's db.c / expire.c / object.c): DEL UNLINK EXISTS TOUCH TYPE, the EXPIRE
//! and TTL families, PERSIST, KEYS SCAN RANDOMKEY, RENAME RENAMENX COPY MOVE, OBJECT.
//!
//! Routing: single-key commands run on the key's shard. Multi-key ones whose keys span shards
//! run a cross handler under a `Tx` over exactly those shards (RENAME/COPY take or duplicate
//! the entry on the source shard and store it on the destination one; an `Entry` is plain
//! bytes, so it travels inside the closure). KEYS, SCAN and RANDOMKEY visit every shard.
//!
//! SCAN cursors: a cursor is `shard << POS_BITS | position`, where the position is the table's
//! growth-stable position in hash space (`Table::scan`, 54 bits). Shards are visited in order,
//! so a full iteration returns every key present for its whole duration, on every shard.
//! The shard index is kept below 2^9 so a cursor stays below 2^63 (Redis prints cursors as a
//! signed long long).
//!
//! Lookup accounting follows Redis 7.0: EXISTS TOUCH TYPE TTL/PTTL/EXPIRETIME/PEXPIRETIME
//! OBJECT COPY (source) and SCAN's TYPE filter count keyspace hits/misses (`lookup_read`);
//! DEL RENAME EXPIRE PERSIST MOVE RANDOMKEY KEYS do not (`lookup` / `remove`).
//!
//! Invariant: keys change only through `Shard` (`lookup_write`, `store`, `remove`).

use super::databases::{cluster_enabled, parse_db_arg};
use super::{eq_ic, parse_i64, type_name, NOT_INT, SYNTAX};
use crate::command::{LocalFut, ShardCtx, TableBuilder};
use crate::conn::Conn;
use crate::coord::{group_by_shard, run_on, run_on_all, single_hop, Tx};
use crate::shard::{now_ms, Shard};
use bytes::Bytes;
use damselfly_core::glob::glob_match;
use damselfly_core::table::POS_BITS;
use damselfly_core::{Entry, ValueRef};
use damselfly_resp::ReplyBuilder;

pub fn register(t: &mut TableBuilder) {
    t.keyed("del", del, Some(del_cross));
    t.keyed("unlink", del, Some(del_cross));
    t.keyed("exists", exists, Some(exists_cross));
    t.keyed("touch", touch, Some(touch_cross));
    t.keyed("type", type_cmd, None);
    t.keyed("expire", expire, None);
    t.keyed("pexpire", pexpire, None);
    t.keyed("expireat", expireat, None);
    t.keyed("pexpireat", pexpireat, None);
    t.keyed("ttl", ttl, None);
    t.keyed("pttl", pttl, None);
    t.keyed("expiretime", expiretime, None);
    t.keyed("pexpiretime", pexpiretime, None);
    t.keyed("persist", persist, None);
    t.coord("keys", keys);
    t.coord("scan", scan);
    t.coord("randomkey", randomkey);
    t.keyed("rename", rename, Some(rename_cross));
    t.keyed("renamenx", renamenx, Some(renamenx_cross));
    t.keyed("copy", copy, Some(copy_cross));
    t.keyed("move", move_cmd, None);
    t.keyed("object|encoding", object_encoding, None);
    t.keyed("object|refcount", object_refcount, None);
    t.keyed("object|idletime", object_idletime, None);
    t.keyed("object|freq", object_freq, None);
    t.conn("object|help", object_help);
}

use crate::config::notify::GENERIC;

const NO_SUCH_KEY: &str = "ERR no such key";
const SAME_OBJECT: &str = "ERR source and destination objects are the same";

// ---- DEL UNLINK EXISTS TOUCH -------------------------------------------------------------

fn del_keys(s: &mut Shard, db: usize, keys: &[Bytes], now: u64) -> i64 {
    let mut n = 0;
    for k in keys {
        if s.remove(db, k, now).is_some() {
            s.notify(GENERIC, "del", k, db);
            n += 1;
        }
    }
    n
}

/// Stores `e` as a new key: whatever its key held is deleted first, so the store counts as
/// a new key (Redis's `dbDelete` then `dbAdd` in RENAME, COPY REPLACE, MOVE).
fn store_new(s: &mut Shard, db: usize, e: Entry, now: u64) {
    s.remove(db, e.key(), now);
    s.store(db, e, now);
}

/// EXISTS and TOUCH: both count keyspace hits/misses in Redis (TOUCH also updates the access
/// time, which we do not track).
fn exists_keys(s: &mut Shard, db: usize, keys: &[Bytes], now: u64) -> i64 {
    keys.iter()
        .filter(|k| s.lookup_read(db, k, now).is_some())
        .count() as i64
}

fn del(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let n = del_keys(ctx.shard, ctx.db, &args[1..], ctx.now);
    ctx.r.int(n);
}

fn exists(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let n = exists_keys(ctx.shard, ctx.db, &args[1..], ctx.now);
    ctx.r.int(n);
}

fn touch(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    exists(ctx, args)
}

/// Runs a per-shard counting operation over all key arguments atomically and replies the sum
/// (DEL, UNLINK, EXISTS, TOUCH across shards).
pub async fn cross_count(
    c: &mut Conn,
    args: &[Bytes],
    op: fn(&mut Shard, usize, &[Bytes], u64) -> i64,
) {
    let positions: Vec<usize> = (1..args.len()).collect();
    let groups = group_by_shard(c, args, &positions);
    let db = c.db;
    let parts = single_hop(c, args, &groups, true, true, |_, pos| {
        let keys: Vec<Bytes> = pos.iter().map(|&p| args[p].clone()).collect();
        Box::new(move |s| op(s, db, &keys, now_ms()))
    })
    .await;
    let total: i64 = parts.into_iter().flatten().sum();
    c.out.int(total);
}

fn del_cross(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move { cross_count(c, &args, del_keys).await })
}

fn exists_cross(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move { cross_count(c, &args, exists_keys).await })
}

fn touch_cross(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move { cross_count(c, &args, exists_keys).await })
}

// ---- TYPE --------------------------------------------------------------------------------

fn type_cmd(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let name = ctx
        .shard
        .lookup_read(ctx.db, &args[1], ctx.now)
        .map(type_name)
        .unwrap_or("none");
    ctx.r.simple(name);
}

// ---- EXPIRE family -----------------------------------------------------------------------

/// Parsed NX/XX/GT/LT of EXPIRE and friends.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

/// Redis's `parseExtendedExpireArgumentsOrReply`, with its error texts.
fn parse_expire_flags(opts: &[Bytes]) -> Result<ExpireFlags, Vec<u8>> {
    let mut f = ExpireFlags::default();
    for o in opts {
        if eq_ic(o, "nx") {
            f.nx = true;
        } else if eq_ic(o, "xx") {
            f.xx = true;
        } else if eq_ic(o, "gt") {
            f.gt = true;
        } else if eq_ic(o, "lt") {
            f.lt = true;
        } else {
            // "%s" of a C string: the option up to its first NUL. Redis's
            // addReplyErrorFormat then trims CR/LF off the end of the text (those in the
            // middle become spaces when the reply is written).
            let end = o.iter().position(|&b| b == 0).unwrap_or(o.len());
            let mut e = b"ERR Unsupported option ".to_vec();
            e.extend_from_slice(&o[..end]);
            while matches!(e.last(), Some(b'\r' | b'\n')) {
                e.pop();
            }
            return Err(e);
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(
            b"ERR NX and XX, GT or LT options at the same time are not compatible".to_vec(),
        );
    }
    if f.gt && f.lt {
        return Err(b"ERR GT and LT options at the same time are not compatible".to_vec());
    }
    Ok(f)
}

/// The absolute expiry in ms that EXPIRE-family `args` ask for, as Redis's
/// `expireGenericCommand` computes it (may be negative: an expiry in the past).
fn expire_when(
    args: &[Bytes],
    basetime: i64,
    seconds: bool,
    cmd: &str,
) -> Result<(i64, ExpireFlags), Vec<u8>> {
    let flags = parse_expire_flags(&args[3..])?;
    let mut when = parse_i64(&args[2]).ok_or_else(|| NOT_INT.as_bytes().to_vec())?;
    let bad = || format!("ERR invalid expire time in '{cmd}' command").into_bytes();
    if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return Err(bad());
        }
        when *= 1000;
    }
    if when > i64::MAX - basetime {
        return Err(bad());
    }
    Ok((when + basetime, flags))
}

fn expire_generic(
    ctx: &mut ShardCtx<'_>,
    args: &[Bytes],
    relative: bool,
    seconds: bool,
    cmd: &str,
) {
    let now = ctx.now as i64;
    let (when, f) = match expire_when(args, if relative { now } else { 0 }, seconds, cmd) {
        Ok(v) => v,
        Err(e) => return ctx.r.error_bytes(&e),
    };
    let key = &args[1];
    let current = match ctx.shard.lookup(ctx.db, key, ctx.now) {
        None => return ctx.r.int(0),
        Some(e) => e.ttl().map(|t| t as i64),
    };
    // A key without TTL counts as infinite: it always fails GT, and always passes LT.
    let refused = (f.nx && current.is_some())
        || (f.xx && current.is_none())
        || (f.gt && current.is_none_or(|cur| when <= cur))
        || (f.lt && current.is_some_and(|cur| when >= cur));
    if refused {
        return ctx.r.int(0);
    }
    if when <= now {
        ctx.shard.remove(ctx.db, key, ctx.now);
        ctx.shard.notify(GENERIC, "del", key, ctx.db);
    } else {
        if let Some(mut e) = ctx.shard.lookup_write(ctx.db, key, ctx.now) {
            e.set_ttl(Some(when as u64));
        }
        ctx.shard.notify(GENERIC, "expire", key, ctx.db);
    }
    ctx.r.int(1);
}

fn expire(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    expire_generic(ctx, args, true, true, "expire")
}

fn pexpire(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    expire_generic(ctx, args, true, false, "pexpire")
}

fn expireat(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    expire_generic(ctx, args, false, true, "expireat")
}

fn pexpireat(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    expire_generic(ctx, args, false, false, "pexpireat")
}

/// TTL PTTL EXPIRETIME PEXPIRETIME (`ttlGenericCommand`): -2 missing, -1 no TTL.
fn ttl_generic(ctx: &mut ShardCtx<'_>, args: &[Bytes], ms: bool, abs: bool) {
    let now = ctx.now;
    let reply = match ctx.shard.lookup_read(ctx.db, &args[1], now) {
        None => -2,
        Some(e) => match e.ttl() {
            None => -1,
            Some(t) => ttl_reply(t, now, ms, abs),
        },
    };
    ctx.r.int(reply);
}

/// The reply for an expiry `t` (absolute ms): seconds are rounded to nearest.
fn ttl_reply(t: u64, now: u64, ms: bool, abs: bool) -> i64 {
    let v: i128 = if abs {
        t as i128
    } else {
        (t as i128 - now as i128).max(0)
    };
    (if ms { v } else { (v + 500) / 1000 }) as i64
}

fn ttl(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    ttl_generic(ctx, args, false, false)
}

fn pttl(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    ttl_generic(ctx, args, true, false)
}

fn expiretime(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    ttl_generic(ctx, args, false, true)
}

fn pexpiretime(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    ttl_generic(ctx, args, true, true)
}

fn persist(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let has_ttl =
        matches!(ctx.shard.lookup(ctx.db, &args[1], ctx.now), Some(e) if e.ttl().is_some());
    if has_ttl {
        if let Some(mut e) = ctx.shard.lookup_write(ctx.db, &args[1], ctx.now) {
            e.set_ttl(None);
        }
        ctx.shard.notify(GENERIC, "persist", &args[1], ctx.db);
    }
    ctx.r.int(has_ttl as i64);
}

// ---- KEYS --------------------------------------------------------------------------------

/// KEYS: every shard encodes its matches as bulk strings (the same bytes in RESP2 and RESP3);
/// the reply is one array over all of them. Expired keys are skipped, not deleted (as Redis).
fn keys(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        let pattern = args[1].clone();
        let db = c.db;
        let proto = c.proto();
        let parts = run_on_all(c, move |s| {
            let now = now_ms();
            // Redis special-cases "*" (it would not match the empty key through the glob).
            let all = pattern.as_ref() == b"*";
            let mut rb = ReplyBuilder::new(proto);
            let mut n = 0usize;
            for e in s.dbs[db].iter() {
                if (all || glob_match(&pattern, e.key(), false)) && !e.is_expired(now) {
                    rb.bulk(e.key());
                    n += 1;
                }
            }
            (n, rb.buf)
        })
        .await;
        c.out.array(parts.iter().map(|p| p.0).sum());
        for (_, bytes) in parts {
            c.out.raw(&bytes);
        }
    })
}

// ---- SCAN --------------------------------------------------------------------------------

/// Shards a SCAN cursor can address (the shard index lives above the table position, below
/// bit 63).
pub const MAX_SCAN_SHARDS: usize = 1 << (63 - POS_BITS);

/// A SCAN cursor for table position `pos` of shard `shard`.
pub fn scan_cursor(shard: usize, pos: u64) -> u64 {
    debug_assert!(shard < MAX_SCAN_SHARDS && pos < 1 << POS_BITS);
    ((shard as u64) << POS_BITS) | pos
}

/// (shard, table position) of a SCAN cursor. The shard may be out of range for a cursor the
/// client made up; SCAN then ends the iteration.
pub fn scan_cursor_parts(cursor: u64) -> (usize, u64) {
    (
        (cursor >> POS_BITS) as usize,
        cursor & ((1u64 << POS_BITS) - 1),
    )
}

/// Parses a cursor as Redis's `parseScanCursorOrReply` (C `strtoul`, base 10): a leading
/// space is refused; a sign is allowed (`-1` wraps); trailing bytes are refused; an empty
/// string is 0; the argument ends at its first NUL (a C string); overflow is refused.
pub fn parse_scan_cursor(arg: &[u8]) -> Option<u64> {
    let s = &arg[..arg.iter().position(|&b| b == 0).unwrap_or(arg.len())];
    let Some(&first) = s.first() else {
        return Some(0);
    };
    if matches!(first, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        return None;
    }
    let (neg, digits) = match first {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// SCAN options.
struct ScanOpts {
    count: usize,
    pattern: Option<Bytes>,
    type_name: Option<Vec<u8>>,
}

fn parse_scan_opts(args: &[Bytes]) -> Result<ScanOpts, &'static str> {
    let mut o = ScanOpts {
        count: 10,
        pattern: None,
        type_name: None,
    };
    let mut i = 2;
    while i < args.len() {
        let more = i + 1 < args.len();
        let a = &args[i];
        if eq_ic(a, "count") && more {
            let n = parse_i64(&args[i + 1]).ok_or(NOT_INT)?;
            if n < 1 {
                return Err(SYNTAX);
            }
            o.count = n as usize;
        } else if eq_ic(a, "match") && more {
            let p = &args[i + 1];
            o.pattern = if p.as_ref() == b"*" {
                None
            } else {
                Some(p.clone())
            };
        } else if eq_ic(a, "type") && more {
            // Compared with strcasecmp: up to the first NUL.
            let t = &args[i + 1];
            let end = t.iter().position(|&b| b == 0).unwrap_or(t.len());
            o.type_name = Some(t[..end].to_vec());
        } else {
            return Err(SYNTAX);
        }
        i += 2;
    }
    Ok(o)
}

/// One SCAN step on one shard: visits about `count` entries from `pos`, filters them as Redis
/// does (pattern, then type, then expiry, deleting expired keys), and returns the next
/// position (0: this shard is done), the keys, and how many entries it visited.
fn scan_shard(
    s: &mut Shard,
    db: usize,
    pos: u64,
    count: usize,
    pattern: Option<&[u8]>,
    type_name_filter: Option<&[u8]>,
) -> (u64, Vec<Vec<u8>>, usize) {
    let now = now_ms();
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let next = s.dbs[db].scan(pos, count, |e| seen.push(e.key().to_vec()));
    let visited = seen.len();
    let mut out = Vec::with_capacity(visited);
    for k in seen {
        if let Some(p) = pattern {
            if !glob_match(p, &k, false) {
                continue;
            }
        }
        if let Some(t) = type_name_filter {
            // Redis looks the key up (counting a hit or miss, expiring it): a key that expires
            // here reads as type "none".
            let tn = s.lookup_read(db, &k, now).map(type_name).unwrap_or("none");
            if !t.eq_ignore_ascii_case(tn.as_bytes()) {
                continue;
            }
        }
        if matches!(s.dbs[db].get(&k), Some(e) if e.is_expired(now)) {
            s.lookup(db, &k, now); // deletes it
            continue;
        }
        out.push(k);
    }
    (next, out, visited)
}

fn scan(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        let Some(cursor) = parse_scan_cursor(&args[1]) else {
            c.out.error("ERR invalid cursor");
            return;
        };
        let opts = match parse_scan_opts(&args) {
            Ok(o) => o,
            Err(e) => return c.out.error(e),
        };
        let nshards = c.globals.nshards().min(MAX_SCAN_SHARDS);
        let db = c.db;
        let (mut sid, mut pos) = scan_cursor_parts(cursor);
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut visited = 0usize;
        let mut next = 0;
        // Continue over shards until COUNT entries were visited or the last shard is done, so
        // a small keyspace is returned in one call as Redis does.
        while sid < nshards {
            let want = opts.count - visited;
            let (pat, typ) = (opts.pattern.clone(), opts.type_name.clone());
            let step = run_on(c, sid, move |s| {
                scan_shard(s, db, pos, want, pat.as_deref(), typ.as_deref())
            })
            .await;
            let Some((np, found, n)) = step else {
                break;
            };
            keys.extend(found);
            visited += n;
            if np != 0 {
                next = scan_cursor(sid, np);
                break;
            }
            sid += 1;
            pos = 0;
            if sid < nshards && visited >= opts.count {
                next = scan_cursor(sid, 0);
                break;
            }
        }
        c.out.array(2);
        c.out.bulk(next.to_string().as_bytes());
        c.out.array(keys.len());
        for k in &keys {
            c.out.bulk(k);
        }
    })
}

// ---- RANDOMKEY ---------------------------------------------------------------------------

/// A random live key of `db` on this shard; expired keys met on the way are deleted.
fn random_live_key(s: &mut Shard, db: usize, now: u64) -> Option<Vec<u8>> {
    loop {
        let r = s.rand();
        let (key, expired) = {
            let e = s.dbs[db].random(r)?;
            (e.key().to_vec(), e.is_expired(now))
        };
        if !expired {
            return Some(key);
        }
        s.lookup(db, &key, now);
    }
}

/// RANDOMKEY: every shard proposes a key; one is chosen with probability proportional to its
/// shard's key count, so keys are about equally likely wherever they live.
fn randomkey(c: &mut Conn, _args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        let db = c.db;
        let picks = run_on_all(c, move |s| {
            let k = random_live_key(s, db, now_ms());
            (s.db_len(db) as u64, k)
        })
        .await;
        let total: u64 = picks.iter().filter(|p| p.1.is_some()).map(|p| p.0).sum();
        if total == 0 {
            c.out.null();
            return;
        }
        let mut r = c.shard.borrow_mut().rand() % total;
        for (n, k) in picks {
            if let Some(k) = k {
                if r < n {
                    c.out.bulk(&k);
                    return;
                }
                r -= n;
            }
        }
        c.out.null();
    })
}

// ---- RENAME RENAMENX ---------------------------------------------------------------------

fn rename_generic(ctx: &mut ShardCtx<'_>, args: &[Bytes], nx: bool) {
    let (src, dst) = (&args[1], &args[2]);
    let (db, now) = (ctx.db, ctx.now);
    if ctx.shard.lookup(db, src, now).is_none() {
        return ctx.r.error(NO_SUCH_KEY);
    }
    if src == dst {
        return if nx { ctx.r.int(0) } else { ctx.r.ok() };
    }
    if ctx.shard.lookup(db, dst, now).is_some() && nx {
        return ctx.r.int(0);
    }
    if let Some(e) = ctx.shard.remove(db, src, now) {
        store_new(ctx.shard, db, e.rekey(dst), now);
        ctx.shard.notify(GENERIC, "rename_from", src, db);
        ctx.shard.notify(GENERIC, "rename_to", dst, db);
    }
    if nx {
        ctx.r.int(1)
    } else {
        ctx.r.ok()
    }
}

fn rename(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    rename_generic(ctx, args, false)
}

fn renamenx(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    rename_generic(ctx, args, true)
}

/// RENAME / RENAMENX with source and destination on different shards, atomically.
async fn rename_cross_generic(c: &mut Conn, args: Vec<Bytes>, nx: bool) {
    let (src, dst) = (args[1].clone(), args[2].clone());
    let (ss, ds) = (c.shard_of(&src), c.shard_of(&dst));
    let db = c.db;
    let groups = group_by_shard(c, &args, &[1, 2]);
    let tx = Tx::begin_keys(c, &args, &groups, true).await;
    let (src_exists, dst_exists) = {
        let s2 = src.clone();
        let a = tx.send(ss, move |s| s.lookup(db, &s2, now_ms()).is_some());
        let d2 = dst.clone();
        let b = tx.send(ds, move |s| s.lookup(db, &d2, now_ms()).is_some());
        (a.await.unwrap_or(false), b.await.unwrap_or(false))
    };
    if !src_exists {
        tx.end();
        return c.out.error(NO_SUCH_KEY);
    }
    if nx && dst_exists {
        tx.end();
        return c.out.int(0);
    }
    let taken = tx
        .run(ss, move |s| s.remove(db, &src, now_ms()))
        .await
        .flatten();
    if let Some(e) = taken {
        let from = args[1].clone();
        tx.run(ds, move |s| {
            store_new(s, db, e.rekey(&dst), now_ms());
            // Both events from here, in Redis's order (a channel is just a name).
            s.notify(GENERIC, "rename_from", &from, db);
            s.notify(GENERIC, "rename_to", &dst, db);
        })
        .await;
    }
    tx.end();
    if nx {
        c.out.int(1)
    } else {
        c.out.ok()
    }
}

fn rename_cross(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(rename_cross_generic(c, args, false))
}

fn renamenx_cross(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(rename_cross_generic(c, args, true))
}

// ---- COPY --------------------------------------------------------------------------------

/// COPY's options (`copyCommand`): (destination db, REPLACE), with Redis's checks in order.
fn parse_copy_opts(
    args: &[Bytes],
    cur_db: usize,
    dbnum: usize,
    cluster: impl Fn() -> bool,
) -> Result<(usize, bool), String> {
    let (mut dst_db, mut replace) = (cur_db, false);
    let mut j = 3;
    while j < args.len() {
        if eq_ic(&args[j], "replace") {
            replace = true;
        } else if eq_ic(&args[j], "db") && j + 1 < args.len() {
            dst_db = parse_db_arg(&args[j + 1], dbnum)?;
            j += 1;
        } else {
            return Err(SYNTAX.to_string());
        }
        j += 1;
    }
    if (cur_db != 0 || dst_db != 0) && cluster() {
        return Err("ERR Copying to another database is not allowed in cluster mode".into());
    }
    if dst_db == cur_db && args[1] == args[2] {
        return Err(SAME_OBJECT.to_string());
    }
    Ok((dst_db, replace))
}

/// A copy of `e` under `key` for COPY. Redis's `dupStringObject` gives an integer a fresh,
/// unshared object: we mark it with the raw hint (meaningless for integers otherwise), so
/// OBJECT REFCOUNT reports 1 for it, as Redis does.
fn copy_entry(e: &Entry, key: &[u8]) -> Entry {
    let mut d = e.duplicate(key);
    if matches!(d.value(), ValueRef::Int(_)) {
        d.set_raw_hint(true);
    }
    d
}

/// Stores a copy at the destination unless it exists and REPLACE was not given.
fn copy_store(s: &mut Shard, db: usize, e: Entry, replace: bool, now: u64) -> bool {
    if s.lookup(db, e.key(), now).is_some() && !replace {
        return false;
    }
    let key = e.key().to_vec();
    store_new(s, db, e, now);
    s.notify(GENERIC, "copy_to", &key, db);
    true
}

fn copy(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let (dst_db, replace) = match parse_copy_opts(args, ctx.db, ctx.shard.dbs.len(), || {
        cluster_enabled(&ctx.shard.globals)
    }) {
        Ok(v) => v,
        Err(e) => return ctx.r.error(&e),
    };
    let Some(dup) = ctx
        .shard
        .lookup_read(ctx.db, &args[1], ctx.now)
        .map(|e| copy_entry(e, &args[2]))
    else {
        return ctx.r.int(0);
    };
    let done = copy_store(ctx.shard, dst_db, dup, replace, ctx.now);
    ctx.r.int(done as i64);
}

fn copy_cross(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        let globals = c.globals.clone();
        let (dst_db, replace) =
            match parse_copy_opts(&args, c.db, c.dbnum, || cluster_enabled(&globals)) {
                Ok(v) => v,
                Err(e) => return c.out.error(&e),
            };
        let (src, dst) = (args[1].clone(), args[2].clone());
        let (ss, ds) = (c.shard_of(&src), c.shard_of(&dst));
        let db = c.db;
        let groups = group_by_shard(c, &args, &[1, 2]);
        let tx = Tx::begin_keys(c, &args, &groups, true).await;
        let dup = tx
            .run(ss, move |s| {
                s.lookup_read(db, &src, now_ms())
                    .map(|e| copy_entry(e, &dst))
            })
            .await
            .flatten();
        let done = match dup {
            None => false,
            Some(e) => tx
                .run(ds, move |s| copy_store(s, dst_db, e, replace, now_ms()))
                .await
                .unwrap_or(false),
        };
        tx.end();
        c.out.int(done as i64);
    })
}

// ---- MOVE --------------------------------------------------------------------------------

/// MOVE key db: every shard holds all databases, so this stays on the key's shard.
fn move_cmd(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    if cluster_enabled(&ctx.shard.globals) {
        return ctx.r.error("ERR MOVE is not allowed in cluster mode");
    }
    let dst_db = match parse_db_arg(&args[2], ctx.shard.dbs.len()) {
        Ok(d) => d,
        Err(e) => return ctx.r.error(&e),
    };
    if dst_db == ctx.db {
        return ctx.r.error(SAME_OBJECT);
    }
    let (key, now) = (&args[1], ctx.now);
    if ctx.shard.lookup(ctx.db, key, now).is_none() || ctx.shard.lookup(dst_db, key, now).is_some()
    {
        return ctx.r.int(0);
    }
    if let Some(e) = ctx.shard.remove(ctx.db, key, now) {
        ctx.shard.store(dst_db, e, now);
        ctx.shard.notify(GENERIC, "move_from", key, ctx.db);
        ctx.shard.notify(GENERIC, "move_to", key, dst_db);
    }
    ctx.r.int(1);
}

// ---- OBJECT ------------------------------------------------------------------------------

/// OBJECT REFCOUNT: Redis shares the integer objects 0..9999 (refcount INT_MAX); everything
/// else we store is one object per key. A COPY'd integer is not shared (see `copy_entry`).
pub fn refcount(e: &Entry) -> i64 {
    match e.value() {
        ValueRef::Int(i) if (0..10_000).contains(&i) && !e.raw_hint() => i32::MAX as i64,
        _ => 1,
    }
}

fn lfu_policy(s: &Shard) -> bool {
    s.globals
        .config()
        .effective_maxmemory_policy()
        .ends_with("-lfu")
}

/// OBJECT's key lookup (it counts a keyspace hit or miss); replies null when missing.
fn object_lookup<'a>(ctx: &'a mut ShardCtx<'_>, key: &[u8]) -> Option<&'a Entry> {
    let e = ctx.shard.lookup_read(ctx.db, key, ctx.now);
    if e.is_none() {
        ctx.r.null();
    }
    e
}

fn object_encoding(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    if let Some(name) = object_lookup(ctx, &args[2]).map(super::encoding_name) {
        ctx.r.bulk(name.as_bytes());
    }
}

fn object_refcount(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    if let Some(n) = object_lookup(ctx, &args[2]).map(refcount) {
        ctx.r.int(n);
    }
}

/// OBJECT IDLETIME: access times are not tracked, so every key reads as just used (0).
fn object_idletime(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    if object_lookup(ctx, &args[2]).is_none() {
        return;
    }
    if lfu_policy(ctx.shard) {
        return ctx.r.error("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    ctx.r.int(0);
}

/// OBJECT FREQ: access frequencies are not tracked; under an LFU policy every key reports
/// Redis's initial counter (LFU_INIT_VAL, 5), what a freshly written key has.
fn object_freq(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    if object_lookup(ctx, &args[2]).is_none() {
        return;
    }
    if !lfu_policy(ctx.shard) {
        return ctx.r.error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    ctx.r.int(5);
}

fn object_help(c: &mut Conn, _args: &[Bytes]) {
    const LINES: &[&str] = &[
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    ];
    super::reply_help(c, LINES);
}

#[cfg(test)]
mod tests {
    use super::*;
    use damselfly_core::{NewValue, Table};
    use std::collections::BTreeSet;

    fn b(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    fn shard() -> Shard {
        let g = crate::globals::Globals::new(crate::config::Config::defaults(), Vec::new(), 0);
        Shard::new(0, 16, std::sync::Arc::new(g))
    }

    /// Runs a shard handler on `sh` in `db` at time `now`; returns the raw RESP2 reply.
    fn run(
        sh: &mut Shard,
        db: usize,
        now: u64,
        h: crate::command::ShardHandler,
        args: &[&str],
    ) -> String {
        let mut r = ReplyBuilder::default();
        let mut ctx = ShardCtx {
            shard: sh,
            db,
            r: &mut r,
            now,
            no_touch: false,
        };
        h(&mut ctx, &b(args));
        String::from_utf8_lossy(&r.buf).into_owned()
    }

    fn put(sh: &mut Shard, db: usize, k: &str, v: NewValue<'_>, ttl: Option<u64>) {
        sh.store(db, Entry::new(k.as_bytes(), v, ttl), 0);
    }

    #[test]
    fn keyspace_hits_and_misses_as_redis() {
        let mut sh = shard();
        put(&mut sh, 0, "a", NewValue::Str(b"v"), None);
        let counts = |sh: &Shard| (sh.stats.keyspace_hits, sh.stats.keyspace_misses);
        // Counted: EXISTS TOUCH TYPE TTL-family OBJECT COPY (source).
        let counted: &[(crate::command::ShardHandler, &[&str])] = &[
            (exists, &["exists", "a", "zz"]),
            (touch, &["touch", "a", "zz"]),
            (type_cmd, &["type", "a"]),
            (type_cmd, &["type", "zz"]),
            (ttl, &["ttl", "a"]),
            (pexpiretime, &["pexpiretime", "zz"]),
            (object_encoding, &["object", "encoding", "a"]),
            (object_refcount, &["object", "refcount", "zz"]),
            (copy, &["copy", "a", "b"]),
            (copy, &["copy", "zz", "b"]),
        ];
        let mut expect = (0, 0);
        for (h, args) in counted {
            run(&mut sh, 0, 1, *h, args);
            let hits = args.iter().skip(1).filter(|k| **k == "a").count() as u64;
            let misses = args.iter().skip(1).filter(|k| **k == "zz").count() as u64;
            expect = (expect.0 + hits, expect.1 + misses);
            assert_eq!(counts(&sh), expect, "{args:?}");
        }
        // Not counted: DEL RENAME EXPIRE PERSIST MOVE.
        let before = counts(&sh);
        run(&mut sh, 0, 1, expire, &["expire", "b", "100"]);
        run(&mut sh, 0, 1, persist, &["persist", "b"]);
        run(&mut sh, 0, 1, rename, &["rename", "b", "c"]);
        run(&mut sh, 0, 1, move_cmd, &["move", "c", "1"]);
        run(&mut sh, 0, 1, del, &["del", "a", "zz"]);
        assert_eq!(counts(&sh), before);
    }

    #[test]
    fn expire_paths() {
        let mut sh = shard();
        let now = 1_000_000;
        put(&mut sh, 0, "a", NewValue::Str(b"v"), None);
        assert_eq!(
            run(&mut sh, 0, now, expire, &["expire", "a", "10", "gt"]),
            ":0\r\n"
        );
        assert_eq!(
            run(&mut sh, 0, now, expire, &["expire", "a", "10", "xx"]),
            ":0\r\n"
        );
        assert_eq!(
            run(&mut sh, 0, now, expire, &["expire", "a", "10", "lt"]),
            ":1\r\n"
        );
        assert_eq!(
            sh.dbs[0].get(b"a").and_then(|e| e.ttl()),
            Some(now + 10_000)
        );
        assert_eq!(sh.dbs[0].expires(), 1);
        assert_eq!(
            run(&mut sh, 0, now, expire, &["expire", "a", "20", "lt"]),
            ":0\r\n"
        );
        assert_eq!(
            run(&mut sh, 0, now, expire, &["expire", "a", "20", "nx"]),
            ":0\r\n"
        );
        assert_eq!(
            run(
                &mut sh,
                0,
                now,
                pexpire,
                &["pexpire", "a", "20000", "gt", "xx"]
            ),
            ":1\r\n"
        );
        assert_eq!(run(&mut sh, 0, now, ttl, &["ttl", "a"]), ":20\r\n");
        assert_eq!(run(&mut sh, 0, now, pttl, &["pttl", "a"]), ":20000\r\n");
        assert_eq!(
            run(&mut sh, 0, now, pexpiretime, &["pexpiretime", "a"]),
            format!(":{}\r\n", now + 20_000)
        );
        assert_eq!(run(&mut sh, 0, now, persist, &["persist", "a"]), ":1\r\n");
        assert_eq!(run(&mut sh, 0, now, persist, &["persist", "a"]), ":0\r\n");
        assert_eq!(sh.dbs[0].expires(), 0);
        assert_eq!(run(&mut sh, 0, now, ttl, &["ttl", "a"]), ":-1\r\n");
        // A time in the past deletes the key and still answers 1.
        assert_eq!(
            run(&mut sh, 0, now, expireat, &["expireat", "a", "1"]),
            ":1\r\n"
        );
        assert!(sh.dbs[0].get(b"a").is_none());
        assert_eq!(
            run(&mut sh, 0, now, pexpireat, &["pexpireat", "a", "1"]),
            ":0\r\n"
        );
        assert_eq!(run(&mut sh, 0, now, ttl, &["ttl", "a"]), ":-2\r\n");
        assert_eq!(
            run(&mut sh, 0, now, expire, &["expire", "a", "1", "bogus"]),
            "-ERR Unsupported option bogus\r\n"
        );
        assert_eq!(
            run(
                &mut sh,
                0,
                now,
                pexpire,
                &["pexpire", "a", "9223372036854775807"]
            ),
            "-ERR invalid expire time in 'pexpire' command\r\n"
        );
        // An expired key reads as missing everywhere.
        put(&mut sh, 0, "old", NewValue::Int(1), Some(now - 1));
        assert_eq!(
            run(&mut sh, 0, now, expire, &["expire", "old", "10"]),
            ":0\r\n"
        );
        assert_eq!(sh.dbs[0].len(), 0);
    }

    #[test]
    fn rename_copy_move_in_one_shard() {
        let mut sh = shard();
        put(&mut sh, 0, "a", NewValue::Int(7), Some(5_000));
        assert_eq!(run(&mut sh, 0, 1, rename, &["rename", "a", "a"]), "+OK\r\n");
        assert_eq!(
            run(&mut sh, 0, 1, renamenx, &["renamenx", "a", "a"]),
            ":0\r\n"
        );
        assert_eq!(
            run(&mut sh, 0, 1, rename, &["rename", "zz", "zz"]),
            "-ERR no such key\r\n"
        );
        assert_eq!(run(&mut sh, 0, 1, rename, &["rename", "a", "b"]), "+OK\r\n");
        assert_eq!(sh.dbs[0].get(b"b").and_then(|e| e.ttl()), Some(5_000));
        assert_eq!(sh.dbs[0].expires(), 1);
        assert_eq!(run(&mut sh, 0, 1, copy, &["copy", "b", "c"]), ":1\r\n");
        assert_eq!(
            run(&mut sh, 0, 1, object_refcount, &["object", "refcount", "b"]),
            ":2147483647\r\n"
        );
        assert_eq!(
            run(&mut sh, 0, 1, object_refcount, &["object", "refcount", "c"]),
            ":1\r\n"
        );
        assert_eq!(
            run(&mut sh, 0, 1, object_encoding, &["object", "encoding", "c"]),
            "$3\r\nint\r\n"
        );
        assert_eq!(run(&mut sh, 0, 1, copy, &["copy", "b", "c"]), ":0\r\n");
        assert_eq!(
            run(
                &mut sh,
                0,
                1,
                copy,
                &["copy", "b", "c", "replace", "db", "3"]
            ),
            ":1\r\n"
        );
        assert_eq!(sh.dbs[3].get(b"c").and_then(|e| e.ttl()), Some(5_000));
        assert_eq!(
            run(&mut sh, 0, 1, renamenx, &["renamenx", "b", "c"]),
            ":0\r\n"
        );
        assert_eq!(
            run(&mut sh, 0, 1, move_cmd, &["move", "b", "0"]),
            format!("-{SAME_OBJECT}\r\n")
        );
        assert_eq!(run(&mut sh, 0, 1, move_cmd, &["move", "c", "3"]), ":0\r\n");
        assert_eq!(run(&mut sh, 0, 1, move_cmd, &["move", "b", "3"]), ":1\r\n");
        assert!(sh.dbs[0].get(b"b").is_none());
        assert_eq!(sh.dbs[3].get(b"b").and_then(|e| e.ttl()), Some(5_000));
        assert_eq!((sh.dbs[0].expires(), sh.dbs[3].expires()), (1, 2));
        assert_eq!(
            run(&mut sh, 0, 1, move_cmd, &["move", "c", "16"]),
            "-ERR DB index is out of range\r\n"
        );
        sh.swap_dbs(0, 3);
        assert_eq!(sh.dbs[0].len(), 2);
        assert_eq!(sh.dbs[3].len(), 1);
    }

    #[test]
    fn scan_shard_filters_and_expires() {
        let mut sh = shard();
        let now = now_ms();
        put(&mut sh, 0, "k1", NewValue::Str(b"v"), None);
        put(&mut sh, 0, "k2", NewValue::Int(2), None);
        put(&mut sh, 0, "x1", NewValue::Str(b"v"), None);
        put(&mut sh, 0, "kdead", NewValue::Str(b"v"), Some(now - 1));
        let (next, mut keys, visited) = scan_shard(&mut sh, 0, 0, 100, Some(b"k*"), None);
        keys.sort();
        assert_eq!((next, visited), (0, 4));
        assert_eq!(keys, vec![b"k1".to_vec(), b"k2".to_vec()]);
        // The expired key met by SCAN was deleted.
        assert_eq!(sh.dbs[0].len(), 3);
        let (_, keys, _) = scan_shard(&mut sh, 0, 0, 100, None, Some(b"STRING"));
        assert_eq!(keys.len(), 3);
        let (_, keys, _) = scan_shard(&mut sh, 0, 0, 100, None, Some(b"list"));
        assert!(keys.is_empty());
        // RANDOMKEY skips (and deletes) expired keys.
        put(&mut sh, 1, "gone", NewValue::Str(b"v"), Some(now - 1));
        assert_eq!(random_live_key(&mut sh, 1, now), None);
        assert_eq!(sh.dbs[1].len(), 0);
        put(&mut sh, 1, "live", NewValue::Str(b"v"), None);
        assert_eq!(random_live_key(&mut sh, 1, now), Some(b"live".to_vec()));
    }

    #[test]
    fn scan_cursor_roundtrip() {
        assert_eq!(scan_cursor(0, 0), 0);
        for &(sid, pos) in &[
            (0usize, 1u64),
            (1, 0),
            (3, 12345),
            (MAX_SCAN_SHARDS - 1, (1 << POS_BITS) - 1),
        ] {
            let c = scan_cursor(sid, pos);
            assert_eq!(scan_cursor_parts(c), (sid, pos));
            // Redis prints cursors as a signed long long: ours stay positive.
            assert!(c <= i64::MAX as u64);
        }
        // Any other shard's start is a non-zero cursor, so it cannot be mistaken for "done".
        assert_ne!(scan_cursor(1, 0), 0);
        assert_eq!(
            scan_cursor_parts(u64::MAX).0,
            (u64::MAX >> POS_BITS) as usize
        );
    }

    #[test]
    fn scan_cursor_parsing_matches_strtoul() {
        assert_eq!(parse_scan_cursor(b"0"), Some(0));
        assert_eq!(parse_scan_cursor(b""), Some(0));
        assert_eq!(parse_scan_cursor(b"+0"), Some(0));
        assert_eq!(parse_scan_cursor(b"-0"), Some(0));
        assert_eq!(parse_scan_cursor(b"007"), Some(7));
        assert_eq!(parse_scan_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_scan_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_scan_cursor(b"-18446744073709551615"), Some(1));
        assert_eq!(parse_scan_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_scan_cursor(b"-18446744073709551616"), None);
        assert_eq!(parse_scan_cursor(b"1\0abc"), Some(1));
        assert_eq!(parse_scan_cursor(b"\0"), Some(0));
        for bad in [
            &b" 0"[..],
            b"0 ",
            b"\t1",
            b"abc",
            b"+",
            b"-",
            b"1a",
            b"+-1",
            b"0x10",
        ] {
            assert_eq!(parse_scan_cursor(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn scan_options() {
        let o = parse_scan_opts(&b(&["scan", "0"])).ok().unwrap();
        assert_eq!(o.count, 10);
        assert!(o.pattern.is_none() && o.type_name.is_none());
        let o = parse_scan_opts(&b(&[
            "scan", "0", "MATCH", "*", "count", "3", "TYPE", "List",
        ]))
        .ok()
        .unwrap();
        assert!(o.pattern.is_none());
        assert_eq!(o.count, 3);
        assert_eq!(o.type_name.as_deref(), Some(&b"List"[..]));
        let err = |v: &[&str]| parse_scan_opts(&b(v)).err();
        assert_eq!(err(&["scan", "0", "count", "0"]), Some(SYNTAX));
        assert_eq!(err(&["scan", "0", "count", "x"]), Some(NOT_INT));
        assert_eq!(err(&["scan", "0", "count"]), Some(SYNTAX));
        assert_eq!(err(&["scan", "0", "match"]), Some(SYNTAX));
        assert_eq!(err(&["scan", "0", "foo", "bar"]), Some(SYNTAX));
    }

    /// The per-shard SCAN walk, driven through cursors across several tables standing in for
    /// shards, returns every key that stays present while the tables grow and shrink.
    #[test]
    fn cursor_walk_over_shards_returns_stable_keys() {
        let mut shards: Vec<Table> = (0..3).map(|_| Table::new()).collect();
        for i in 0..3000 {
            let k = format!("stable:{i}");
            shards[i % 3].insert(Entry::new(k.as_bytes(), NewValue::Int(1), None), 0);
        }
        let mut seen = BTreeSet::new();
        let mut cursor = 0u64;
        let mut churn = 0;
        loop {
            let (mut sid, pos) = scan_cursor_parts(cursor);
            let mut visited = 0;
            let next_pos = shards[sid].scan(pos, 25, |e| {
                seen.insert(e.key().to_vec());
                visited += 1;
            });
            cursor = if next_pos != 0 {
                scan_cursor(sid, next_pos)
            } else {
                sid += 1;
                if sid == shards.len() {
                    0
                } else {
                    scan_cursor(sid, 0)
                }
            };
            for t in shards.iter_mut() {
                for _ in 0..20 {
                    let k = format!("churn:{churn}");
                    t.insert(Entry::new(k.as_bytes(), NewValue::Int(1), None), 0);
                    if churn % 3 == 0 {
                        t.remove(format!("churn:{}", churn / 2).as_bytes());
                    }
                    churn += 1;
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..3000 {
            assert!(
                seen.contains(format!("stable:{i}").as_bytes()),
                "stable:{i}"
            );
        }
    }

    #[test]
    fn expire_flag_rules() {
        let f = |v: &[&str]| parse_expire_flags(&b(v));
        assert_eq!(
            f(&["xx", "GT"]),
            Ok(ExpireFlags {
                xx: true,
                gt: true,
                ..Default::default()
            })
        );
        assert_eq!(f(&["nx", "nx"]).map(|x| x.nx), Ok(true));
        let nx_err =
            b"ERR NX and XX, GT or LT options at the same time are not compatible".to_vec();
        assert_eq!(f(&["nx", "xx"]), Err(nx_err.clone()));
        assert_eq!(f(&["lt", "nx"]), Err(nx_err));
        assert_eq!(
            f(&["gt", "lt"]),
            Err(b"ERR GT and LT options at the same time are not compatible".to_vec())
        );
        // The first unknown option wins over a later conflict.
        assert_eq!(
            f(&["foo", "nx", "xx"]),
            Err(b"ERR Unsupported option foo".to_vec())
        );
        assert_eq!(f(&["a\0b"]), Err(b"ERR Unsupported option a".to_vec()));
        // Trailing CR/LF are trimmed as Redis's addReplyErrorFormat does.
        assert_eq!(f(&["x\r\n"]), Err(b"ERR Unsupported option x".to_vec()));
        assert_eq!(f(&["\n"]), Err(b"ERR Unsupported option ".to_vec()));
    }

    #[test]
    fn expire_time_overflow() {
        let w = |v: &[&str], base: i64, secs: bool| expire_when(&b(v), base, secs, "expire");
        let bad = Err(b"ERR invalid expire time in 'expire' command".to_vec());
        assert_eq!(
            w(&["expire", "k", "10"], 1000, true).map(|x| x.0),
            Ok(11_000)
        );
        assert_eq!(
            w(&["expire", "k", "-10"], 1000, true).map(|x| x.0),
            Ok(-9_000)
        );
        assert_eq!(w(&["expire", "k", "9223372036854775807"], 0, true), bad);
        assert_eq!(w(&["expire", "k", "-9223372036854775808"], 0, true), bad);
        assert_eq!(w(&["expire", "k", "9223372036854775"], 808, true), bad);
        assert!(w(&["expire", "k", "9223372036854775"], 807, true).is_ok());
        assert_eq!(
            w(&["expire", "k", "9223372036854775807"], 0, false).map(|x| x.0),
            Ok(i64::MAX)
        );
        assert_eq!(w(&["expire", "k", "9223372036854775807"], 1, false), bad);
        assert_eq!(
            w(&["expire", "k", "x"], 0, false),
            Err(NOT_INT.as_bytes().to_vec())
        );
        // Options are checked before the number.
        assert_eq!(
            w(&["expire", "k", "x", "bad"], 0, false),
            Err(b"ERR Unsupported option bad".to_vec())
        );
    }

    #[test]
    fn ttl_rounding() {
        assert_eq!(ttl_reply(10_499, 0, false, false), 10);
        assert_eq!(ttl_reply(10_500, 0, false, false), 11);
        assert_eq!(ttl_reply(10_500, 0, true, false), 10_500);
        assert_eq!(ttl_reply(5, 10, true, false), 0);
        assert_eq!(
            ttl_reply(i64::MAX as u64, 0, false, true),
            9_223_372_036_854_776
        );
        assert_eq!(ttl_reply(i64::MAX as u64, 0, true, true), i64::MAX);
    }

    #[test]
    fn copy_options() {
        let p = |v: &[&str], db: usize| parse_copy_opts(&b(v), db, 16, || false);
        assert_eq!(p(&["copy", "a", "b"], 0), Ok((0, false)));
        assert_eq!(
            p(&["copy", "a", "b", "DB", "3", "replace"], 0),
            Ok((3, true))
        );
        assert_eq!(p(&["copy", "a", "a"], 2), Err(SAME_OBJECT.into()));
        assert_eq!(
            p(&["copy", "a", "a", "db", "2"], 2),
            Err(SAME_OBJECT.into())
        );
        assert_eq!(p(&["copy", "a", "a", "db", "1"], 2), Ok((1, false)));
        assert_eq!(p(&["copy", "a", "b", "db"], 0), Err(SYNTAX.into()));
        assert_eq!(
            p(&["copy", "a", "b", "db", "16"], 0),
            Err(super::super::DB_INDEX.into())
        );
        assert_eq!(p(&["copy", "a", "b", "foo"], 0), Err(SYNTAX.into()));
        // Errors in argument order: a bad DB before a later syntax error.
        assert_eq!(
            p(&["copy", "a", "b", "db", "x", "foo"], 0),
            Err(NOT_INT.into())
        );
        let c = parse_copy_opts(&b(&["copy", "a", "b", "db", "1"]), 0, 16, || true);
        assert_eq!(
            c,
            Err("ERR Copying to another database is not allowed in cluster mode".into())
        );
    }

    #[test]
    fn refcount_of_shared_integers() {
        let e = |v: NewValue<'_>| Entry::new(b"k", v, None);
        assert_eq!(refcount(&e(NewValue::Int(0))), i32::MAX as i64);
        assert_eq!(refcount(&e(NewValue::Int(9999))), i32::MAX as i64);
        assert_eq!(refcount(&e(NewValue::Int(10_000))), 1);
        assert_eq!(refcount(&e(NewValue::Int(-1))), 1);
        assert_eq!(refcount(&e(NewValue::Str(b"hello"))), 1);
        let copied = copy_entry(&e(NewValue::Int(12)), b"k2");
        assert_eq!(copied.key(), b"k2");
        assert_eq!(refcount(&copied), 1);
        assert_eq!(super::super::encoding_name(&copied), "int");
        // Entries that are not integers keep their hint as it was.
        let s = copy_entry(&e(NewValue::Str(b"x")), b"k3");
        assert!(!s.raw_hint());
    }
}
