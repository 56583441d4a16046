//! String commands (Redis's t_string.c): GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX
//! APPEND SETRANGE GETRANGE SUBSTR STRLEN INCR DECR INCRBY DECRBY INCRBYFLOAT MGET MSET MSETNX
//! LCS. Replies and error texts are Redis 7.0's, byte for byte.
//!
//! Invariant: string values are stored through `new_string_value` (integer encoding when
//! Redis would use it) and read through `string_bytes`; a non-string gets WRONGTYPE. Strings
//! changed in place (APPEND, SETRANGE, the bit commands) become a growable `Object::Str`,
//! which OBJECT ENCODING reports as "raw" like Redis's unshared sds. INCRBYFLOAT's sum is
//! computed in C `long double` (longdouble.c) so its digits are Redis's.

use super::{
    eq_ic, new_string_value, parse_i64, string_bytes, NOT_FLOAT, NOT_INT, OVERFLOW, SYNTAX,
    WRONGTYPE,
};
use crate::command::{LocalFut, ShardCtx, TableBuilder};
use crate::config::notify::{GENERIC, STRING};
use crate::conn::Conn;
use crate::coord::{group_by_shard, single_hop, Tx};
use crate::shard::Shard;
use bytes::Bytes;
use damselfly_core::{Entry, NewValue, Object, ValueRef};
use damselfly_resp::ReplyBuilder;

pub fn register(t: &mut TableBuilder) {
    t.keyed("get", get, None);
    t.keyed("set", set, None);
    t.keyed("mget", mget, Some(mget_cross));
    t.keyed("mset", mset, Some(mset_cross));
    t.keyed("msetnx", msetnx, Some(msetnx_cross));
    t.keyed("setnx", setnx, None);
    t.keyed("setex", setex, None);
    t.keyed("psetex", psetex, None);
    t.keyed("getset", getset, None);
    t.keyed("getdel", getdel, None);
    t.keyed("getex", getex, None);
    t.keyed("append", append, None);
    t.keyed("setrange", setrange, None);
    t.keyed("getrange", getrange, None);
    t.keyed("substr", getrange, None);
    t.keyed("strlen", strlen, None);
    t.keyed("incr", incr, None);
    t.keyed("decr", decr, None);
    t.keyed("incrby", incrby, None);
    t.keyed("decrby", decrby, None);
    t.keyed("incrbyfloat", incrbyfloat, None);
    t.keyed("lcs", lcs, Some(lcs_cross));
}

fn get(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    match ctx.shard.lookup_read(ctx.db, &args[1], ctx.now) {
        None => ctx.r.null(),
        Some(e) => match string_bytes(e) {
            Some(b) => ctx.r.bulk(&b),
            None => ctx.r.error(WRONGTYPE),
        },
    }
}

/// Converts an EX/PX/EXAT/PXAT argument to absolute ms as Redis's
/// `getExpireMillisecondsOrReply` does, with its error texts.
pub fn expire_arg_to_ms(
    arg: &[u8],
    seconds: bool,
    relative: bool,
    now: u64,
    cmd: &str,
) -> Result<u64, String> {
    let v = parse_i64(arg).ok_or_else(|| NOT_INT.to_string())?;
    let bad = || format!("ERR invalid expire time in '{cmd}' command");
    if v <= 0 || (seconds && v > i64::MAX / 1000) {
        return Err(bad());
    }
    let mut ms = if seconds { v * 1000 } else { v };
    if relative {
        ms = ms.checked_add(now as i64).ok_or_else(bad)?;
    }
    if ms <= 0 {
        return Err(bad());
    }
    Ok(ms as u64)
}

// ---- SET and its variants ------------------------------------------------------------

/// Flags of Redis's `parseExtendedStringArgumentsOrReply` (SET and GETEX options).
mod ext {
    pub const NX: u32 = 1;
    pub const XX: u32 = 1 << 1;
    pub const GET: u32 = 1 << 2;
    pub const KEEPTTL: u32 = 1 << 3;
    pub const PERSIST: u32 = 1 << 4;
    pub const EX: u32 = 1 << 5;
    pub const PX: u32 = 1 << 6;
    pub const EXAT: u32 = 1 << 7;
    pub const PXAT: u32 = 1 << 8;
    pub const ANY_EXPIRE: u32 = EX | PX | EXAT | PXAT;
}

/// Parsed SET / GETEX options: flags and the expire argument (the last one given).
struct ExtArgs<'a> {
    flags: u32,
    expire: Option<&'a [u8]>,
}

impl ExtArgs<'_> {
    /// (seconds, relative) of the expire option, as `expire_arg_to_ms` wants them.
    fn unit(&self) -> (bool, bool) {
        let f = self.flags;
        (f & (ext::EX | ext::EXAT) != 0, f & (ext::EX | ext::PX) != 0)
    }
}

