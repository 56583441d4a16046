//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! MULTI makes the connection queue what it is sent (`Conn::dispatch` answers `+QUEUED`, and a
//! command rejected while queueing, as Redis's `rejectCommand`, makes EXEC answer EXECABORT).
//! EXEC runs the queue atomically, in one of two ways:
//! - every queued command is a single-shard command of one shard, and every watched key is
//!   on that shard too (the common `WATCH k / GET k / MULTI / SET k / EXEC`): one callback on
//!   that shard runs them all, checking the watch first. A callback never awaits, so nothing
//!   interleaves: one hop, no locks (the single-shard path pays nothing, ARCHITECTURE.md §2);
//! - anything else: a transaction locks every shard exclusively (`coord::Tx`, shard order),
//!   checks the watch, and runs the commands one by one under it (`Conn::exec_queued`); the
//!   coordinator helpers see `Conn::exec_tx` and run multi-shard commands under the same
//!   transaction instead of locking again.
//!
//! WATCH registers each key on its shard (`watch.rs`); a change there marks the connection's
//! flag. EXEC reads the flag, and looks for watched keys that expired since WATCH, with the
//! shards held, so no change can slip between the check and the commands.
//!
//! Invariant: EXEC, DISCARD, RESET and disconnect end the WATCH session (`unwatch`), so no
//! shard keeps a registration for a connection that no longer watches.

use crate::command::{self, Handler, LocalFut, TableBuilder};
use crate::conn::{exec_on_shard, Conn, ExecFor};
use crate::shard::{now_ms, Shard, ShardMsg};
use crate::watch::WatchFlag;
use bytes::Bytes;
use damselfly_resp::ReplyBuilder;
use std::sync::Arc;

pub fn register(t: &mut TableBuilder) {
    t.conn("multi", multi);
    t.conn("discard", discard);
    t.conn("unwatch", unwatch_cmd);
    t.coord("watch", watch);
    t.coord("exec", exec);
}

