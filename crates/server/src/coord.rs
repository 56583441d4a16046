//! The coordinator: running work on other shards, and atomic multi-shard transactions.
//!
//! `run_on` runs a closure on one shard (inline when it is this thread's shard and no locks
//! are held there). `run_on_all` fans out to every shard in one message each. `Tx` makes a
//! multi-shard command atomic: it takes intent locks (`locks.rs`) on the keys it touches, or on
//! whole shards, shard by shard in ascending order, runs its phases with `TxRun` messages
//! (which bypass the locks it holds), and releases everything at the end. Independent
//! transactions overlap; only those that share a key wait for each other, and a single-shard
//! command waits only if it touches a key a transaction holds. The design and the deadlock
//! argument are in `locks.rs` and docs/transactions.md.
//!
//! Inside EXEC (`Conn::exec_tx`) the transaction already holds every shard exclusively, so
//! each of these runs its work under that transaction instead (`TxRun`, inline on our own
//! shard) and takes no lock of its own: a command in a MULTI block waits for nothing.
//!
//! Invariant: a `Tx` always releases every lock it took or asked for (explicitly in `end`, or
//! in `Drop`, which also covers a coordinator dropped while waiting for a grant).

use crate::conn::Conn;
use crate::globals::Globals;
use crate::locks::{key_fp, Need};
use crate::shard::{Grant, Shard, ShardMsg, ShardRef, Waiter};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Runs `f` on `sh` as a command of `client`: the invalidations its changes send know who
/// changed the keys (CLIENT TRACKING ... NOLOOP), and BCAST messages for them go out when it
/// ends. Its own invalidations go to the client's push sink, which the connection drains
/// right after the command.
pub fn as_client<R>(sh: &mut Shard, client: u64, f: impl FnOnce(&mut Shard) -> R) -> R {
    sh.tracking.begin(client, false);
    let r = f(sh);
    sh.tracking.end(&mut Vec::new());
    sh.tracking.flush_bcast();
    r
}