/// Redis's `parseExtendedStringArgumentsOrReply`: the options after the value (SET) or the
/// key (GETEX). Each option is refused only when it conflicts with an earlier different one
/// (`EX 10 EX 20` is accepted, the last wins). Err means "ERR syntax error".
fn parse_ext_args(args: &[Bytes], is_set: bool) -> Result<ExtArgs<'_>, ()> {
    use ext::*;
    let mut flags = 0u32;
    let mut expire = None;
    let mut j = if is_set { 3 } else { 2 };
    while j < args.len() {
        let opt = &args[j][..];
        let next = args.get(j + 1).map(|b| &b[..]);
        let exp_opt = |name: &str, own: u32| -> bool {
            eq_ic(opt, name)
                && flags & (KEEPTTL | PERSIST | (ANY_EXPIRE & !own)) == 0
                && next.is_some()
        };
        if is_set && eq_ic(opt, "nx") && flags & XX == 0 {
            flags |= NX;
        } else if is_set && eq_ic(opt, "xx") && flags & NX == 0 {
            flags |= XX;
        } else if is_set && eq_ic(opt, "get") {
            flags |= GET;
        } else if is_set && eq_ic(opt, "keepttl") && flags & (PERSIST | ANY_EXPIRE) == 0 {
            flags |= KEEPTTL;
        } else if !is_set && eq_ic(opt, "persist") && flags & (ANY_EXPIRE | KEEPTTL) == 0 {
            flags |= PERSIST;
        } else if let Some(f) = [("ex", EX), ("px", PX), ("exat", EXAT), ("pxat", PXAT)]
            .iter()
            .find(|(n, f)| exp_opt(n, *f))
            .map(|(_, f)| *f)
        {
            flags |= f;
            expire = next;
            j += 1;
        } else {
            return Err(());
        }
        j += 1;
    }
    Ok(ExtArgs { flags, expire })
}

/// What SET-like commands reply when they set / when NX or XX stops them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SetReplies {
    /// SET: +OK / null.
    OkNull,
    /// SETNX: :1 / :0.
    OneZero,
}

/// Redis's `setGenericCommand`, shared by SET, SETNX, SETEX and PSETEX.
fn set_generic(
    ctx: &mut ShardCtx<'_>,
    key: &[u8],
    val: &[u8],
    opts: &ExtArgs<'_>,
    cmd: &str,
    replies: SetReplies,
) {
    let flags = opts.flags;
    let mut ttl = None;
    if let Some(a) = opts.expire {
        let (seconds, relative) = opts.unit();
        match expire_arg_to_ms(a, seconds, relative, ctx.now, cmd) {
            Ok(ms) => ttl = Some(ms),
            Err(e) => {
                ctx.r.error(&e);
                return;
            }
        }
    }
    if flags & ext::GET != 0 {
        match ctx.shard.lookup_read(ctx.db, key, ctx.now) {
            None => ctx.r.null(),
            Some(e) => match string_bytes(e) {
                Some(b) => ctx.r.bulk(&b),
                None => {
                    ctx.r.error(WRONGTYPE);
                    return;
                }
            },
        }
    }
    // Only the conditions and KEEPTTL need the old entry; a plain SET replaces it in one probe
    // (`store` still counts an expired one, as Redis's lookupKeyWrite does).
    let (found, old_ttl) = if flags & (ext::NX | ext::XX | ext::KEEPTTL) != 0 {
        let old = ctx.shard.lookup(ctx.db, key, ctx.now);
        (old.is_some(), old.and_then(|e| e.ttl()))
    } else {
        (false, None)
    };
    if (flags & ext::NX != 0 && found) || (flags & ext::XX != 0 && !found) {
        if flags & ext::GET == 0 {
            match replies {
                SetReplies::OkNull => ctx.r.null(),
                SetReplies::OneZero => ctx.r.int(0),
            }
        }
        return;
    }
    if ttl.is_none() && flags & ext::KEEPTTL != 0 {
        ttl = old_ttl;
    }
    ctx.shard
        .store(ctx.db, Entry::new(key, new_string_value(val), ttl), ctx.now);
    ctx.shard.notify(STRING, "set", key, ctx.db);
    if opts.expire.is_some() {
        ctx.shard.notify(GENERIC, "expire", key, ctx.db);
    }
    if flags & ext::GET == 0 {
        match replies {
            SetReplies::OkNull => ctx.r.ok(),
            SetReplies::OneZero => ctx.r.int(1),
        }
    }
}

fn set(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    match parse_ext_args(args, true) {
        Ok(opts) => set_generic(ctx, &args[1], &args[2], &opts, "set", SetReplies::OkNull),
        Err(()) => ctx.r.error(SYNTAX),
    }
}

fn setnx(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let opts = ExtArgs {
        flags: ext::NX,
        expire: None,
    };
    set_generic(ctx, &args[1], &args[2], &opts, "setnx", SetReplies::OneZero);
}

fn setex(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let opts = ExtArgs {
        flags: ext::EX,
        expire: Some(&args[2]),
    };
    set_generic(ctx, &args[1], &args[3], &opts, "setex", SetReplies::OkNull);
}

fn psetex(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let opts = ExtArgs {
        flags: ext::PX,
        expire: Some(&args[2]),
    };
    set_generic(ctx, &args[1], &args[3], &opts, "psetex", SetReplies::OkNull);
}

// ---- GET variants ----------------------------------------------------------------------

