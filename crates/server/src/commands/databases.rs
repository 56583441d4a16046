//! Database commands (Redis's db.c): DBSIZE FLUSHDB FLUSHALL SWAPDB, and the DB-index
//! parsing that MOVE and COPY share. SELECT is per connection (connection.rs).
//!
//! Every shard holds its slice of every database, so a database-wide command touches all
//! shards: DBSIZE sums a fan-out; FLUSHDB, FLUSHALL and SWAPDB run under one `Tx` over all
//! shards, so no command sees one shard flushed (or swapped) and another not.
//!
//! Invariant: database-wide mutations go through `Shard::flush_db` / `Shard::swap_dbs`.

use super::{eq_ic, parse_i64, DB_INDEX, NOT_INT, SYNTAX};
use crate::command::{LocalFut, TableBuilder};
use crate::conn::Conn;
use crate::coord::{run_on_all, Tx};
use crate::globals::Globals;
use bytes::Bytes;

pub fn register(t: &mut TableBuilder) {
    t.coord("dbsize", dbsize);
    t.coord("flushdb", flushdb);
    t.coord("flushall", flushall);
    t.coord("swapdb", swapdb);
}

/// Redis's `getIntFromObjectOrReply`: an integer that fits a C `int`, with Redis's error
/// texts (`msg` replaces both texts when given, as in SWAPDB).
pub fn parse_int_arg(arg: &[u8], msg: Option<&str>) -> Result<i64, String> {
    let v = parse_i64(arg).ok_or_else(|| msg.unwrap_or(NOT_INT).to_string())?;
    if v < i32::MIN as i64 || v > i32::MAX as i64 {
        return Err(msg
            .unwrap_or("ERR value is out of range, value must between -2147483648 and 2147483647")
            .to_string());
    }
    Ok(v)
}

/// A DB index argument of MOVE / COPY ... DB: an int, then in range (`selectDb`).
pub fn parse_db_arg(arg: &[u8], dbnum: usize) -> Result<usize, String> {
    let v = parse_int_arg(arg, None)?;
    if v < 0 || v as usize >= dbnum {
        return Err(DB_INDEX.to_string());
    }
    Ok(v as usize)
}

/// Whether the server runs as (emulated) Redis Cluster, where only DB 0 exists.
pub fn cluster_enabled(g: &Globals) -> bool {
    g.config().get_str("cluster_mode") == "emulated"
}

fn dbsize(c: &mut Conn, _args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        let db = c.db;
        let n: usize = run_on_all(c, move |s| s.db_len(db)).await.iter().sum();
        c.out.int(n as i64);
    })
}

/// FLUSHDB / FLUSHALL's optional SYNC|ASYNC (`getFlushCommandFlags`). ASYNC frees in place
/// too: a flush swaps in an empty table, which is what the client can observe.
fn flush_args_ok(args: &[Bytes]) -> bool {
    args.len() == 1 || (args.len() == 2 && (eq_ic(&args[1], "sync") || eq_ic(&args[1], "async")))
}

/// Flushes `dbs` (one database, or all when `None`) on every shard, atomically.
async fn flush(c: &mut Conn, db: Option<usize>) {
    let n = c.globals.nshards();
    let tx = Tx::begin(c, 0..n).await;
    tx.run_all(move |s| match db {
        Some(d) => s.flush_db(d),
        None => {
            for d in 0..s.dbs.len() {
                s.flush_db(d);
            }
        }
    })
    .await;
    tx.end();
}

fn flushdb(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        if !flush_args_ok(&args) {
            c.out.error(SYNTAX);
            return;
        }
        let db = c.db;
        flush(c, Some(db)).await;
        c.out.ok();
        // Every tracking client drops its cache (the shards' tables went with the keys).
        c.globals.tracking.flushed(&c.globals);
    })
}

fn flushall(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        if !flush_args_ok(&args) {
            c.out.error(SYNTAX);
            return;
        }
        flush(c, None).await;
        c.out.ok();
        c.globals.tracking.flushed(&c.globals);
    })
}

fn swapdb(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        if cluster_enabled(&c.globals) {
            c.out.error("ERR SWAPDB is not allowed in cluster mode");
            return;
        }
        let a = match parse_int_arg(&args[1], Some("ERR invalid first DB index")) {
            Ok(v) => v,
            Err(e) => return c.out.error(&e),
        };
        let b = match parse_int_arg(&args[2], Some("ERR invalid second DB index")) {
            Ok(v) => v,
            Err(e) => return c.out.error(&e),
        };
        let dbnum = c.dbnum as i64;
        if a < 0 || a >= dbnum || b < 0 || b >= dbnum {
            c.out.error(DB_INDEX);
            return;
        }
        if a != b {
            let n = c.globals.nshards();
            let tx = Tx::begin(c, 0..n).await;
            let (a, b) = (a as usize, b as usize);
            tx.run_all(move |s| s.swap_dbs(a, b)).await;
            tx.end();
        }
        c.out.ok();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_args_as_redis() {
        assert_eq!(parse_int_arg(b"5", None), Ok(5));
        assert_eq!(parse_int_arg(b"-2147483648", None), Ok(-2147483648));
        assert_eq!(parse_int_arg(b"x", None), Err(NOT_INT.to_string()));
        assert_eq!(parse_int_arg(b" 1", None), Err(NOT_INT.to_string()));
        assert!(parse_int_arg(b"2147483648", None)
            .unwrap_err()
            .starts_with("ERR value is out of range, value must between"));
        assert_eq!(
            parse_int_arg(b"2147483648", Some("ERR invalid first DB index")),
            Err("ERR invalid first DB index".to_string())
        );
        assert_eq!(parse_db_arg(b"15", 16), Ok(15));
        assert_eq!(parse_db_arg(b"16", 16), Err(DB_INDEX.to_string()));
        assert_eq!(parse_db_arg(b"-1", 16), Err(DB_INDEX.to_string()));
    }

    #[test]
    fn flush_args() {
        let a = |v: &[&str]| -> Vec<Bytes> {
            v.iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect()
        };
        assert!(flush_args_ok(&a(&["flushdb"])));
        assert!(flush_args_ok(&a(&["flushdb", "ASYNC"])));
        assert!(flush_args_ok(&a(&["flushdb", "sync"])));
        assert!(!flush_args_ok(&a(&["flushdb", "foo"])));
        assert!(!flush_args_ok(&a(&["flushdb", "sync", "async"])));
    }
}
