//! Key commands (Redis's db.c / expire.c): DEL EXISTS and friends.

use crate::command::{LocalFut, ShardCtx, TableBuilder};
use crate::conn::Conn;
use crate::coord::{group_by_shard, Tx};
use crate::shard::Shard;
use bytes::Bytes;

pub fn register(t: &mut TableBuilder) {
    t.keyed("del", del, Some(del_cross));
    t.keyed("exists", exists, Some(exists_cross));
}

fn del_keys(s: &mut Shard, db: usize, keys: &[Bytes], now: u64) -> i64 {
    keys.iter()
        .filter(|k| s.remove(db, k, now).is_some())
        .count() as i64
}

fn exists_keys(s: &mut Shard, db: usize, keys: &[Bytes], now: u64) -> i64 {
    keys.iter()
        .filter(|k| s.lookup(db, k, now).is_some())
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

/// Runs a per-shard counting operation over all key arguments atomically and replies the sum
/// (DEL, UNLINK, EXISTS, TOUCH across shards).
pub async fn cross_count(
    c: &mut Conn,
    args: &[Bytes],
    op: fn(&mut Shard, usize, &[Bytes], u64) -> i64,
) {
    let positions: Vec<usize> = (1..args.len()).collect();
    let groups = group_by_shard(c, args, &positions);
    let tx = Tx::begin(c, groups.iter().map(|g| g.0)).await;
    let db = c.db;
    let mut rxs = Vec::new();
    for (sid, pos) in &groups {
        let keys: Vec<Bytes> = pos.iter().map(|&p| args[p].clone()).collect();
        rxs.push(tx.send(*sid, move |s| op(s, db, &keys, crate::shard::now_ms())));
    }
    let mut total = 0;
    for rx in rxs {
        total += rx.await.unwrap_or(0);
    }
    tx.end();
    c.out.int(total);
}

fn del_cross(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move { cross_count(c, &args, del_keys).await })
}

fn exists_cross(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move { cross_count(c, &args, exists_keys).await })
}