/// A connection's MULTI state.
#[derive(Default)]
pub struct Multi {
    pub cmds: Vec<(&'static command::Command, Vec<Bytes>)>,
    /// A command was rejected while queueing (Redis's CLIENT_DIRTY_EXEC).
    pub dirty: bool,
    /// The union of the queued commands' flags (what CLIENT PAUSE looks at for EXEC).
    pub flags: u32,
    /// Bytes queued (arguments plus a little per argument), bounded by
    /// `client-query-buffer-limit`.
    pub bytes: usize,
}

/// A connection's WATCH session: its flag and the keys it registered, by db.
#[derive(Clone)]
pub struct Watching {
    pub flag: Arc<WatchFlag>,
    pub keys: Vec<(usize, Bytes)>,
}

pub const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

fn multi(c: &mut Conn, _args: &[Bytes]) {
    if c.multi.is_some() {
        c.out.error("ERR MULTI calls can not be nested");
        return;
    }
    c.multi = Some(Multi::default());
    c.out.ok();
}

fn discard(c: &mut Conn, _args: &[Bytes]) {
    if c.multi.take().is_none() {
        c.out.error("ERR DISCARD without MULTI");
        return;
    }
    unwatch(c);
    c.out.ok();
}

fn unwatch_cmd(c: &mut Conn, _args: &[Bytes]) {
    unwatch(c);
    c.out.ok();
}

/// Ends the connection's WATCH session: its registrations are removed from their shards (no
/// reply awaited; a late removal can only mark the old flag, which nobody reads).
pub fn unwatch(c: &mut Conn) {
    let Some(w) = c.watching.take() else {
        return;
    };
    let n = c.globals.nshards();
    let mut by_shard: Vec<Vec<(usize, Bytes)>> = vec![Vec::new(); n];
    for (db, key) in w.keys {
        by_shard[c.shard_of(&key)].push((db, key));
    }
    for (sid, keys) in by_shard.into_iter().enumerate() {
        if keys.is_empty() {
            continue;
        }
        let flag = w.flag.clone();
        let job = move |sh: &mut Shard| {
            for (db, key) in &keys {
                sh.watches.remove(*db, key, &flag);
            }
        };
        if sid == c.shard_id {
            job(&mut c.shard.borrow_mut());
        } else {
            // The registry is not key data: no need to wait for the shard's locks.
            let _ = c.globals.inboxes[sid].send(ShardMsg::TxRun(0, Box::new(job)));
        }
    }
}

fn watch(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        if c.multi.is_some() {
            c.out.error("ERR WATCH inside MULTI is not allowed");
            return;
        }
        let db = c.db;
        let w = c.watching.get_or_insert_with(|| Watching {
            flag: Arc::new(WatchFlag::default()),
            keys: Vec::new(),
        });
        // No point in watching more once a watched key changed.
        if w.flag.is_dirty() {
            c.out.ok();
            return;
        }
        let flag = w.flag.clone();
        let mut new: Vec<Bytes> = Vec::new();
        for key in &args[1..] {
            if !w.keys.iter().any(|(d, k)| *d == db && k == key) && !new.contains(key) {
                new.push(key.clone());
            }
        }
        w.keys.extend(new.iter().map(|k| (db, k.clone())));
        let n = c.globals.nshards();
        let mut by_shard: Vec<Vec<Bytes>> = vec![Vec::new(); n];
        for key in new {
            by_shard[c.shard_of(&key)].push(key);
        }
        // Registered before the reply: a change after it is seen.
        let mut waits = Vec::new();
        for (sid, keys) in by_shard.into_iter().enumerate() {
            if keys.is_empty() {
                continue;
            }
            let flag = flag.clone();
            waits.push(crate::coord::run_on(c, sid, move |sh: &mut Shard| {
                let now = now_ms();
                for key in &keys {
                    let expired = matches!(sh.dbs[db].get(key), Some(e) if e.is_expired(now));
                    sh.watches.add(db, key, &flag, expired);
                }
            }));
        }
        for w in waits {
            w.await;
        }
        c.out.ok();
    })
}

/// Whether the watch of `w` on this shard fails EXEC: the flag is set, or a key of
/// `keys` (this shard's) that was live when watched has expired since.
fn watch_failed(sh: &Shard, w: Option<&Watching>) -> bool {
    let Some(Watching { flag, keys }) = w else {
        return false;
    };
    if flag.is_dirty() {
        return true;
    }
    let now = now_ms();
    sh.watches.any_expired(
        flag,
        keys,
        |db, k| matches!(sh.dbs[db].get(k), Some(e) if e.is_expired(now)),
    )
}

fn exec(c: &mut Conn, _args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        let Some(m) = c.multi.take() else {
            c.out.error("ERR EXEC without MULTI");
            return;
        };
        let watching = c.watching.take();
        run_exec(c, m, &watching).await;
        c.watching = watching;
        unwatch(c);
    })
}

async fn run_exec(c: &mut Conn, m: Multi, watching: &Option<Watching>) {
    if m.dirty {
        c.out.error(EXECABORT);
        return;
    }
    if watching.as_ref().is_some_and(|w| w.flag.is_dirty()) {
        c.out.null_array();
        return;
    }
    let nshards = c.globals.nshards();
    if let Some(sid) = single_shard(c, &m, watching) {
        return exec_on_one_shard(c, sid, m, watching).await;
    }
    let tx = crate::coord::Tx::begin(c, 0..nshards).await;
    // The watch, checked with every shard held.
    let mut failed = watching.as_ref().is_some_and(|w| w.flag.is_dirty());
    if let (false, Some(w)) = (failed, watching) {
        let mut by_shard: Vec<Vec<(usize, Bytes)>> = vec![Vec::new(); nshards];
        for (db, key) in &w.keys {
            by_shard[c.shard_of(key)].push((*db, key.clone()));
        }
        for (sid, keys) in by_shard.into_iter().enumerate() {
            if keys.is_empty() {
                continue;
            }
            let check = Watching {
                flag: w.flag.clone(),
                keys,
            };
            if tx.run(sid, move |sh| watch_failed(sh, Some(&check))).await == Some(true) {
                failed = true;
                break;
            }
        }
    }
    if failed {
        tx.end();
        c.out.null_array();
        return;
    }
    c.exec_tx = Some(tx.id());
    c.exec_len = Some(m.cmds.len());
    c.out.array(m.cmds.len());
    for (cmd, args) in m.cmds {
        c.exec_queued(&tx, cmd, args).await;
    }
    c.exec_tx = None;
    c.exec_len = None;
    tx.end();
}

