//! A shard: one thread's slice of the keyspace, its inbox, and the one mutation path.
//!
//! Each shard thread owns a `Shard` (behind an `Rc<RefCell<_>>` that never leaves the thread).
//! Connection tasks on the same thread call into it directly; other threads send it
//! `ShardMsg` closures through its inbox. A closure runs to completion without awaiting, so a
//! command is atomic on its shard for free.
//!
//! Every read and write of keys goes through the `Shard` methods below (`lookup_read`,
//! `lookup_write`, `store`, `remove`, `expire_tick`...): expiry, hit/miss counters, and later
//! WATCH, keyspace notifications, client tracking, the replication journal and the snapshot's
//! serialize-before-mutate all hang off these few functions, so no command can forget one.
//!
//! Multi-shard transactions take intent locks on the keys (or the whole shard) they touch
//! (`locks`, see `locks.rs`); work that needs a locked key waits in the shard's queue and runs
//! when the lock is released. With no locks held, work runs at once (`Locks::idle`).
//!
//! Invariant: shard data is touched only on the shard's own thread, and only through `&mut
//! Shard` borrows that never span an `.await`.

use crate::globals::Globals;
use crate::locks::{Locks, Need};
use damselfly_core::{Entry, Table};
use std::cell::RefCell;

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::rc::Rc;
use std::sync::Arc;

/// Work for a shard, run on its thread.
pub type ShardFn = Box<dyn FnOnce(&mut Shard) + Send>;

/// A transaction's lock grant: delivers the news to the coordinator; false if it is gone (then
/// the lock is not taken).
pub type Grant = Box<dyn FnOnce() -> bool + Send>;

/// Work that knows which keys it touches, so it runs at once unless one of them is locked (a
/// connection's batch of single-shard commands).
pub trait KeyedWork: Send {
    /// The locks this work would need: its keys, exclusive for writes.
    fn need(&self) -> Need;
    fn run(self: Box<Self>, shard: &mut Shard);
}

/// What travels through a shard's inbox.
pub enum ShardMsg {
    /// Work that may touch anything on the shard (fan-outs, INFO...): waits while any lock is
    /// held.
    Run(ShardFn),
    /// Work on known keys: waits only while one of its keys is locked.
    Keyed(Box<dyn KeyedWork>),
    /// Work of transaction `id`, which holds its locks here.
    TxRun(u64, ShardFn),
    /// Take locks for transaction `id`; `Grant` is called once they are taken.
    Lock(u64, Need, Grant),
    /// Release the locks of transaction `id`; waiting work then runs in order.
    Unlock(u64),
}

/// What waits in a shard's lock queue.
pub enum Waiter {
    Tx(u64, Grant),
    Job(ShardFn),
    Keyed(Box<dyn KeyedWork>),
}

/// A shard's inbox, shared with every thread that sends it work (see `inbox.rs`).
pub type ShardInbox = Arc<crate::inbox::Inbox>;

/// Per-command counters for INFO commandstats.
#[derive(Default, Clone, Debug)]
pub struct CmdStat {
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
    /// Latency distribution while `latency-tracking` is on (empty: none yet).
    pub hist: crate::latency::Histogram,
}

/// Counters kept by one thread (no atomics; INFO sums them across shards).
#[derive(Default, Clone, Debug)]
pub struct ThreadStats {
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub total_commands: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub cmdstats: HashMap<&'static str, CmdStat>,
    pub errorstats: HashMap<String, u64>,
}

impl ThreadStats {
    pub fn merge(&mut self, o: &ThreadStats) {
        self.keyspace_hits += o.keyspace_hits;
        self.keyspace_misses += o.keyspace_misses;
        self.expired_keys += o.expired_keys;
        self.evicted_keys += o.evicted_keys;
        self.total_commands += o.total_commands;
        self.net_input_bytes += o.net_input_bytes;
        self.net_output_bytes += o.net_output_bytes;
        for (k, v) in &o.cmdstats {
            let e = self.cmdstats.entry(k).or_default();
            e.calls += v.calls;
            e.usec += v.usec;
            e.rejected += v.rejected;
            e.failed += v.failed;
            e.hist.merge(&v.hist);
        }
        for (k, v) in &o.errorstats {
            *self.errorstats.entry(k.clone()).or_default() += v;
        }
    }