fn getset(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    match ctx.shard.lookup_read(ctx.db, &args[1], ctx.now) {
        None => ctx.r.null(),
        Some(e) => match string_bytes(e) {
            Some(b) => ctx.r.bulk(&b),
            None => {
                ctx.r.error(WRONGTYPE);
                return;
            }
        },
    }
    ctx.shard.store(
        ctx.db,
        Entry::new(&args[1], new_string_value(&args[2]), None),
        ctx.now,
    );
    ctx.shard.notify(STRING, "set", &args[1], ctx.db);
}

fn getdel(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    match ctx.shard.lookup_read(ctx.db, &args[1], ctx.now) {
        None => {
            ctx.r.null();
            return;
        }
        Some(e) => match string_bytes(e) {
            Some(b) => ctx.r.bulk(&b),
            None => {
                ctx.r.error(WRONGTYPE);
                return;
            }
        },
    }
    ctx.shard.remove(ctx.db, &args[1], ctx.now);
    ctx.shard.notify(GENERIC, "del", &args[1], ctx.db);
}

fn getex(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let opts = match parse_ext_args(args, false) {
        Ok(o) => o,
        Err(()) => {
            ctx.r.error(SYNTAX);
            return;
        }
    };
    let key = &args[1];
    let now = ctx.now;
    {
        let Some(e) = ctx.shard.lookup_read(ctx.db, key, now) else {
            ctx.r.null();
            return;
        };
        let Some(b) = string_bytes(e) else {
            ctx.r.error(WRONGTYPE);
            return;
        };
        // Validate the expire time before replying (Redis's order).
        let mut ttl = None;
        if let Some(a) = opts.expire {
            let (seconds, relative) = opts.unit();
            match expire_arg_to_ms(a, seconds, relative, now, "getex") {
                Ok(ms) => ttl = Some(ms),
                Err(msg) => {
                    ctx.r.error(&msg);
                    return;
                }
            }
        }
        ctx.r.bulk(&b);
        let absolute = opts.flags & (ext::EXAT | ext::PXAT) != 0;
        match ttl {
            Some(ms) if absolute && ms <= now => {
                ctx.shard.remove(ctx.db, key, now);
                ctx.shard.notify(GENERIC, "del", key, ctx.db);
            }
            Some(ms) => {
                if let Some(mut e) = ctx.shard.lookup_write(ctx.db, key, now) {
                    e.set_ttl(Some(ms));
                }
                ctx.shard.notify(GENERIC, "expire", key, ctx.db);
            }
            None if opts.flags & ext::PERSIST != 0 => {
                // Only a key with a TTL changes (and is invalidated, and notified).
                let had_ttl = ctx
                    .shard
                    .lookup(ctx.db, key, now)
                    .is_some_and(|e| e.ttl().is_some());
                if had_ttl {
                    if let Some(mut e) = ctx.shard.lookup_write(ctx.db, key, now) {
                        e.set_ttl(None);
                    }
                    ctx.shard.notify(GENERIC, "persist", key, ctx.db);
                }
            }
            None => {}
        }
    }
}

/// One MGET element: the string or a null.
fn mget_value(ctx: &mut ShardCtx<'_>, key: &[u8]) -> Option<Vec<u8>> {
    ctx.shard
        .lookup_read(ctx.db, key, ctx.now)
        .and_then(|e| string_bytes(e).map(|b| b.into_owned()))
}

fn mget(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    ctx.r.array(args.len() - 1);
    for k in &args[1..] {
        match ctx
            .shard
            .lookup_read(ctx.db, k, ctx.now)
            .and_then(string_bytes)
        {
            Some(b) => {
                let b = b.into_owned();
                ctx.r.bulk(&b)
            }
            None => ctx.r.null(),
        }
    }
}

fn mget_cross(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        let positions: Vec<usize> = (1..args.len()).collect();
        let groups = group_by_shard(c, &args, &positions);
        let db = c.db;
        let parts = single_hop(c, &args, &groups, false, true, |_, pos| {
            let keys: Vec<Bytes> = pos.iter().map(|&p| args[p].clone()).collect();
            Box::new(move |s| {
                let now = crate::shard::now_ms();
                let mut rb = damselfly_resp::ReplyBuilder::default();
                let mut ctx = ShardCtx {
                    shard: s,
                    db,
                    r: &mut rb,
                    now,
                    no_touch: false,
                };
                keys.iter()
                    .map(|k| mget_value(&mut ctx, k))
                    .collect::<Vec<_>>()
            })
        })
        .await;
        let mut vals: Vec<Option<Vec<u8>>> = vec![None; args.len()];
        for ((_, pos), v) in groups.iter().zip(parts) {
            for (p, val) in pos.iter().zip(v.unwrap_or_default()) {
                vals[*p] = val;
            }
        }
        c.out.array(args.len() - 1);
        for v in &vals[1..] {
            match v {
                Some(b) => c.out.bulk(b),
                None => c.out.null(),
            }
        }
    })
}

fn mset_check(args: &[Bytes]) -> bool {
    args.len() % 2 == 1
}

fn mset(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    if !mset_check(args) {
        ctx.r.error(&crate::command::arity_error("mset"));
        return;
    }
    for kv in args[1..].chunks(2) {
        ctx.shard.store(
            ctx.db,
            Entry::new(&kv[0], new_string_value(&kv[1]), None),
            ctx.now,
        );
        ctx.shard.notify(STRING, "set", &kv[0], ctx.db);
    }
    ctx.r.ok();
}

