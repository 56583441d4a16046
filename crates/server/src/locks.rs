//! Per-shard intent locks: how multi-shard commands stay atomic without a global lock.
//!
//! A multi-shard transaction (MSET, DEL of many keys, RENAME across shards, SWAPDB...) takes
//! locks on every shard it touches *in ascending shard order*, one shard at a time, and holds
//! them until it ends. On a shard it locks either a set of keys (by 64-bit fingerprint, shared
//! for reads, exclusive for writes) or the whole shard. Work that arrives at a shard while
//! locks are held runs at once if it does not touch a locked key; otherwise it waits in the
//! shard's queue, in arrival order, and runs when the locks it needs are released. So two
//! MSETs of unrelated keys overlap fully, a GET of a key that an MSET is writing waits until
//! the whole MSET is applied (no client can see half of it), and single-shard commands on a
//! shard without locks pay one branch.
//!
//! This is Dragonfly's VLL idea reduced to what we need: Dragonfly orders transactions by a
//! global id and runs them through per-shard queues; we get the same deadlock freedom from the
//! fixed shard order (a transaction waiting on shard `s` holds locks only on shards below `s`,
//! and everything it waits for only ever waits on shards above `s`). The waiting queue is fair:
//! a request is granted only if it is compatible with the current holders *and* with every
//! request queued before it, so a whole-shard request (SWAPDB, FLUSHALL, INFO's fan-out) cannot
//! be starved by a stream of key locks. Fingerprints ignore the database number and may collide;
//! both only ever make a request wait longer, never run when it should not.
//!
//! Invariant: a granted request is recorded under its transaction id until `release`, and the
//! queue is re-examined after every release.

use std::collections::VecDeque;
use std::hash::BuildHasher;

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

/// A key's lock fingerprint.
pub type Fp = u64;

/// The fingerprint of a key (fixed seed: every shard and connection computes the same one).
#[inline]
pub fn key_fp(key: &[u8]) -> Fp {
    foldhash::fast::FixedState::with_seed(0x5f3c_9a1d_27e4_b86b).hash_one(key)
}

/// What a request needs on one shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// These keys: (fingerprint, exclusive).
    Keys(Vec<(Fp, bool)>),
    /// The whole shard (exclusive if true).
    Whole(bool),
}

impl Need {
    /// True when two needs can be held at the same time.
    pub fn compatible(&self, other: &Need) -> bool {
        match (self, other) {
            (Need::Whole(a), Need::Whole(b)) => !a && !b,
            (Need::Whole(excl), Need::Keys(k)) | (Need::Keys(k), Need::Whole(excl)) => {
                k.is_empty() || (!excl && k.iter().all(|&(_, x)| !x))
            }
            (Need::Keys(a), Need::Keys(b)) => a
                .iter()
                .all(|&(fa, xa)| b.iter().all(|&(fb, xb)| fa != fb || (!xa && !xb))),
        }
    }
}

#[derive(Default, Clone, Copy, Debug)]
struct Hold {
    shared: u32,
    excl: u32,
}

/// One shard's lock table plus its queue of waiting requests (`W` is what waits: a transaction's
/// grant callback or a parked job).
pub struct Locks<W> {
    keys: HashMap<Fp, Hold>,
    whole: Hold,
    /// Key holds in total (a whole-shard request must wait for all of them).
    key_holds: usize,
    key_excl_holds: usize,
    owners: HashMap<u64, Need>,
    waiting: VecDeque<(Need, W)>,
}

impl<W> Default for Locks<W> {
    fn default() -> Self {
        Locks {
            keys: HashMap::default(),
            whole: Hold::default(),
            key_holds: 0,
            key_excl_holds: 0,
            owners: HashMap::default(),
            waiting: VecDeque::new(),
        }
    }
}

impl<W> Locks<W> {
    /// No holders and nobody waiting: anything may run (the single-shard fast path).
    #[inline]
    pub fn idle(&self) -> bool {
        self.owners.is_empty() && self.waiting.is_empty()
    }

    /// Transactions holding locks here.
    pub fn holders(&self) -> usize {
        self.owners.len()
    }