    /// A copy for INFO; latency histograms (kilobytes per command) only `with_histograms`.
    pub fn snapshot(&self, with_histograms: bool) -> ThreadStats {
        if with_histograms {
            return self.clone();
        }
        ThreadStats {
            cmdstats: self
                .cmdstats
                .iter()
                .map(|(k, v)| {
                    let counters = CmdStat {
                        hist: Default::default(),
                        ..*v
                    };
                    (*k, counters)
                })
                .collect(),
            errorstats: self.errorstats.clone(),
            ..*self
        }
    }
}

/// One shard's state.
pub struct Shard {
    pub id: usize,
    pub dbs: Vec<Table>,
    pub stats: ThreadStats,
    pub globals: Arc<Globals>,
    pub locks: Locks<Waiter>,
    /// Client-side caching: the keys tracking clients read here (see `tracking.rs`).
    pub tracking: crate::tracking::ShardTracking,
    /// WATCH: the keys watched here, whose changes fail their watchers' EXEC (`watch.rs`).
    pub watches: crate::watch::Watches,
    /// Keyspace notifications for the client whose command runs here, to go before its
    /// reply (`notify`, `exec_on_shard`).
    pub notify_own: Vec<u8>,
    /// The buffer `drain_inbox` swaps with the inbox's queue (kept to reuse its allocation).
    inbox_spare: Vec<ShardMsg>,
    expire_cursors: Vec<usize>,
    rng: u64,
}

pub type ShardRef = Rc<RefCell<Shard>>;

/// An entry borrowed for change (`Shard::lookup_write`): reading it through `Deref` changes
/// nothing; a mutable borrow marks the key changed, and dropping it then tells tracking.
pub struct KeyMut<'a> {
    entry: damselfly_core::table::EntryMut<'a>,
    tracking: &'a mut crate::tracking::ShardTracking,
    watches: &'a mut crate::watch::Watches,
    db: usize,
    key: &'a [u8],
    changed: bool,
}

impl<'a> std::ops::Deref for KeyMut<'a> {
    type Target = damselfly_core::table::EntryMut<'a>;
    fn deref(&self) -> &Self::Target {
        &self.entry
    }
}

impl<'a> KeyMut<'a> {
    /// The entry for a change of representation only (the same value, another encoding),
    /// which tells no one.
    pub fn same_value_mut(&mut self) -> &mut damselfly_core::table::EntryMut<'a> {
        &mut self.entry
    }

    /// Marks the key changed after a change made through [`KeyMut::same_value_mut`].
    pub fn mark_changed(&mut self) {
        self.changed = true;
    }
}

impl std::ops::DerefMut for KeyMut<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.changed = true;
        &mut self.entry
    }
}

impl Drop for KeyMut<'_> {
    fn drop(&mut self) {
        if self.changed {
            self.tracking.key_changed(self.key);
            if !self.watches.is_empty() {
                self.watches.touch(self.db, self.key, true);
            }
        }
    }
}

/// Runs everything queued in this thread's shard inbox; a drain point (see `inbox.rs`). Must
/// not be called while the shard is borrowed.
pub fn drain_inbox(shard: &ShardRef, inbox: &crate::inbox::Inbox) {
    if !inbox.has_pending() {
        return;
    }
    let mut sh = shard.borrow_mut();
    let mut batch = std::mem::take(&mut sh.inbox_spare);
    inbox.take(&mut batch);
    for m in batch.drain(..) {
        sh.handle_contained(m);
    }
    sh.inbox_spare = batch;
}

