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
//! Multi-shard transactions lock a shard (`lock_owner`); while locked, messages not tagged with
//! the owner's transaction id are parked in arrival order and run at unlock.
//!
//! Invariant: shard data is touched only on the shard's own thread, and only through `&mut
//! Shard` borrows that never span an `.await`.

use crate::globals::Globals;
use damselfly_core::{Entry, Table};
use std::cell::RefCell;
use std::collections::VecDeque;

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::rc::Rc;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// Work for a shard, run on its thread.
pub type ShardFn = Box<dyn FnOnce(&mut Shard) + Send>;

/// What travels through a shard's inbox.
pub enum ShardMsg {
    /// Ordinary work; parked while another transaction holds the shard.
    Run(ShardFn),
    /// Work of transaction `id`, which holds (or is about to hold) the lock.
    TxRun(u64, ShardFn),
    /// Take the shard for transaction `id`; the callback acknowledges.
    Lock(u64, ShardFn),
    /// Release the shard; parked work then runs in order.
    Unlock(u64),
}

/// The sending side of a shard's inbox.
pub type ShardInbox = UnboundedSender<ShardMsg>;

/// Per-command counters for INFO commandstats.
#[derive(Default, Clone, Debug)]
pub struct CmdStat {
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
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
        }
        for (k, v) in &o.errorstats {
            *self.errorstats.entry(k.clone()).or_default() += v;
        }
    }
}

/// One shard's state.
pub struct Shard {
    pub id: usize,
    pub dbs: Vec<Table>,
    pub stats: ThreadStats,
    pub globals: Arc<Globals>,
    lock_owner: Option<u64>,
    parked: VecDeque<ShardFn>,
    expire_cursors: Vec<usize>,
    rng: u64,
}

pub type ShardRef = Rc<RefCell<Shard>>;

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
            globals,
            lock_owner: None,
            parked: VecDeque::new(),
            expire_cursors: vec![0; dbnum],
            rng: 0x9E37_79B9_7F4A_7C15
                ^ (id as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9)
                ^ now_ms(),
        }
    }

    /// True when a transaction other than `tx` holds this shard.
    pub fn is_locked_for(&self, tx: Option<u64>) -> bool {
        match self.lock_owner {
            None => false,
            Some(o) => Some(o) != tx,
        }
    }

    /// Handles one inbox message.
    pub fn handle(&mut self, msg: ShardMsg) {
        match msg {
            ShardMsg::Run(f) => {
                if self.lock_owner.is_some() {
                    self.parked.push_back(f);
                } else {
                    f(self);
                }
            }
            ShardMsg::TxRun(_, f) => f(self),
            ShardMsg::Lock(id, ack) => {
                debug_assert!(self.lock_owner.is_none());
                self.lock_owner = Some(id);
                ack(self);
            }
            ShardMsg::Unlock(id) => {
                if self.lock_owner == Some(id) {
                    self.lock_owner = None;
                    while self.lock_owner.is_none() {
                        match self.parked.pop_front() {
                            Some(f) => f(self),
                            None => break,
                        }
                    }
                }
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

    // ---- the mutation path -------------------------------------------------------------

    /// Removes `key` if it has expired; returns true if it did.
    fn expire_if_needed(&mut self, db: usize, key: &[u8], now: u64) -> bool {
        let expired = matches!(self.dbs[db].get(key), Some(e) if e.is_expired(now));
        if expired {
            self.dbs[db].remove(key);
            self.stats.expired_keys += 1;
        }
        expired
    }

    /// Looks a key up for reading: lazily expires it and counts a keyspace hit or miss.
    pub fn lookup_read(&mut self, db: usize, key: &[u8], now: u64) -> Option<&Entry> {
        self.expire_if_needed(db, key, now);
        match self.dbs[db].get(key) {
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
        self.expire_if_needed(db, key, now);
        self.dbs[db].get(key)
    }

    /// Looks a key up for change.
    pub fn lookup_write(
        &mut self,
        db: usize,
        key: &[u8],
        now: u64,
    ) -> Option<damselfly_core::table::EntryMut<'_>> {
        self.expire_if_needed(db, key, now);
        self.dbs[db].get_mut(key)
    }

    /// Stores an entry, replacing any previous value of its key.
    pub fn store(&mut self, db: usize, entry: Entry, now: u64) -> Option<Entry> {
        self.dbs[db].insert(entry, now)
    }

    /// Deletes a key; returns the entry if it existed and had not expired.
    pub fn remove(&mut self, db: usize, key: &[u8], now: u64) -> Option<Entry> {
        let e = self.dbs[db].remove(key)?;
        if e.is_expired(now) {
            self.stats.expired_keys += 1;
            None
        } else {
            Some(e)
        }
    }

    /// Drops every key of one database.
    pub fn flush_db(&mut self, db: usize) {
        self.dbs[db].clear();
        self.expire_cursors[db] = 0;
    }

    /// Exchanges the contents of two databases (SWAPDB), with their active-expiry positions.
    pub fn swap_dbs(&mut self, a: usize, b: usize) {
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
                let (examined, removed) = self.dbs[db].expire_step(now, &mut cursor, 512, |_| {});
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
        removed_total
    }

    /// Number of keys in `db` (including not-yet-reclaimed expired ones, like Redis's DBSIZE).
    pub fn db_len(&self, db: usize) -> usize {
        self.dbs[db].len()
    }
}