/// Runs `f` on shard `sid` and returns its result.
pub async fn run_on<R, F>(conn: &Conn, sid: usize, f: F) -> Option<R>
where
    R: Send + 'static,
    F: FnOnce(&mut Shard) -> R + Send + 'static,
{
    let client = conn.id;
    if sid == conn.shard_id && (conn.exec_tx.is_some() || conn.shard.borrow().locks.idle()) {
        let mut sh = conn.shard.borrow_mut();
        return Some(as_client(&mut sh, client, f));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: crate::shard::ShardFn = Box::new(move |s| {
        let _ = tx.send(as_client(s, client, f));
    });
    conn.globals.inboxes[sid].send(in_exec(conn, job)).ok()?;
    rx.await.ok()
}

/// A message for work that may touch anything on a shard: under EXEC's transaction when one
/// runs (its locks are ours), else one that waits for the shard's locks.
fn in_exec(conn: &Conn, job: crate::shard::ShardFn) -> ShardMsg {
    match conn.exec_tx {
        Some(id) => ShardMsg::TxRun(id, job),
        None => ShardMsg::Run(job),
    }
}

/// Runs `f` on every shard (one message each, concurrently); results in shard order.
pub async fn run_on_all<R, F>(conn: &Conn, f: F) -> Vec<R>
where
    R: Send + 'static,
    F: Fn(&mut Shard) -> R + Send + Sync + Clone + 'static,
{
    let n = conn.globals.nshards();
    let client = conn.id;
    let mut rxs = Vec::with_capacity(n);
    let mut local = None;
    for sid in 0..n {
        if sid == conn.shard_id && (conn.exec_tx.is_some() || conn.shard.borrow().locks.idle()) {
            local = Some(sid);
            rxs.push(None);
            continue;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let g = f.clone();
        let job: crate::shard::ShardFn = Box::new(move |s| {
            let _ = tx.send(as_client(s, client, g));
        });
        if conn.globals.inboxes[sid].send(in_exec(conn, job)).is_ok() {
            rxs.push(Some(rx));
        } else {
            rxs.push(None);
        }
    }
    let mut local_result = local.map(|_| {
        let mut sh = conn.shard.borrow_mut();
        as_client(&mut sh, client, f)
    });
    let mut out = Vec::with_capacity(n);
    for rx in rxs {
        match rx {
            Some(rx) => {
                if let Ok(r) = rx.await {
                    out.push(r);
                }
            }
            None => {
                if let Some(r) = local_result.take() {
                    out.push(r);
                }
            }
        }
    }
    out
}

/// Groups key positions of `args` by owning shard: (shard, positions) in shard order.
pub fn group_by_shard(
    conn: &Conn,
    args: &[bytes::Bytes],
    positions: &[usize],
) -> Vec<(usize, Vec<usize>)> {
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for &p in positions {
        let sid = conn.shard_of(&args[p]);
        match groups.iter_mut().find(|g| g.0 == sid) {
            Some(g) => g.1.push(p),
            None => groups.push((sid, vec![p])),
        }
    }
    groups.sort_by_key(|g| g.0);
    groups
}

/// An atomic multi-shard transaction holding locks on a set of shards.
pub struct Tx {
    id: u64,
    /// The client whose command this is.
    client: u64,
    /// Shards where locks were taken or asked for, in the order they were asked.
    shards: Vec<usize>,
    globals: Arc<Globals>,
    local: ShardRef,
    local_id: usize,
    ended: bool,
}

impl Tx {
    fn new(conn: &Conn, nshards: usize) -> Tx {
        Tx {
            id: conn.globals.next_tx_id.fetch_add(1, Ordering::Relaxed),
            client: conn.id,
            shards: Vec::with_capacity(nshards),
            globals: conn.globals.clone(),
            local: conn.shard.clone(),
            local_id: conn.shard_id,
            ended: false,
        }
    }

    /// Locks whole `shards` (any order, duplicates allowed) exclusively: for commands that
    /// touch every key of a shard (SWAPDB, FLUSHALL).
    pub async fn begin(conn: &Conn, shards: impl IntoIterator<Item = usize>) -> Tx {
        let mut shards: Vec<usize> = shards.into_iter().collect();
        shards.sort_unstable();
        shards.dedup();
        Tx::acquire(
            conn,
            shards.into_iter().map(|s| (s, Need::Whole(true))).collect(),
        )
        .await
    }

    /// Locks the keys `args[p]` of each `(shard, positions)` group (as `group_by_shard` makes
    /// them): exclusive for writers, shared for readers.
    pub async fn begin_keys(
        conn: &Conn,
        args: &[bytes::Bytes],
        groups: &[(usize, Vec<usize>)],
        exclusive: bool,
    ) -> Tx {
        let mut needs: Vec<(usize, Need)> = Vec::with_capacity(groups.len());
        for (sid, pos) in groups {
            let keys = pos.iter().map(|&p| (key_fp(&args[p]), exclusive));
            match needs.iter_mut().find(|n| n.0 == *sid) {
                Some((_, Need::Keys(k))) => k.extend(keys),
                _ => needs.push((*sid, Need::Keys(keys.collect()))),
            }
        }
        needs.sort_by_key(|n| n.0);
        Tx::acquire(conn, needs).await
    }

    /// Takes `needs` shard by shard in ascending shard order (the order is what makes waiting
    /// deadlock-free), waiting for each grant before asking the next shard.
    async fn acquire(conn: &Conn, needs: Vec<(usize, Need)>) -> Tx {
        let mut tx = Tx::new(conn, needs.len());
        if let Some(id) = conn.exec_tx {
            // EXEC holds every shard already: work under its transaction, release nothing.
            tx.id = id;
            tx.shards = needs.into_iter().map(|n| n.0).collect();
            tx.ended = true;
            return tx;
        }
        for (sid, need) in needs {
            tx.lock_one(conn, sid, need).await;
        }
        tx
    }

    /// Takes `need` on shard `sid` (inline on our own shard) and waits for the grant.
    async fn lock_one(&mut self, conn: &Conn, sid: usize, need: Need) {
        let id = self.id;
        let (s, r) = tokio::sync::oneshot::channel::<()>();
        let grant: Grant = Box::new(move || s.send(()).is_ok());
        self.shards.push(sid);
        if sid == conn.shard_id {
            let mut sh = conn.shard.borrow_mut();
            if sh.locks.can_grant(&need) {
                sh.locks.acquire(id, need);
                return;
            }
            sh.locks.wait(need, Waiter::Tx(id, grant));
        } else if conn.globals.inboxes[sid]
            .send(ShardMsg::Lock(id, need, grant))
            .is_err()
        {
            return;
        }
        let _ = r.await;
    }

    /// Runs `f` on a locked shard.
    pub async fn run<R, F>(&self, sid: usize, f: F) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Shard) -> R + Send + 'static,
    {
        debug_assert!(self.shards.contains(&sid));
        let client = self.client;
        if sid == self.local_id {
            let mut sh = self.local.borrow_mut();
            return Some(as_client(&mut sh, client, f));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: crate::shard::ShardFn = Box::new(move |s| {
            let _ = tx.send(as_client(s, client, f));
        });
        self.globals.inboxes[sid]
            .send(ShardMsg::TxRun(self.id, job))
            .ok()?;
        rx.await.ok()
    }

    /// Runs `f` on every locked shard concurrently; results in the order of `shards()`.
    pub async fn run_all<R, F>(&self, f: F) -> Vec<Option<R>>
    where
        R: Send + 'static,
        F: Fn(&mut Shard) -> R + Send + Sync + Clone + 'static,
    {
        let mut rxs = Vec::new();
        let client = self.client;
        for &sid in &self.shards {
            if sid == self.local_id {
                rxs.push(None);
                continue;
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            let g = f.clone();
            let job: crate::shard::ShardFn = Box::new(move |s| {
                let _ = tx.send(as_client(s, client, g));
            });
            let sent = self.globals.inboxes[sid]
                .send(ShardMsg::TxRun(self.id, job))
                .is_ok();
            rxs.push(if sent { Some(rx) } else { None });
        }
        let mut out = Vec::new();
        for (i, rx) in rxs.into_iter().enumerate() {
            match rx {
                Some(rx) => out.push(rx.await.ok()),
                None if self.shards[i] == self.local_id => {
                    let mut sh = self.local.borrow_mut();
                    out.push(Some(as_client(&mut sh, client, f.clone())));
                }
                None => out.push(None),
            }
        }
        out
    }

    /// Starts `f` on a locked shard now and returns a receiver for its result, so a caller can
    /// start work on several shards before awaiting any (one parallel hop).
    pub fn send<R, F>(&self, sid: usize, f: F) -> tokio::sync::oneshot::Receiver<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Shard) -> R + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let client = self.client;
        if sid == self.local_id {
            let mut sh = self.local.borrow_mut();
            let _ = tx.send(as_client(&mut sh, client, f));
        } else {
            let job: crate::shard::ShardFn = Box::new(move |s| {
                let _ = tx.send(as_client(s, client, f));
            });
            let _ = self.globals.inboxes[sid].send(ShardMsg::TxRun(self.id, job));
        }
        rx
    }

    /// The transaction's id (its `TxRun` messages bypass the locks it holds).
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn shards(&self) -> &[usize] {
        &self.shards
    }

    /// Releases every shard.
    pub fn end(mut self) {
        self.unlock();
    }

    fn unlock(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        for &sid in &self.shards {
            if sid == self.local_id {
                // Our own shard: unlock inline so waiting local work runs now.
                self.local.borrow_mut().unlock(self.id);
            } else {
                let _ = self.globals.inboxes[sid].send(ShardMsg::Unlock(self.id));
            }
        }
    }
}

/// One shard's part of a one-phase multi-shard command.
pub type Part<R> = Box<dyn FnOnce(&mut Shard) -> R + Send>;

/// The last shard's part of a `single_hop` command: runs as soon as its keys are free.
struct LastPart<R> {
    need: Need,
    part: Part<R>,
    reply: tokio::sync::oneshot::Sender<R>,
}

impl<R: Send + 'static> crate::shard::KeyedWork for LastPart<R> {
    fn need(&self) -> Need {
        self.need.clone()
    }
    fn run(self: Box<Self>, shard: &mut Shard) {
        let _ = self.reply.send((self.part)(shard));
    }
}

