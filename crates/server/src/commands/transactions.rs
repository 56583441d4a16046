//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! MULTI makes the connection queue what it is sent (`Conn::dispatch` answers `+QUEUED`, and a
//! command rejected while queueing, as Redis's `rejectCommand`, makes EXEC answer EXECABORT).
//! EXEC runs the queue atomically, in one of three ways:
//! - every queued command is a single-shard command of one shard, and every watched key is
//!   on that shard too (the common `WATCH k / GET k / MULTI / SET k / EXEC`): one callback on
//!   that shard runs them all, checking the watch first. A callback never awaits, so nothing
//!   interleaves: one hop, no locks (the single-shard path pays nothing, ARCHITECTURE.md §2);
//! - every queued command is a single-shard command, of several shards: their keys and the
//!   watched keys are locked (`coord::Tx::begin_keys`), the watch checked, then each shard
//!   runs its commands in one callback, all shards at once (one hop per shard, Dragonfly's
//!   "squashing");
//! - anything else (connection commands, multi-shard commands, fan-outs): a transaction locks
//!   every shard exclusively (`coord::Tx`, shard order), checks the watch, and runs the
//!   commands one by one under it (`Conn::exec_queued`); the coordinator helpers see
//!   `Conn::exec_tx` and run multi-shard commands under the same transaction instead of
//!   locking again.
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
    match owners(c, &m) {
        Some(owners) => {
            let mut shards: Vec<usize> = owners.clone();
            if let Some(w) = watching {
                shards.extend(w.keys.iter().map(|(_, k)| c.shard_of(k)));
            }
            shards.sort_unstable();
            shards.dedup();
            if shards.len() <= 1 {
                let sid = shards.first().copied().unwrap_or(c.shard_id);
                exec_on_one_shard(c, sid, m, watching).await
            } else {
                exec_keyed(c, m, owners, watching).await
            }
        }
        None => exec_general(c, m, watching).await,
    }
}

/// Each queued command's shard, if every one is a single-shard command with keys.
fn owners(c: &Conn, m: &Multi) -> Option<Vec<usize>> {
    let nshards = c.globals.nshards();
    m.cmds
        .iter()
        .map(
            |(cmd, args)| match (cmd.handler, cmd.key_shard(args, nshards)) {
                (Handler::Keyed { .. }, Ok(Some(sid))) => Some(sid),
                _ => None,
            },
        )
        .collect()
}

/// Whether the watch fails, checked under `tx` on every shard a watched key lives on (in
/// parallel).
async fn watch_fails(c: &Conn, tx: &crate::coord::Tx, watching: &Option<Watching>) -> bool {
    let Some(w) = watching else {
        return false;
    };
    let mut by_shard: Vec<Vec<(usize, Bytes)>> = vec![Vec::new(); c.globals.nshards()];
    for (db, key) in &w.keys {
        by_shard[c.shard_of(key)].push((*db, key.clone()));
    }
    let mut checks = Vec::new();
    for (sid, keys) in by_shard.into_iter().enumerate() {
        if !keys.is_empty() {
            let check = Watching {
                flag: w.flag.clone(),
                keys,
            };
            checks.push(tx.send(sid, move |sh| watch_failed(sh, Some(&check))));
        }
    }
    let mut failed = w.flag.is_dirty();
    for r in checks {
        failed |= r.await.unwrap_or(true);
    }
    failed
}