fn mset_cross(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        if !mset_check(&args) {
            c.out.error(&crate::command::arity_error("mset"));
            return;
        }
        let positions: Vec<usize> = (1..args.len()).step_by(2).collect();
        let groups = group_by_shard(c, &args, &positions);
        let db = c.db;
        single_hop(c, &args, &groups, true, false, |_, pos| {
            let kvs: Vec<(Bytes, Bytes)> = pos
                .iter()
                .map(|&p| (args[p].clone(), args[p + 1].clone()))
                .collect();
            Box::new(move |s| {
                let now = crate::shard::now_ms();
                for (k, v) in kvs {
                    s.store(db, Entry::new(&k, new_string_value(&v), None), now);
                    s.notify(STRING, "set", &k, db);
                }
            })
        })
        .await;
        c.out.ok();
    })
}

// ---- MSETNX ----------------------------------------------------------------------------

fn msetnx(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    if !mset_check(args) {
        ctx.r.error(&crate::command::arity_error("msetnx"));
        return;
    }
    for kv in args[1..].chunks(2) {
        if ctx.shard.lookup(ctx.db, &kv[0], ctx.now).is_some() {
            ctx.r.int(0);
            return;
        }
    }
    for kv in args[1..].chunks(2) {
        ctx.shard.store(
            ctx.db,
            Entry::new(&kv[0], new_string_value(&kv[1]), None),
            ctx.now,
        );
        ctx.shard.notify(STRING, "set", &kv[0], ctx.db);
    }
    ctx.r.int(1);
}

/// MSETNX across shards: one Tx; first every shard checks its keys, then (only if none
/// exists) every shard sets its pairs. Nothing else runs on those shards in between.
fn msetnx_cross(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        if !mset_check(&args) {
            c.out.error(&crate::command::arity_error("msetnx"));
            return;
        }
        let positions: Vec<usize> = (1..args.len()).step_by(2).collect();
        let groups = group_by_shard(c, &args, &positions);
        let tx = Tx::begin_keys(c, &args, &groups, true).await;
        let db = c.db;
        let mut rxs = Vec::new();
        for (sid, pos) in &groups {
            let keys: Vec<Bytes> = pos.iter().map(|&p| args[p].clone()).collect();
            rxs.push(tx.send(*sid, move |s| {
                let now = crate::shard::now_ms();
                keys.iter().any(|k| s.lookup(db, k, now).is_some())
            }));
        }
        let mut busy = false;
        for rx in rxs {
            busy |= rx.await.unwrap_or(false);
        }
        if busy {
            tx.end();
            c.out.int(0);
            return;
        }
        let mut rxs = Vec::new();
        for (sid, pos) in &groups {
            let kvs: Vec<(Bytes, Bytes)> = pos
                .iter()
                .map(|&p| (args[p].clone(), args[p + 1].clone()))
                .collect();
            rxs.push(tx.send(*sid, move |s| {
                let now = crate::shard::now_ms();
                for (k, v) in kvs {
                    s.store(db, Entry::new(&k, new_string_value(&v), None), now);
                    s.notify(STRING, "set", &k, db);
                }
            }));
        }
        for rx in rxs {
            let _ = rx.await;
        }
        tx.end();
        c.out.int(1);
    })
}

// ---- in-place string changes: APPEND SETRANGE --------------------------------------------

/// The smallest proto-max-bulk-len CONFIG SET accepts (1mb): sizes up to this never need the
/// config to be read.
const MIN_MAX_BULK: i64 = 1024 * 1024;

/// The current proto-max-bulk-len (the largest string a client may create).
pub(crate) fn max_bulk_len(shard: &Shard) -> i64 {
    shard
        .globals
        .config()
        .get_bytes("proto_max_bulk_len")
        .min(i64::MAX as u64) as i64
}

/// Redis's `checkStringLength`: may a string grow to `size + append` bytes? (Overflow counts
/// as too big.) Replies the error when not.
pub(crate) fn check_string_length(
    shard: &Shard,
    r: &mut ReplyBuilder,
    size: i64,
    append: i64,
) -> bool {
    let total = (size as u64).wrapping_add(append as u64) as i64;
    if (0..=MIN_MAX_BULK).contains(&total) && total >= size && total >= append {
        return true;
    }
    if total > max_bulk_len(shard) || total < size || total < append {
        r.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        return false;
    }
    true
}

/// Length of a string value (integers: their decimal length), None for other types.
pub(crate) fn string_len(e: &Entry) -> Option<usize> {
    #[allow(unreachable_patterns)]
    match e.value() {
        ValueRef::Str(s) => Some(s.len()),
        ValueRef::Int(i) => Some(int_len(i)),
        ValueRef::Obj(Object::Str(v)) => Some(v.len()),
        _ => None,
    }
}