    /// Requests waiting here.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    fn compatible_with_holds(&self, need: &Need) -> bool {
        match need {
            Need::Whole(true) => {
                self.key_holds == 0 && self.whole.shared == 0 && self.whole.excl == 0
            }
            Need::Whole(false) => self.key_excl_holds == 0 && self.whole.excl == 0,
            Need::Keys(k) => {
                if k.is_empty() {
                    return true;
                }
                if self.whole.excl > 0 {
                    return false;
                }
                if self.whole.shared > 0 && k.iter().any(|&(_, x)| x) {
                    return false;
                }
                k.iter().all(|&(fp, x)| match self.keys.get(&fp) {
                    None => true,
                    Some(h) => h.excl == 0 && (!x || h.shared == 0),
                })
            }
        }
    }

    /// True when `need` may be granted now: compatible with the holders and with every request
    /// already waiting (so nothing waiting is overtaken by a conflicting newcomer).
    pub fn can_grant(&self, need: &Need) -> bool {
        self.compatible_with_holds(need) && self.waiting.iter().all(|(w, _)| w.compatible(need))
    }

    /// Records `need` as held by transaction `tx` (the caller checked `can_grant`, or is
    /// draining the queue).
    pub fn acquire(&mut self, tx: u64, need: Need) {
        match &need {
            Need::Whole(true) => self.whole.excl += 1,
            Need::Whole(false) => self.whole.shared += 1,
            Need::Keys(k) => {
                for &(fp, x) in k {
                    let h = self.keys.entry(fp).or_default();
                    if x {
                        h.excl += 1;
                        self.key_excl_holds += 1;
                    } else {
                        h.shared += 1;
                    }
                    self.key_holds += 1;
                }
            }
        }
        // A transaction locks a shard once; a second acquire (not done by `Tx`) would leak.
        debug_assert!(!self.owners.contains_key(&tx));
        self.owners.insert(tx, need);
    }

    /// Releases what `tx` holds; returns false if it held nothing here.
    pub fn release(&mut self, tx: u64) -> bool {
        let Some(need) = self.owners.remove(&tx) else {
            return false;
        };
        match need {
            Need::Whole(true) => self.whole.excl -= 1,
            Need::Whole(false) => self.whole.shared -= 1,
            Need::Keys(k) => {
                for (fp, x) in k {
                    if let Some(h) = self.keys.get_mut(&fp) {
                        if x {
                            h.excl = h.excl.saturating_sub(1);
                            self.key_excl_holds = self.key_excl_holds.saturating_sub(1);
                        } else {
                            h.shared = h.shared.saturating_sub(1);
                        }
                        self.key_holds = self.key_holds.saturating_sub(1);
                        if h.excl == 0 && h.shared == 0 {
                            self.keys.remove(&fp);
                        }
                    }
                }
            }
        }
        true
    }

    /// Queues a request that cannot be granted yet.
    pub fn wait(&mut self, need: Need, w: W) {
        self.waiting.push_back((need, w));
    }

    /// Removes and returns the first waiting request that can be granted now (compatible with
    /// the holders and with every request still waiting before it), or None.
    pub fn next_grantable(&mut self) -> Option<(Need, W)> {
        let mut idx = None;
        for (i, (need, _)) in self.waiting.iter().enumerate() {
            if self.compatible_with_holds(need)
                && self.waiting.iter().take(i).all(|(w, _)| w.compatible(need))
            {
                idx = Some(i);
                break;
            }
        }
        self.waiting.remove(idx?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[(&[u8], bool)]) -> Need {
        Need::Keys(k.iter().map(|&(k, x)| (key_fp(k), x)).collect())
    }

    #[test]
    fn unrelated_keys_do_not_conflict() {
        let mut l: Locks<u32> = Locks::default();
        assert!(l.idle());
        l.acquire(1, keys(&[(b"a", true), (b"b", true)]));
        assert!(!l.idle());
        assert!(l.can_grant(&keys(&[(b"c", true)])));
        assert!(!l.can_grant(&keys(&[(b"b", false)])));
        assert!(!l.can_grant(&Need::Whole(false)));
        assert!(l.release(1));
        assert!(l.idle());
        assert!(!l.release(1));
    }

    #[test]
    fn shared_locks_share() {
        let mut l: Locks<u32> = Locks::default();
        l.acquire(1, keys(&[(b"a", false)]));
        l.acquire(2, keys(&[(b"a", false)]));
        assert!(l.can_grant(&keys(&[(b"a", false)])));
        assert!(!l.can_grant(&keys(&[(b"a", true)])));
        assert!(l.can_grant(&Need::Whole(false)));
        assert!(!l.can_grant(&Need::Whole(true)));
        l.release(1);
        assert!(!l.can_grant(&keys(&[(b"a", true)])));
        l.release(2);
        assert!(l.can_grant(&keys(&[(b"a", true)])));
    }

    #[test]
    fn queue_is_fair_to_whole_shard_requests() {
        let mut l: Locks<u32> = Locks::default();
        l.acquire(1, keys(&[(b"a", true)]));
        // A whole-shard request waits for the holder...
        assert!(!l.can_grant(&Need::Whole(true)));
        l.wait(Need::Whole(true), 7);
        // ...and a newcomer on an unrelated key may not overtake it.
        assert!(!l.can_grant(&keys(&[(b"z", true)])));
        l.wait(keys(&[(b"z", true)]), 8);
        assert!(l.next_grantable().is_none());
        l.release(1);
        let (need, w) = l.next_grantable().expect("whole request first");
        assert_eq!((need.clone(), w), (Need::Whole(true), 7));
        l.acquire(2, need);
        assert!(l.next_grantable().is_none());
        l.release(2);
        assert_eq!(l.next_grantable().map(|x| x.1), Some(8));
        assert!(l.idle());
    }

    #[test]
    fn waiters_that_do_not_conflict_with_earlier_waiters_proceed() {
        let mut l: Locks<u32> = Locks::default();
        l.acquire(1, keys(&[(b"a", true)]));
        l.wait(keys(&[(b"a", false)]), 1);
        l.wait(keys(&[(b"b", true)]), 2);
        assert_eq!(l.next_grantable().map(|x| x.1), Some(2));
        assert!(l.next_grantable().is_none());
        l.release(1);
        assert_eq!(l.next_grantable().map(|x| x.1), Some(1));
    }

    #[test]
    fn empty_key_sets_never_conflict() {
        let mut l: Locks<u32> = Locks::default();
        l.acquire(1, Need::Whole(true));
        assert!(l.can_grant(&Need::Keys(Vec::new())));
        assert!(!l.can_grant(&keys(&[(b"a", false)])));
    }
}