/// Runs a one-phase multi-shard command (MSET, MGET, DEL...) atomically with the fewest
/// round trips: locks the keys of every group but the last, in shard order; runs the last
/// group's part as soon as its keys are free (that instant is when the command takes effect:
/// every other key is already locked, so no reader can see the old value of one and the new
/// value of another); then runs the other parts and releases in the same message. With two
/// shards that is one round trip when the coordinator's shard comes first and two otherwise;
/// with `want_results` false (MSET) the last step is not awaited, so always one.
///
/// `groups` are `(shard, key positions in args)` as `group_by_shard` makes them (sorted by
/// shard); results come back in the same order (None for a part not awaited or lost).
pub async fn single_hop<R: Send + 'static>(
    conn: &Conn,
    args: &[bytes::Bytes],
    groups: &[(usize, Vec<usize>)],
    exclusive: bool,
    want_results: bool,
    mut make: impl FnMut(usize, &[usize]) -> Part<R>,
) -> Vec<Option<R>> {
    let n = groups.len();
    // With tracking clients about, every part is awaited: the invalidations its changes send
    // must be on their way before the command's reply is (as in Redis, where they are in the
    // other clients' buffers by then).
    let want_results = want_results || conn.globals.tracking.tracking_clients() > 0;
    let mut results: Vec<Option<R>> = (0..n).map(|_| None).collect();
    if n == 0 {
        return results;
    }
    let needs: Vec<Need> = groups
        .iter()
        .map(|(_, pos)| Need::Keys(pos.iter().map(|&p| (key_fp(&args[p]), exclusive)).collect()))
        .collect();
    // Each part runs as the client's command and, for a tracked read, remembers its keys in
    // the same run (`tracking.rs`).
    let client = conn.id;
    let track = conn.track_cross;
    let mut parts: Vec<Option<Part<R>>> = groups
        .iter()
        .map(|(s, p)| {
            let part = make(*s, p);
            let keys: Vec<bytes::Bytes> = if track {
                p.iter().map(|&i| args[i].clone()).collect()
            } else {
                Vec::new()
            };
            let wrapped: Part<R> = Box::new(move |sh: &mut Shard| {
                as_client(sh, client, |sh| {
                    let r = part(sh);
                    for k in &keys {
                        sh.tracking.remember(k, client);
                    }
                    r
                })
            });
            Some(wrapped)
        })
        .collect();
    if let Some(id) = conn.exec_tx {
        // Inside EXEC every shard is held already: run each part under its transaction.
        let mut rxs = Vec::new();
        for (i, part) in parts.iter_mut().enumerate() {
            let Some(part) = part.take() else {
                continue;
            };
            let sid = groups[i].0;
            if sid == conn.shard_id {
                results[i] = Some(part(&mut conn.shard.borrow_mut()));
            } else {
                let (s, r) = tokio::sync::oneshot::channel();
                let job: crate::shard::ShardFn = Box::new(move |sh| {
                    let _ = s.send(part(sh));
                });
                let _ = conn.globals.inboxes[sid].send(ShardMsg::TxRun(id, job));
                rxs.push((i, r));
            }
        }
        for (i, r) in rxs {
            results[i] = r.await.ok();
        }
        return results;
    }
    let mut tx = Tx::new(conn, n);
    for i in 0..n - 1 {
        tx.lock_one(conn, groups[i].0, needs[i].clone()).await;
    }
    // The last group: the moment the command takes effect.
    let last_sid = groups[n - 1].0;
    if let Some(part) = parts[n - 1].take() {
        let (s, r) = tokio::sync::oneshot::channel();
        let work = Box::new(LastPart {
            need: needs[n - 1].clone(),
            part,
            reply: s,
        });
        if last_sid == conn.shard_id {
            let mut sh = conn.shard.borrow_mut();
            if sh.locks.idle() || sh.locks.can_grant(&work.need) {
                crate::shard::KeyedWork::run(work, &mut sh);
            } else {
                let need = work.need.clone();
                sh.locks.wait(need, Waiter::Keyed(work));
            }
        } else {
            let _ = conn.globals.inboxes[last_sid].send(ShardMsg::Keyed(work));
        }
        results[n - 1] = r.await.ok();
    }
    // The other groups: run their parts under the locks, then release.
    let mut rxs = Vec::new();
    for i in 0..n - 1 {
        let sid = groups[i].0;
        let Some(part) = parts[i].take() else {
            continue;
        };
        if sid == conn.shard_id {
            let r = part(&mut conn.shard.borrow_mut());
            results[i] = Some(r);
            conn.shard.borrow_mut().unlock(tx.id);
        } else {
            let (s, r) = tokio::sync::oneshot::channel();
            let job: crate::shard::ShardFn = Box::new(move |sh| {
                let _ = s.send(part(sh));
            });
            let inbox = &conn.globals.inboxes[sid];
            let _ = inbox.send(ShardMsg::TxRun(tx.id, job));
            let _ = inbox.send(ShardMsg::Unlock(tx.id));
            if want_results {
                rxs.push((i, r));
            }
        }
    }
    tx.ended = true;
    for (i, r) in rxs {
        results[i] = r.await.ok();
    }
    results
}

impl Drop for Tx {
    fn drop(&mut self) {
        self.unlock();
    }
}