/// EXEC of anything: every shard locked, the commands run one at a time under that
/// transaction (`Conn::exec_queued`).
async fn exec_general(c: &mut Conn, m: Multi, watching: &Option<Watching>) {
    let nshards = c.globals.nshards();
    let tx = crate::coord::Tx::begin(c, 0..nshards).await;
    if watch_fails(c, &tx, watching).await {
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

/// A queued single-shard command, ready to run on its shard: its place in the EXEC reply,
/// and whether its keys are to be remembered for CLIENT TRACKING.
struct Part {
    at: usize,
    cmd: &'static command::Command,
    args: Vec<Bytes>,
    track: bool,
}

/// What a shard callback needs besides its commands.
#[derive(Clone, Copy)]
struct PartCtx {
    client: u64,
    proto: damselfly_resp::Protocol,
    db: usize,
    no_touch: bool,
}

/// Runs `parts` in order on `sh`; each reply with its place.
fn run_parts(sh: &mut Shard, ctx: PartCtx, parts: &[Part]) -> Vec<(usize, Vec<u8>)> {
    let now = now_ms();
    let mut clock = quanta::Instant::now();
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        let Handler::Keyed { shard: handler, .. } = p.cmd.handler else {
            continue;
        };
        let mut rb = ReplyBuilder::new(ctx.proto);
        let mut sctx = command::ShardCtx {
            shard: sh,
            db: ctx.db,
            r: &mut rb,
            now,
            no_touch: ctx.no_touch,
        };
        let who = ExecFor {
            client: ctx.client,
            track: p.track.then_some(p.cmd),
            // Its own invalidations follow the whole EXEC reply, as in Redis 7.0.
            inline: false,
        };
        exec_on_shard(&mut sctx, handler, p.cmd, &p.args, &mut clock, who);
        out.push((p.at, rb.buf));
    }
    sh.tracking.flush_bcast();
    out
}

/// Commands for MONITOR to show once EXEC has run them: name and arguments, in order.
type Monitored = Vec<(&'static str, Vec<Bytes>)>;

/// The queued commands as parts, and what MONITOR is to be shown of them (in order).
fn parts_of(c: &Conn, m: Multi) -> (Vec<Part>, Monitored, PartCtx) {
    let mut monitored = Vec::new();
    let mut parts = Vec::with_capacity(m.cmds.len());
    for (at, (cmd, args)) in m.cmds.into_iter().enumerate() {
        if c.monitors_see(cmd) {
            monitored.push((cmd.name, args.clone()));
        }
        let track = c.tracks_reads_of(cmd);
        parts.push(Part {
            at,
            cmd,
            args,
            track,
        });
    }
    let ctx = PartCtx {
        client: c.id,
        proto: c.out.proto,
        db: c.db,
        no_touch: c.no_touch,
    };
    (parts, monitored, ctx)
}

/// Writes the EXEC reply from every part's reply, in queue order, then feeds MONITOR.
fn reply_parts(c: &mut Conn, n: usize, mut replies: Vec<(usize, Vec<u8>)>, monitored: Monitored) {
    if replies.len() != n {
        c.out.error("ERR shard unavailable (server shutting down)");
        return;
    }
    replies.sort_by_key(|r| r.0);
    c.out.array(n);
    for (_, r) in replies {
        c.out.buf.extend_from_slice(&r);
    }
    for (name, args) in monitored {
        c.feed_monitors(name, &args);
    }
}

/// EXEC of single-shard commands all of shard `sid` (and watched keys there too): one
/// callback runs the watch check and every command, so nothing can interleave; no locks.
async fn exec_on_one_shard(c: &mut Conn, sid: usize, m: Multi, watching: &Option<Watching>) {
    let check = watching.clone();
    let n = m.cmds.len();
    let (parts, monitored, ctx) = parts_of(c, m);
    let run = move |sh: &mut Shard| -> Option<Vec<(usize, Vec<u8>)>> {
        if watch_failed(sh, check.as_ref()) {
            return None;
        }
        Some(run_parts(sh, ctx, &parts))
    };
    match crate::coord::run_on(c, sid, run).await {
        Some(Some(replies)) => reply_parts(c, n, replies, monitored),
        Some(None) => c.out.null_array(),
        None => c.out.error("ERR shard unavailable (server shutting down)"),
    }
}

/// EXEC of single-shard commands of several shards: their keys (and the watched keys) are
/// locked shard by shard, the watch checked, then each shard runs its commands, in queue
/// order, in one callback, all shards in parallel. Commands of different shards touch
/// different keys, so running them by shard instead of in queue order changes no reply; the
/// locks keep every key of the transaction from being read or written by anyone else until
/// every shard is done.
async fn exec_keyed(c: &mut Conn, m: Multi, owners: Vec<usize>, watching: &Option<Watching>) {
    let nshards = c.globals.nshards();
    let n = m.cmds.len();
    // Every key to lock, with its shard.
    let mut keys: Vec<Bytes> = Vec::new();
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut add = |keys: &mut Vec<Bytes>, sid: usize, key: &Bytes| {
        keys.push(key.clone());
        match groups.iter_mut().find(|g| g.0 == sid) {
            Some(g) => g.1.push(keys.len() - 1),
            None => groups.push((sid, vec![keys.len() - 1])),
        }
    };
    for ((cmd, args), &sid) in m.cmds.iter().zip(&owners) {
        for p in cmd.key_positions(args) {
            if let Some(k) = args.get(p) {
                add(&mut keys, sid, k);
            }
        }
    }
    if let Some(w) = watching {
        for (_, k) in &w.keys {
            add(&mut keys, c.shard_of(k), k);
        }
    }
    groups.sort_by_key(|g| g.0);
    let tx = crate::coord::Tx::begin_keys(c, &keys, &groups, true).await;
    if watch_fails(c, &tx, watching).await {
        tx.end();
        c.out.null_array();
        return;
    }
    let (parts, monitored, ctx) = parts_of(c, m);
    let mut by_shard: Vec<Vec<Part>> = (0..nshards).map(|_| Vec::new()).collect();
    for (p, sid) in parts.into_iter().zip(owners) {
        by_shard[sid].push(p);
    }
    let mut runs = Vec::new();
    for (sid, parts) in by_shard.into_iter().enumerate() {
        if !parts.is_empty() {
            runs.push(tx.send(sid, move |sh| run_parts(sh, ctx, &parts)));
        }
    }
    let mut replies = Vec::with_capacity(n);
    for r in runs {
        if let Ok(r) = r.await {
            replies.extend(r);
        }
    }
    tx.end();
    reply_parts(c, n, replies, monitored);
}
