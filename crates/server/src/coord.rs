//! The coordinator: running work on other shards, and atomic multi-shard transactions.
//!
//! `run_on` runs a closure on one shard (inline when it is this thread's shard and free).
//! `run_on_all` fans out to every shard in one message each. `Tx` makes a multi-shard command
//! atomic: it takes a process-wide transaction mutex, locks each involved shard (a lock message
//! per shard; while locked, a shard parks all other work in arrival order), runs its phases, and
//! unlocks. Only multi-shard commands pay for this; single-shard commands (all keys under one
//! hash tag included) never touch the mutex.
//!
//! Why a global mutex and not Dragonfly's VLL queue yet: with every multi-shard transaction
//! serialized, lock acquisition cannot deadlock and needs one parallel hop; it is correct and
//! simple. Its cost is that independent multi-shard commands do not overlap; measure before
//! replacing it with per-shard intent locks ordered by transaction id (docs/transactions.md).
//!
//! Invariant: a `Tx` always unlocks every shard it locked (explicitly in `end`, or in `Drop`).

use crate::conn::Conn;
use crate::globals::Globals;
use crate::shard::{Shard, ShardMsg, ShardRef};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Runs `f` on shard `sid` and returns its result.
pub async fn run_on<R, F>(conn: &Conn, sid: usize, f: F) -> Option<R>
where
    R: Send + 'static,
    F: FnOnce(&mut Shard) -> R + Send + 'static,
{
    if sid == conn.shard_id && !conn.shard.borrow().is_locked_for(None) {
        let mut sh = conn.shard.borrow_mut();
        return Some(f(&mut sh));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: crate::shard::ShardFn = Box::new(move |s| {
        let _ = tx.send(f(s));
    });
    conn.globals.inboxes[sid].send(ShardMsg::Run(job)).ok()?;
    rx.await.ok()
}

/// Runs `f` on every shard (one message each, concurrently); results in shard order.
pub async fn run_on_all<R, F>(conn: &Conn, f: F) -> Vec<R>
where
    R: Send + 'static,
    F: Fn(&mut Shard) -> R + Send + Sync + Clone + 'static,
{
    let n = conn.globals.nshards();
    let mut rxs = Vec::with_capacity(n);
    let mut local = None;
    for sid in 0..n {
        if sid == conn.shard_id && !conn.shard.borrow().is_locked_for(None) {
            local = Some(sid);
            rxs.push(None);
            continue;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let g = f.clone();
        let job: crate::shard::ShardFn = Box::new(move |s| {
            let _ = tx.send(g(s));
        });
        if conn.globals.inboxes[sid].send(ShardMsg::Run(job)).is_ok() {
            rxs.push(Some(rx));
        } else {
            rxs.push(None);
        }
    }
    let mut local_result = local.map(|_| {
        let mut sh = conn.shard.borrow_mut();
        f(&mut sh)
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

/// An atomic multi-shard transaction holding a set of shards.
pub struct Tx {
    id: u64,
    shards: Vec<usize>,
    globals: Arc<Globals>,
    local: ShardRef,
    local_id: usize,
    _guard: tokio::sync::OwnedMutexGuard<()>,
    ended: bool,
}

impl Tx {
    /// Locks `shards` (any order, duplicates allowed) for one transaction.
    pub async fn begin(conn: &Conn, shards: impl IntoIterator<Item = usize>) -> Tx {
        let mut shards: Vec<usize> = shards.into_iter().collect();
        shards.sort_unstable();
        shards.dedup();
        let guard = conn.globals.tx_mutex.clone().lock_owned().await;
        let id = conn.globals.next_tx_id.fetch_add(1, Ordering::Relaxed);
        let mut acks = Vec::new();
        for &sid in &shards {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let ack: crate::shard::ShardFn = Box::new(move |_| {
                let _ = tx.send(());
            });
            if conn.globals.inboxes[sid]
                .send(ShardMsg::Lock(id, ack))
                .is_ok()
            {
                acks.push(rx);
            }
        }
        for rx in acks {
            let _ = rx.await;
        }
        Tx {
            id,
            shards,
            globals: conn.globals.clone(),
            local: conn.shard.clone(),
            local_id: conn.shard_id,
            _guard: guard,
            ended: false,
        }
    }

    /// Runs `f` on a locked shard.
    pub async fn run<R, F>(&self, sid: usize, f: F) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Shard) -> R + Send + 'static,
    {
        debug_assert!(self.shards.contains(&sid));
        if sid == self.local_id {
            let mut sh = self.local.borrow_mut();
            return Some(f(&mut sh));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: crate::shard::ShardFn = Box::new(move |s| {
            let _ = tx.send(f(s));
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
        for &sid in &self.shards {
            if sid == self.local_id {
                rxs.push(None);
                continue;
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            let g = f.clone();
            let job: crate::shard::ShardFn = Box::new(move |s| {
                let _ = tx.send(g(s));
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
                    out.push(Some(f(&mut sh)));
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
        if sid == self.local_id {
            let mut sh = self.local.borrow_mut();
            let _ = tx.send(f(&mut sh));
        } else {
            let job: crate::shard::ShardFn = Box::new(move |s| {
                let _ = tx.send(f(s));
            });
            let _ = self.globals.inboxes[sid].send(ShardMsg::TxRun(self.id, job));
        }
        rx
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
                // Our own shard: unlock inline so parked local work runs now.
                let mut sh = self.local.borrow_mut();
                sh.handle(ShardMsg::Unlock(self.id));
            } else {
                let _ = self.globals.inboxes[sid].send(ShardMsg::Unlock(self.id));
            }
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        self.unlock();
    }
}