/// Number of characters of `i` in decimal.
fn int_len(i: i64) -> usize {
    let mut n = i.unsigned_abs();
    let mut len = usize::from(i < 0) + 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

/// Turns a string entry's value into a growable `Object::Str` (Redis's
/// `dbUnshareStringValue`: OBJECT ENCODING then says "raw") and returns its bytes. The TTL is
/// kept. Call only on string entries.
pub(crate) fn growable_string(e: &mut Entry) -> &mut Vec<u8> {
    if !matches!(e.value(), ValueRef::Obj(Object::Str(_))) {
        let v = string_bytes(e).map(|b| b.into_owned()).unwrap_or_default();
        e.set_value(NewValue::Obj(Box::new(Object::Str(v))));
    }
    #[allow(unreachable_patterns)]
    match e.object_mut() {
        Some(Object::Str(v)) => v,
        _ => unreachable!("the value was just made a string object"),
    }
}

fn append(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let (key, val) = (&args[1], &args[2]);
    let mut big = None;
    let mut appended = None;
    if let Some(mut e) = ctx.shard.lookup_write(ctx.db, key, ctx.now) {
        let Some(len) = string_len(&e) else {
            ctx.r.error(WRONGTYPE);
            return;
        };
        if len as i64 + val.len() as i64 <= MIN_MAX_BULK {
            let v = growable_string(&mut e);
            v.extend_from_slice(val);
            appended = Some(v.len());
        } else {
            big = Some(len);
        }
    }
    if let Some(n) = appended {
        ctx.r.int(n as i64);
        ctx.shard.notify(STRING, "append", key, ctx.db);
        return;
    }
    let Some(len) = big else {
        // A new key: stored like SET would (integer encoding when it applies).
        ctx.shard.store(
            ctx.db,
            Entry::new(key, new_string_value(val), None),
            ctx.now,
        );
        ctx.r.int(val.len() as i64);
        ctx.shard.notify(STRING, "append", key, ctx.db);
        return;
    };
    if !check_string_length(ctx.shard, ctx.r, len as i64, val.len() as i64) {
        return;
    }
    if let Some(mut e) = ctx.shard.lookup_write(ctx.db, key, ctx.now) {
        let v = growable_string(&mut e);
        v.extend_from_slice(val);
        ctx.r.int(v.len() as i64);
    }
    ctx.shard.notify(STRING, "append", key, ctx.db);
}

fn setrange(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let Some(offset) = parse_i64(&args[2]) else {
        ctx.r.error(NOT_INT);
        return;
    };
    if offset < 0 {
        ctx.r.error("ERR offset is out of range");
        return;
    }
    let (key, val) = (&args[1], &args[3]);
    let olen = match ctx.shard.lookup(ctx.db, key, ctx.now) {
        None => None,
        Some(e) => match string_len(e) {
            Some(l) => Some(l),
            None => {
                ctx.r.error(WRONGTYPE);
                return;
            }
        },
    };
    if val.is_empty() {
        // Setting nothing: the current length (0 for a missing key, which is not created).
        ctx.r.int(olen.unwrap_or(0) as i64);
        return;
    }
    if !check_string_length(ctx.shard, ctx.r, offset, val.len() as i64) {
        return;
    }
    let offset = offset as usize;
    let end = offset + val.len();
    let mut written = None;
    if let Some(mut e) = ctx.shard.lookup_write(ctx.db, key, ctx.now) {
        let v = growable_string(&mut e);
        if v.len() < end {
            v.resize(end, 0);
        }
        v[offset..end].copy_from_slice(val);
        written = Some(v.len());
    }
    if let Some(n) = written {
        ctx.r.int(n as i64);
        ctx.shard.notify(STRING, "setrange", key, ctx.db);
        return;
    }
    let mut v = vec![0u8; end];
    v[offset..].copy_from_slice(val);
    ctx.shard.store(
        ctx.db,
        Entry::new(key, NewValue::Obj(Box::new(Object::Str(v))), None),
        ctx.now,
    );
    ctx.r.int(end as i64);
    ctx.shard.notify(STRING, "setrange", key, ctx.db);
}

// ---- reads: GETRANGE SUBSTR STRLEN -------------------------------------------------------

fn getrange(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let Some(mut start) = parse_i64(&args[2]) else {
        ctx.r.error(NOT_INT);
        return;
    };
    let Some(mut end) = parse_i64(&args[3]) else {
        ctx.r.error(NOT_INT);
        return;
    };
    let Some(e) = ctx.shard.lookup_read(ctx.db, &args[1], ctx.now) else {
        ctx.r.bulk(b"");
        return;
    };
    let Some(s) = string_bytes(e) else {
        ctx.r.error(WRONGTYPE);
        return;
    };
    let strlen = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        ctx.r.bulk(b"");
        return;
    }
    if start < 0 {
        start += strlen;
    }
    if end < 0 {
        end += strlen;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= strlen {
        end = strlen - 1;
    }
    if start > end || strlen == 0 {
        ctx.r.bulk(b"");
    } else {
        ctx.r.bulk(&s[start as usize..=end as usize]);
    }
}

fn strlen(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    match ctx.shard.lookup_read(ctx.db, &args[1], ctx.now) {
        None => ctx.r.int(0),
        Some(e) => match string_len(e) {
            Some(l) => ctx.r.int(l as i64),
            None => ctx.r.error(WRONGTYPE),
        },
    }
}

// ---- counters: INCR DECR INCRBY DECRBY INCRBYFLOAT --------------------------------------

/// Redis's `incrDecrCommand`: adds `incr` to the integer value of `key` (0 if missing),
/// keeping its TTL; the result is integer-encoded.
fn incr_decr(ctx: &mut ShardCtx<'_>, key: &[u8], incr: i64) {
    let mut done = false;
    if let Some(mut e) = ctx.shard.lookup_write(ctx.db, key, ctx.now) {
        {
            #[allow(unreachable_patterns)]
            let cur = match e.value() {
                ValueRef::Int(i) => Some(i),
                ValueRef::Str(s) => parse_i64(s),
                ValueRef::Obj(Object::Str(v)) => parse_i64(v),
                _ => {
                    ctx.r.error(WRONGTYPE);
                    return;
                }
            };
            let Some(cur) = cur else {
                ctx.r.error(NOT_INT);
                return;
            };
            let Some(v) = cur.checked_add(incr) else {
                ctx.r.error(OVERFLOW);
                return;
            };
            e.set_value(NewValue::Int(v));
            ctx.r.int(v);
        }
        done = true;
    }
    if done {
        ctx.shard.notify(STRING, "incrby", key, ctx.db);
        return;
    }
    ctx.shard
        .store(ctx.db, Entry::new(key, NewValue::Int(incr), None), ctx.now);
    ctx.r.int(incr);
    ctx.shard.notify(STRING, "incrby", key, ctx.db);
}

fn incr(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    incr_decr(ctx, &args[1], 1);
}

fn decr(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    incr_decr(ctx, &args[1], -1);
}

fn incrby(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    match parse_i64(&args[2]) {
        Some(by) => incr_decr(ctx, &args[1], by),
        None => ctx.r.error(NOT_INT),
    }
}

fn decrby(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    match parse_i64(&args[2]) {
        Some(i64::MIN) => ctx.r.error("ERR decrement would overflow"),
        Some(by) => incr_decr(ctx, &args[1], -by),
        None => ctx.r.error(NOT_INT),
    }
}

/// Redis's MAX_LONG_DOUBLE_CHARS: the formatting buffer of INCRBYFLOAT.
const LONG_DOUBLE_BUF: usize = 5 * 1024;

extern "C" {
    fn damselfly_incrbyfloat(
        value: *const u8,
        value_len: usize,
        has_value: std::os::raw::c_int,
        incr: *const u8,
        incr_len: usize,
        out: *mut u8,
        out_cap: usize,
        outlen: *mut usize,
    ) -> std::os::raw::c_int;
}

/// INCRBYFLOAT's arithmetic, done in C `long double` like Redis (see longdouble.c):
/// `value` (None: missing key, i.e. 0) plus `incr`, formatted as Redis stores it.
pub(crate) fn incr_by_float(value: Option<&[u8]>, incr: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = vec![0u8; LONG_DOUBLE_BUF];
    let mut len = 0usize;
    let (vp, vl) = value.map_or((std::ptr::null(), 0), |v| (v.as_ptr(), v.len()));
    // SAFETY: the pointers and lengths describe live slices; the shim reads at most `len`
    // bytes of each input, writes at most `out.len()` bytes into `out` and sets `len` to the
    // formatted length (< out.len()).
    let rc = unsafe {
        damselfly_incrbyfloat(
            vp,
            vl,
            value.is_some() as std::os::raw::c_int,
            incr.as_ptr(),
            incr.len(),
            out.as_mut_ptr(),
            out.len(),
            &mut len,
        )
    };
    match rc {
        0 => {
            out.truncate(len.min(LONG_DOUBLE_BUF));
            Ok(out)
        }
        2 => Err("ERR increment would produce NaN or Infinity"),
        _ => Err(NOT_FLOAT),
    }
}

fn incrbyfloat(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let (key, by) = (&args[1], &args[2]);
    let mut done = None;
    if let Some(mut e) = ctx.shard.lookup_write(ctx.db, key, ctx.now) {
        {
            let res = match string_bytes(&e) {
                Some(cur) => incr_by_float(Some(&cur), by),
                None => Err(WRONGTYPE),
            };
            match res {
                Ok(v) => {
                    // Stored as the formatted string (never integer-encoded), TTL kept.
                    e.set_value(NewValue::Str(&v));
                    ctx.r.bulk(&v);
                    done = Some(true);
                }
                Err(msg) => {
                    ctx.r.error(msg);
                    done = Some(false);
                }
            }
        }
    }
    if let Some(changed) = done {
        if changed {
            ctx.shard.notify(STRING, "incrbyfloat", key, ctx.db);
        }
        return;
    }
    match incr_by_float(None, by) {
        Ok(v) => {
            ctx.shard
                .store(ctx.db, Entry::new(key, NewValue::Str(&v), None), ctx.now);
            ctx.r.bulk(&v);
            ctx.shard.notify(STRING, "incrbyfloat", key, ctx.db);
        }
        Err(msg) => ctx.r.error(msg),
    }
}

// ---- LCS -------------------------------------------------------------------------------

/// An LCS operand as read from its shard: a string (missing keys are ""), or a wrong type.
type LcsInput = Result<Vec<u8>, ()>;

fn lcs_fetch(s: &mut Shard, db: usize, key: &[u8], now: u64) -> LcsInput {
    match s.lookup_read(db, key, now) {
        None => Ok(Vec::new()),
        Some(e) => string_bytes(e).map(|b| b.into_owned()).ok_or(()),
    }
}

fn lcs(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let a = lcs_fetch(ctx.shard, ctx.db, &args[1], ctx.now);
    let b = lcs_fetch(ctx.shard, ctx.db, &args[2], ctx.now);
    let max = max_bulk_len(ctx.shard);
    lcs_reply(ctx.r, a, b, args, max);
}

/// LCS with its two keys on different shards: both are read under one Tx, then the answer
/// is computed here.
fn lcs_cross(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        let sa = c.shard_of(&args[1]);
        let sb = c.shard_of(&args[2]);
        let groups = crate::coord::group_by_shard(c, &args, &[1, 2]);
        let tx = Tx::begin_keys(c, &args, &groups, false).await;
        let db = c.db;
        let (ka, kb) = (args[1].clone(), args[2].clone());
        // A tracked read remembers each key where it is read (`tracking.rs`).
        let track = c.track_cross.then_some(c.id);
        let fetch = move |s: &mut crate::shard::Shard, k: &Bytes| {
            let r = lcs_fetch(s, db, k, crate::shard::now_ms());
            if let Some(id) = track {
                s.tracking.remember(k, id);
            }
            r
        };
        let ra = tx.send(sa, move |s| fetch(s, &ka));
        let rb = tx.send(sb, move |s| fetch(s, &kb));
        let a = ra.await.unwrap_or(Ok(Vec::new()));
        let b = rb.await.unwrap_or(Ok(Vec::new()));
        tx.end();
        let max = c
            .globals
            .config()
            .get_bytes("proto_max_bulk_len")
            .min(i64::MAX as u64) as i64;
        lcs_reply(&mut c.out, a, b, &args, max);
    })
}