/// Current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Shard {
    pub fn new(id: usize, dbnum: usize, globals: Arc<Globals>) -> Shard {
        Shard {
            id,
            dbs: (0..dbnum).map(|_| Table::new()).collect(),
            stats: ThreadStats::default(),
            tracking: crate::tracking::ShardTracking::new(globals.clone()),
            watches: Default::default(),
            notify_own: Vec::new(),
            globals,
            locks: Locks::default(),
            inbox_spare: Vec::new(),
            expire_cursors: vec![0; dbnum],
            rng: 0x9E37_79B9_7F4A_7C15
                ^ (id as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9)
                ^ now_ms(),
        }
    }

    /// Handles one inbox message.
    pub fn handle(&mut self, msg: ShardMsg) {
        match msg {
            ShardMsg::Run(f) => {
                let need = Need::Whole(true);
                if self.locks.idle() || self.locks.can_grant(&need) {
                    f(self);
                } else {
                    self.locks.wait(need, Waiter::Job(f));
                }
            }
            ShardMsg::Keyed(job) => {
                if self.locks.idle() {
                    return job.run(self);
                }
                let need = job.need();
                if self.locks.can_grant(&need) {
                    job.run(self);
                } else {
                    self.locks.wait(need, Waiter::Keyed(job));
                }
            }
            ShardMsg::TxRun(_, f) => f(self),
            ShardMsg::Lock(id, need, grant) => {
                if self.locks.can_grant(&need) {
                    if grant() {
                        self.locks.acquire(id, need);
                    }
                } else {
                    self.locks.wait(need, Waiter::Tx(id, grant));
                }
            }
            ShardMsg::Unlock(id) => self.unlock(id),
        }
    }

    /// Handles one message, containing a panic (a bug): it is logged and the shard keeps
    /// serving. The panicking job's reply channel is dropped, so its caller gets an error, not
    /// a hang.
    pub fn handle_contained(&mut self, msg: ShardMsg) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handle(msg)));
        if let Err(e) = r {
            let what = e
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| e.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            crate::log::error(&format!(
                "shard {}: command panicked (bug): {what}",
                self.id
            ));
        }
    }

    /// Releases transaction `id`'s locks here and runs whatever that lets run.
    pub fn unlock(&mut self, id: u64) {
        if self.locks.release(id) {
            self.drain_waiting();
        }
    }

    fn drain_waiting(&mut self) {
        while let Some((need, w)) = self.locks.next_grantable() {
            match w {
                Waiter::Tx(id, grant) => {
                    if grant() {
                        self.locks.acquire(id, need);
                    }
                }
                Waiter::Job(f) => f(self),
                Waiter::Keyed(job) => job.run(self),
            }
        }
    }

    /// A fast pseudo-random number (xorshift64*), for RANDOMKEY and sampling.
    pub fn rand(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A keyspace notification (Redis's `notifyKeyspaceEvent`): `event` of class `class` on
    /// `key` in `db`, published on `__keyspace@<db>__:<key>` and `__keyevent@<db>__:<event>`
    /// as `notify-keyspace-events` asks. One relaxed load when it asks for nothing.
    #[inline]
    pub fn notify(&mut self, class: i64, event: &str, key: &[u8], db: usize) {
        let flags = self
            .globals
            .notify_flags
            .load(std::sync::atomic::Ordering::Relaxed);
        if flags & class != 0 {
            self.notify_slow(flags, event, key, db);
        }
    }

    fn notify_slow(&mut self, flags: i64, event: &str, key: &[u8], db: usize) {
        use crate::config::notify;
        let me = self.tracking.inline_client();
        if flags & notify::KEYSPACE != 0 {
            let mut ch = format!("__keyspace@{db}__:").into_bytes();
            ch.extend_from_slice(key);
            self.globals
                .pubsub
                .publish(&ch, event.as_bytes(), false, me, &mut self.notify_own);
        }
        if flags & notify::KEYEVENT != 0 {
            let ch = format!("__keyevent@{db}__:{event}").into_bytes();
            self.globals
                .pubsub
                .publish(&ch, key, false, me, &mut self.notify_own);
        }
    }

    // ---- the mutation path -------------------------------------------------------------

    /// Removes `key` if it has expired. Returns the key's hash, so the caller's own lookup
    /// (then in cache) does not hash the key again.
    fn expire_if_needed(&mut self, db: usize, key: &[u8], now: u64) -> u64 {
        let t = &mut self.dbs[db];
        let h = t.hash(key);
        if matches!(t.get_hashed(h, key), Some(e) if e.is_expired(now)) {
            t.remove_hashed(h, key);
            self.stats.expired_keys += 1;
            self.notify(crate::config::notify::EXPIRED, "expired", key, db);
            self.tracking.key_changed(key);
            if !self.watches.is_empty() {
                self.watches.touch(db, key, false);
            }
        }
        h
    }

    /// Looks a key up for reading: lazily expires it and counts a keyspace hit or miss.
    pub fn lookup_read(&mut self, db: usize, key: &[u8], now: u64) -> Option<&Entry> {
        let h = self.expire_if_needed(db, key, now);
        let notify_miss = self
            .globals
            .notify_flags
            .load(std::sync::atomic::Ordering::Relaxed)
            & crate::config::notify::KEY_MISS
            != 0;
        if notify_miss && self.dbs[db].get_hashed(h, key).is_none() {
            self.stats.keyspace_misses += 1;
            self.notify(crate::config::notify::KEY_MISS, "keymiss", key, db);
            return None;
        }
        match self.dbs[db].get_hashed(h, key) {
            Some(e) => {
                self.stats.keyspace_hits += 1;
                Some(e)
            }
            None => {
                self.stats.keyspace_misses += 1;
                None
            }
        }
    }

    /// Looks a key up without touching hit/miss counters (existence checks, TYPE, TTL...).
    pub fn lookup(&mut self, db: usize, key: &[u8], now: u64) -> Option<&Entry> {
        let h = self.expire_if_needed(db, key, now);
        self.dbs[db].get_hashed(h, key)
    }

    /// Looks a key up for change. The entry counts as changed (for client-side caching) once
    /// it is borrowed mutably, so an error path that only reads it changes nothing.
    pub fn lookup_write<'a>(
        &'a mut self,
        db: usize,
        key: &'a [u8],
        now: u64,
    ) -> Option<KeyMut<'a>> {
        let h = self.expire_if_needed(db, key, now);
        let entry = self.dbs[db].get_mut_hashed(h, key)?;
        Some(KeyMut {
            entry,
            tracking: &mut self.tracking,
            watches: &mut self.watches,
            db,
            key,
            changed: false,
        })
    }

    /// Stores an entry, replacing any previous value of its key; returns that value unless it
    /// had expired (then it counts as expired, as Redis's lookup before a write counts it, so
    /// a plain SET needs no lookup of its own).
    pub fn store(&mut self, db: usize, entry: Entry, now: u64) -> Option<Entry> {
        if self
            .globals
            .notify_flags
            .load(std::sync::atomic::Ordering::Relaxed)
            & crate::config::notify::NEW
            != 0
        {
            let key = entry.key().to_vec();
            let old = self.store_quiet(db, entry, now);
            if old.is_none() {
                self.notify(crate::config::notify::NEW, "new", &key, db);
            }
            return old;
        }
        self.store_quiet(db, entry, now)
    }

    fn store_quiet(&mut self, db: usize, entry: Entry, now: u64) -> Option<Entry> {
        let old = if self.tracking.active() || !self.watches.is_empty() {
            let key = entry.key().to_vec();
            let old = self.dbs[db].insert(entry, now);
            self.tracking.key_changed(&key);
            if !self.watches.is_empty() {
                // As Redis: a write to an expired key first deletes it, then adds it anew.
                if matches!(&old, Some(o) if o.is_expired(now)) {
                    self.watches.touch(db, &key, false);
                }
                self.watches.touch(db, &key, true);
            }
            old?
        } else {
            self.dbs[db].insert(entry, now)?
        };
        if old.is_expired(now) {
            self.stats.expired_keys += 1;
            return None;
        }
        Some(old)
    }

    /// Deletes a key; returns the entry if it existed and had not expired.
    pub fn remove(&mut self, db: usize, key: &[u8], now: u64) -> Option<Entry> {
        let e = self.dbs[db].remove(key)?;
        self.tracking.key_changed(key);
        if !self.watches.is_empty() {
            self.watches.touch(db, key, false);
        }
        if e.is_expired(now) {
            self.stats.expired_keys += 1;
            None
        } else {
            Some(e)
        }
    }

    /// Drops every key of one database (the tracking table goes too: FLUSHDB and FLUSHALL
    /// send a null invalidation instead).
    pub fn flush_db(&mut self, db: usize) {
        if !self.watches.is_empty() {
            let t = &self.dbs[db];
            self.watches.touch_db(db, |k| t.get(k).is_some(), None);
        }
        self.dbs[db].clear();
        self.expire_cursors[db] = 0;
        self.tracking.clear();
    }

    /// Accounts one executed command in this shard's stats and the latency monitor.
    #[inline]
    pub fn account(&mut self, cmd: &'static crate::command::Command, usec: u64, reply: &[u8]) {
        crate::stats::account(&mut self.stats, cmd, &self.globals.latency, usec, reply);
    }

    /// Exchanges the contents of two databases (SWAPDB), with their active-expiry positions.
    pub fn swap_dbs(&mut self, a: usize, b: usize) {
        if a != b && !self.watches.is_empty() {
            let now = now_ms();
            for (x, y) in [(a, b), (b, a)] {
                let (tx, ty) = (&self.dbs[x], &self.dbs[y]);
                let there = |k: &[u8]| ty.get(k).map(|e| e.is_expired(now));
                self.watches
                    .touch_db(x, |k| tx.get(k).is_some(), Some(&there));
            }
        }
        self.dbs.swap(a, b);
        self.expire_cursors.swap(a, b);
    }

    /// Active expiry: a time-budgeted sweep over databases with TTLs. Called by the shard's
    /// timer; spends at most `budget` and returns how many keys it removed.
    pub fn expire_tick(&mut self, budget: std::time::Duration) -> usize {
        let start = std::time::Instant::now();
        let now = now_ms();
        let mut removed_total = 0;
        for db in 0..self.dbs.len() {
            loop {
                if self.dbs[db].expires() == 0 || start.elapsed() >= budget {
                    break;
                }
                let mut cursor = self.expire_cursors[db];
                let tracking = &mut self.tracking;
                let track = tracking.active();
                let watches = &mut self.watches;
                let notify = self
                    .globals
                    .notify_flags
                    .load(std::sync::atomic::Ordering::Relaxed)
                    & crate::config::notify::EXPIRED
                    != 0;
                let mut expired = Vec::new();
                let (examined, removed) = self.dbs[db].expire_step(now, &mut cursor, 512, |e| {
                    if notify {
                        expired.push(e.key().to_vec());
                    }
                    if track {
                        tracking.key_changed(e.key());
                    }
                    if !watches.is_empty() {
                        watches.touch(db, e.key(), false);
                    }
                });
                for k in expired {
                    self.notify(crate::config::notify::EXPIRED, "expired", &k, db);
                }
                self.expire_cursors[db] = cursor;
                removed_total += removed;
                self.stats.expired_keys += removed as u64;
                // Like Redis: keep going only while a good share of what we look at is expired.
                if examined == 0 || removed * 10 < examined {
                    break;
                }
            }
            if start.elapsed() >= budget {
                break;
            }
        }
        self.tracking.flush_bcast();
        // Redis's activeExpireCycle reports its own duration as the `expire-cycle` event.
        let ms = start.elapsed().as_millis() as u64;
        self.globals.latency.add_if_needed("expire-cycle", ms);
        removed_total
    }

    /// Prefetches what looking up `keys` in `db` will touch, in three passes (index line, then
    /// entry, then the entry's heap blocks), so the cache misses of a pipeline overlap instead
    /// of being paid one after another. Only hints: wrong guesses cost a wasted prefetch.
    pub fn prefetch_keys(&self, db: usize, keys: &[&[u8]]) {
        let Some(t) = self.dbs.get(db) else { return };
        let mut hs = [0u64; 32];
        let n = keys.len().min(hs.len());
        for i in 0..n {
            hs[i] = t.hash(keys[i]);
            t.prefetch_hashed(hs[i]);
        }
        for &h in &hs[..n] {
            t.prefetch_entry_hashed(h);
        }
        for &h in &hs[..n] {
            if let Some(e) = t.candidate_hashed(h) {
                e.prefetch_heap();
            }
        }
    }

    /// Number of keys in `db` (including not-yet-reclaimed expired ones, like Redis's DBSIZE).
    pub fn db_len(&self, db: usize) -> usize {
        self.dbs[db].len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locks::key_fp;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn shard() -> Shard {
        let g = Globals::new(crate::config::Config::defaults(), Vec::new(), 0);
        Shard::new(0, 16, Arc::new(g))
    }

    struct Touch(Vec<u8>, Arc<AtomicUsize>);
    impl KeyedWork for Touch {
        fn need(&self) -> Need {
            Need::Keys(vec![(key_fp(&self.0), true)])
        }
        fn run(self: Box<Self>, _: &mut Shard) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn lock(s: &mut Shard, id: u64, need: Need) -> Arc<AtomicUsize> {
        let granted = Arc::new(AtomicUsize::new(0));
        let g = granted.clone();
        s.handle(ShardMsg::Lock(
            id,
            need,
            Box::new(move || {
                g.fetch_add(1, Ordering::SeqCst);
                true
            }),
        ));
        granted
    }

    #[test]
    fn work_on_a_locked_key_waits_for_unlock_and_other_keys_do_not() {
        let mut s = shard();
        let g1 = lock(&mut s, 1, Need::Keys(vec![(key_fp(b"a"), true)]));
        assert_eq!(g1.load(Ordering::SeqCst), 1);
        let ran_a = Arc::new(AtomicUsize::new(0));
        let ran_b = Arc::new(AtomicUsize::new(0));
        s.handle(ShardMsg::Keyed(Box::new(Touch(
            b"a".to_vec(),
            ran_a.clone(),
        ))));
        s.handle(ShardMsg::Keyed(Box::new(Touch(
            b"b".to_vec(),
            ran_b.clone(),
        ))));
        assert_eq!(
            ran_a.load(Ordering::SeqCst),
            0,
            "ran while its key was locked"
        );
        assert_eq!(ran_b.load(Ordering::SeqCst), 1, "an unrelated key waited");
        // A second transaction on the same key queues behind the waiting work.
        let g2 = lock(&mut s, 2, Need::Keys(vec![(key_fp(b"a"), true)]));
        assert_eq!(g2.load(Ordering::SeqCst), 0);
        // Whole-shard work waits for every lock.
        let ran_whole = Arc::new(AtomicUsize::new(0));
        let rw = ran_whole.clone();
        s.handle(ShardMsg::Run(Box::new(move |_| {
            rw.fetch_add(1, Ordering::SeqCst);
        })));
        assert_eq!(ran_whole.load(Ordering::SeqCst), 0);
        s.handle(ShardMsg::Unlock(1));
        assert_eq!(ran_a.load(Ordering::SeqCst), 1);
        assert_eq!(g2.load(Ordering::SeqCst), 1);
        assert_eq!(ran_whole.load(Ordering::SeqCst), 0);
        s.handle(ShardMsg::Unlock(2));
        assert_eq!(ran_whole.load(Ordering::SeqCst), 1);
        assert!(s.locks.idle());
    }

    #[test]
    fn a_grant_nobody_receives_takes_no_lock() {
        let mut s = shard();
        lock(&mut s, 1, Need::Whole(true));
        s.handle(ShardMsg::Lock(2, Need::Whole(true), Box::new(|| false)));
        s.handle(ShardMsg::Unlock(1));
        assert!(s.locks.idle(), "an abandoned request kept the shard locked");
    }
}