/// The one shard every queued command and watched key belongs to, if there is one and every
/// queued command is a single-shard command.
fn single_shard(c: &Conn, m: &Multi, watching: &Option<Watching>) -> Option<usize> {
    let nshards = c.globals.nshards();
    let mut only: Option<usize> = None;
    let mut agree = |sid: usize| match only {
        Some(s) => s == sid,
        None => {
            only = Some(sid);
            true
        }
    };
    for (cmd, args) in &m.cmds {
        let Handler::Keyed { .. } = cmd.handler else {
            return None;
        };
        match cmd.key_shard(args, nshards) {
            Ok(sid) if agree(sid.unwrap_or(c.shard_id)) => {}
            _ => return None,
        }
    }
    if let Some(w) = watching {
        for (_, key) in &w.keys {
            if !agree(c.shard_of(key)) {
                return None;
            }
        }
    }
    Some(only.unwrap_or(c.shard_id))
}

/// EXEC of single-shard commands of shard `sid`: one callback runs the watch check and every
/// command, so nothing can interleave.
async fn exec_on_one_shard(c: &mut Conn, sid: usize, m: Multi, watching: &Option<Watching>) {
    let check = watching.clone();
    let client = c.id;
    let proto = c.out.proto;
    let db = c.db;
    let no_touch = c.no_touch;
    let tracked: Vec<bool> = m
        .cmds
        .iter()
        .map(|(cmd, _)| c.tracks_reads_of(cmd))
        .collect();
    let monitored = c.globals.monitors.active().then(|| {
        m.cmds
            .iter()
            .filter(|(cmd, _)| c.monitors_see(cmd))
            .map(|(cmd, args)| (cmd.name, args.clone()))
            .collect::<Vec<_>>()
    });
    let cmds = m.cmds;
    let run = move |sh: &mut Shard| -> Option<Vec<u8>> {
        if watch_failed(sh, check.as_ref()) {
            return None;
        }
        let mut rb = ReplyBuilder::new(proto);
        rb.array(cmds.len());
        let now = now_ms();
        let mut clock = quanta::Instant::now();
        for ((cmd, args), track) in cmds.iter().zip(tracked) {
            let handler = match cmd.handler {
                Handler::Keyed { shard, .. } => shard,
                _ => continue,
            };
            let mut ctx = command::ShardCtx {
                shard: sh,
                db,
                r: &mut rb,
                now,
                no_touch,
            };
            let who = ExecFor {
                client,
                track: track.then_some(*cmd),
                inline: false,
            };
            exec_on_shard(&mut ctx, handler, cmd, args, &mut clock, who);
        }
        sh.tracking.flush_bcast();
        Some(rb.buf)
    };
    match crate::coord::run_on(c, sid, run).await {
        Some(Some(reply)) => {
            c.out.buf.extend_from_slice(&reply);
            for (name, args) in monitored.into_iter().flatten() {
                c.feed_monitors(name, &args);
            }
        }
        Some(None) => c.out.null_array(),
        None => c.out.error("ERR shard unavailable (server shutting down)"),
    }
}
