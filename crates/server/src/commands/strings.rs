//! String commands (Redis's t_string.c): GET SET and friends.
//!
//! Invariant: string values are stored through `new_string_value` (integer encoding when
//! Redis would use it) and read through `string_bytes`; a non-string gets WRONGTYPE.

use super::{eq_ic, new_string_value, parse_i64, string_bytes, NOT_INT, SYNTAX, WRONGTYPE};
use crate::command::{LocalFut, ShardCtx, TableBuilder};
use crate::conn::Conn;
use crate::coord::{group_by_shard, Tx};
use bytes::Bytes;
use damselfly_core::Entry;

pub fn register(t: &mut TableBuilder) {
    t.keyed("get", get, None);
    t.keyed("set", set, None);
    t.keyed("mget", mget, Some(mget_cross));
    t.keyed("mset", mset, Some(mset_cross));
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

/// Parsed expiry option of SET/GETEX: an absolute time in ms, or KEEPTTL/PERSIST.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExpireOpt {
    None,
    At(u64),
    KeepTtl,
    Persist,
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

fn set(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let (mut nx, mut xx, mut get) = (false, false, false);
    let mut exp = ExpireOpt::None;
    let mut exp_arg: Option<(&Bytes, bool, bool)> = None;
    let mut j = 3;
    while j < args.len() {
        let a = &args[j];
        let has_next = j + 1 < args.len();
        if eq_ic(a, "nx") && !xx {
            nx = true;
        } else if eq_ic(a, "xx") && !nx {
            xx = true;
        } else if eq_ic(a, "get") {
            get = true;
        } else if eq_ic(a, "keepttl") && exp_arg.is_none() {
            exp = ExpireOpt::KeepTtl;
        } else if (eq_ic(a, "ex") || eq_ic(a, "px") || eq_ic(a, "exat") || eq_ic(a, "pxat"))
            && exp == ExpireOpt::None
            && exp_arg.is_none()
            && has_next
        {
            let seconds = eq_ic(a, "ex") || eq_ic(a, "exat");
            let relative = eq_ic(a, "ex") || eq_ic(a, "px");
            exp_arg = Some((&args[j + 1], seconds, relative));
            j += 1;
        } else {
            ctx.r.error(SYNTAX);
            return;
        }
        j += 1;
    }
    if let Some((a, seconds, relative)) = exp_arg {
        match expire_arg_to_ms(a, seconds, relative, ctx.now, "set") {
            Ok(ms) => exp = ExpireOpt::At(ms),
            Err(e) => {
                ctx.r.error(&e);
                return;
            }
        }
    }
    let key = &args[1];
    let (found, old_ttl) = {
        let old = ctx.shard.lookup(ctx.db, key, ctx.now);
        if get {
            match old {
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
        (old.is_some(), old.and_then(|e| e.ttl()))
    };
    if (nx && found) || (xx && !found) {
        if !get {
            ctx.r.null();
        }
        return;
    }
    let ttl = match exp {
        ExpireOpt::At(ms) => Some(ms),
        ExpireOpt::KeepTtl => old_ttl,
        _ => None,
    };
    ctx.shard.store(
        ctx.db,
        Entry::new(key, new_string_value(&args[2]), ttl),
        ctx.now,
    );
    if !get {
        ctx.r.ok();
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
        let tx = Tx::begin(c, groups.iter().map(|g| g.0)).await;
        let db = c.db;
        let mut rxs = Vec::new();
        for (sid, pos) in &groups {
            let keys: Vec<Bytes> = pos.iter().map(|&p| args[p].clone()).collect();
            rxs.push(tx.send(*sid, move |s| {
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
            }));
        }
        let mut vals: Vec<Option<Vec<u8>>> = vec![None; args.len()];
        for ((_, pos), rx) in groups.iter().zip(rxs) {
            if let Ok(v) = rx.await {
                for (p, val) in pos.iter().zip(v) {
                    vals[*p] = val;
                }
            }
        }
        tx.end();
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
        let tx = Tx::begin(c, groups.iter().map(|g| g.0)).await;
        let db = c.db;
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
                }
            }));
        }
        for rx in rxs {
            let _ = rx.await;
        }
        tx.end();
        c.out.ok();
    })
}