/// Redis's `lcsCommand` after the key lookups: option parsing, the dynamic-programming table
/// and the reply (string, LEN, or IDX with ranges).
fn lcs_reply(r: &mut ReplyBuilder, a: LcsInput, b: LcsInput, args: &[Bytes], max_bulk: i64) {
    let (Ok(a), Ok(b)) = (a, b) else {
        r.error("ERR The specified keys must contain string values");
        return;
    };
    let (mut getlen, mut getidx, mut withmatchlen) = (false, false, false);
    let mut minmatchlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j];
        let moreargs = args.len() - 1 - j;
        if eq_ic(opt, "idx") {
            getidx = true;
        } else if eq_ic(opt, "len") {
            getlen = true;
        } else if eq_ic(opt, "withmatchlen") {
            withmatchlen = true;
        } else if eq_ic(opt, "minmatchlen") && moreargs > 0 {
            let Some(v) = parse_i64(&args[j + 1]) else {
                r.error(NOT_INT);
                return;
            };
            minmatchlen = v.max(0);
            j += 1;
        } else {
            r.error(SYNTAX);
            return;
        }
        j += 1;
    }
    if getidx && getlen {
        r.error("ERR If you want both the length and indexes, please just use IDX.");
        return;
    }
    if a.len() >= u32::MAX as usize - 1 || b.len() >= u32::MAX as usize - 1 {
        r.error("ERR String too long for LCS");
        return;
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    let bytes = cells.checked_mul(4);
    match bytes {
        Some(n) if n <= max_bulk as u64 && n <= isize::MAX as u64 => {}
        Some(_) => {
            r.error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
            return;
        }
        None => {
            r.error("ERR Insufficient memory, failed allocating transient memory for LCS");
            return;
        }
    }
    let mut table: Vec<u32> = Vec::new();
    if table.try_reserve_exact(cells as usize).is_err() {
        r.error("ERR Insufficient memory, failed allocating transient memory for LCS");
        return;
    }
    table.resize(cells as usize, 0);
    let w = blen + 1;
    for i in 1..=alen {
        for jj in 1..=blen {
            table[i * w + jj] = if a[i - 1] == b[jj - 1] {
                table[(i - 1) * w + jj - 1] + 1
            } else {
                table[(i - 1) * w + jj].max(table[i * w + jj - 1])
            };
        }
    }
    let total = table[alen * w + blen];
    let mut idx = total as usize;
    let computelcs = getidx || !getlen;
    let mut result = if computelcs {
        vec![0u8; idx]
    } else {
        Vec::new()
    };
    // Ranges as (a_start, a_end, b_start, b_end, len), emitted from the end of the strings.
    let mut ranges: Vec<[u32; 5]> = Vec::new();
    let (mut arange_start, mut arange_end, mut brange_start, mut brange_end) = (alen, 0, 0, 0);
    let (mut i, mut jj) = (alen, blen);
    while computelcs && i > 0 && jj > 0 {
        let mut emit_range = false;
        if a[i - 1] == b[jj - 1] {
            result[idx - 1] = a[i - 1];
            if arange_start == alen {
                arange_start = i - 1;
                arange_end = i - 1;
                brange_start = jj - 1;
                brange_end = jj - 1;
            } else if arange_start == i && brange_start == jj {
                arange_start -= 1;
                brange_start -= 1;
            } else {
                emit_range = true;
            }
            if arange_start == 0 || brange_start == 0 {
                emit_range = true;
            }
            idx -= 1;
            i -= 1;
            jj -= 1;
        } else {
            let lcs1 = table[(i - 1) * w + jj];
            let lcs2 = table[i * w + jj - 1];
            if lcs1 > lcs2 {
                i -= 1;
            } else {
                jj -= 1;
            }
            if arange_start != alen {
                emit_range = true;
            }
        }
        let match_len = arange_end.wrapping_sub(arange_start).wrapping_add(1) as u32;
        if emit_range {
            if minmatchlen == 0 || match_len as i64 >= minmatchlen {
                ranges.push([
                    arange_start as u32,
                    arange_end as u32,
                    brange_start as u32,
                    brange_end as u32,
                    match_len,
                ]);
            }
            arange_start = alen;
        }
    }
    if getidx {
        r.map(2);
        r.bulk(b"matches");
        r.array(ranges.len());
        for m in &ranges {
            r.array(2 + usize::from(withmatchlen));
            r.array(2);
            r.int(m[0] as i64);
            r.int(m[1] as i64);
            r.array(2);
            r.int(m[2] as i64);
            r.int(m[3] as i64);
            if withmatchlen {
                r.int(m[4] as i64);
            }
        }
        r.bulk(b"len");
        r.int(total as i64);
    } else if getlen {
        r.int(total as i64);
    } else {
        r.bulk(&result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fl(v: Option<&str>, by: &str) -> Result<String, &'static str> {
        incr_by_float(v.map(str::as_bytes), by.as_bytes()).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn incrbyfloat_digits_are_long_double() {
        // Expected values taken from redis-server 7.0.15 (f64 would give 10.59999999999999964).
        assert_eq!(fl(Some("10.5"), "0.1").unwrap(), "10.6");
        assert_eq!(fl(Some("0.1"), "0.2").unwrap(), "0.3");
        assert_eq!(fl(Some("1e20"), "1").unwrap(), "100000000000000000000");
        assert_eq!(fl(Some("-0"), "0").unwrap(), "0");
        assert_eq!(fl(Some("5"), "3.0e-5").unwrap(), "5.00003");
        assert_eq!(fl(Some("-1.5"), "-0.25").unwrap(), "-1.75");
        assert_eq!(fl(None, "0x10").unwrap(), "16");
        assert_eq!(fl(None, "1e-4950").unwrap(), "0");
        assert_eq!(
            fl(Some("1.23456789012345678"), "0").unwrap(),
            "1.23456789012345678"
        );
        assert_eq!(fl(Some("1.7976931348623157e308"), "0").unwrap().len(), 309);
        let mut v = "0.1".to_string();
        for _ in 0..10 {
            v = fl(Some(&v), "0.1").unwrap();
        }
        assert_eq!(v, "1.1");
    }

    #[test]
    fn incrbyfloat_errors() {
        for bad in ["", " 1", "1 ", "abc", "nan", "1e5000", "1e-5000", "1\x001"] {
            assert_eq!(fl(None, bad), Err(NOT_FLOAT), "{bad:?}");
            assert_eq!(fl(Some(bad), "1"), Err(NOT_FLOAT), "{bad:?}");
        }
        assert_eq!(fl(None, &"1".repeat(5120)), Err(NOT_FLOAT));
        assert_eq!(
            fl(None, "inf"),
            Err("ERR increment would produce NaN or Infinity")
        );
        assert_eq!(
            fl(Some("1e4932"), "1e4932"),
            Err("ERR increment would produce NaN or Infinity")
        );
    }

    #[test]
    fn ext_args_like_redis() {
        let a = |s: &str| -> Vec<Bytes> {
            s.split(' ')
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect()
        };
        let set =
            |s: &str| parse_ext_args(&a(s), true).map(|e| (e.flags, e.expire.map(<[u8]>::to_vec)));
        assert_eq!(
            set("SET k v EX 10 EX 20"),
            Ok((ext::EX, Some(b"20".to_vec())))
        );
        assert_eq!(
            set("SET k v NX NX GET get").map(|x| x.0),
            Ok(ext::NX | ext::GET)
        );
        assert!(set("SET k v NX XX").is_err());
        assert!(set("SET k v EX 10 PX 10").is_err());
        assert!(set("SET k v KEEPTTL EX 10").is_err());
        assert!(set("SET k v EX").is_err());
        assert!(set("SET k v PERSIST").is_err());
        let getex = |s: &str| parse_ext_args(&a(s), false).map(|e| e.flags);
        assert_eq!(getex("GETEX k PERSIST"), Ok(ext::PERSIST));
        assert!(getex("GETEX k PERSIST EX 1").is_err());
        assert!(getex("GETEX k KEEPTTL").is_err());
        assert!(getex("GETEX k NX").is_err());
        assert_eq!(getex("GETEX k pxat 5"), Ok(ext::PXAT));
    }

    #[test]
    fn int_lengths() {
        for v in [0, 7, -7, 10, -10, 99, 100, i64::MAX, i64::MIN, 1_000_000] {
            assert_eq!(int_len(v), v.to_string().len(), "{v}");
        }
    }
}
