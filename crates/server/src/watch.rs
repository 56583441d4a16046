//! WATCH: each shard's table of watched keys, and the flag a change sets for their watchers.
//!
//! A connection's WATCH registers `(db, key)` on the key's shard with the connection's
//! [`WatchFlag`]; every change to a key passes through the shard's mutation path
//! (`shard.rs`: `store`, `remove`, `KeyMut`'s drop, expiry, `flush_db`, `swap_dbs`), which
//! calls [`Watches::touch`] or [`Watches::touch_db`] and so sets the flag of every watcher of
//! that key: the connection's EXEC then fails. EXEC reads the flag while it holds the locks of
//! every shard it runs on, so a change either set the flag before EXEC looked or waits until
//! the transaction is over.
//!
//! This follows Redis 7.0's multi.c to the letter, including the `expired` mark of a key that
//! was already logically expired when it was watched (its deletion by expiry is then no
//! change) and EXEC's check for watched keys that expired since WATCH.
//!
//! Invariant: a registration holds the flag of one WATCH session; UNWATCH, EXEC, DISCARD,
//! RESET and disconnect start a new session (a new flag), so a registration still being
//! removed can only mark a flag nobody reads any more.

use crate::command::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A connection's "a watched key changed" flag (Redis's CLIENT_DIRTY_CAS) for one WATCH
/// session.
#[derive(Default, Debug)]
pub struct WatchFlag(AtomicBool);

impl WatchFlag {
    pub fn is_dirty(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn mark(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// For SWAPDB: whether a key is in the database taking another's place, and if so whether
/// it is expired there.
pub type Replacement<'a> = &'a dyn Fn(&[u8]) -> Option<bool>;

struct Watcher {
    flag: Arc<WatchFlag>,
    /// The key was logically expired (present but past its TTL) when it was watched.
    expired: bool,
}

/// One shard's watched keys: `(db, key)` -> watchers in the order they watched.
#[derive(Default)]
pub struct Watches {
    keys: HashMap<(usize, Box<[u8]>), Vec<Watcher>>,
}

impl Watches {
    /// Nothing is watched here: the mutation path's one check.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Watches `key` of `db` for `flag` (once per flag: Redis's `watchForKey`).
    pub fn add(&mut self, db: usize, key: &[u8], flag: &Arc<WatchFlag>, expired: bool) {
        let list = self.keys.entry((db, key.into())).or_default();
        if !list.iter().any(|w| Arc::ptr_eq(&w.flag, flag)) {
            list.push(Watcher {
                flag: flag.clone(),
                expired,
            });
        }
    }

    /// Removes `flag`'s registration of `key` of `db`.
    pub fn remove(&mut self, db: usize, key: &[u8], flag: &Arc<WatchFlag>) {
        let k = (db, Box::<[u8]>::from(key));
        if let Some(list) = self.keys.get_mut(&k) {
            list.retain(|w| !Arc::ptr_eq(&w.flag, flag));
            if list.is_empty() {
                self.keys.remove(&k);
            }
        }
    }

    /// `key` of `db` was changed; `exists` says whether it is in the table now (Redis's
    /// `touchWatchedKey`, called after the change).
    pub fn touch(&mut self, db: usize, key: &[u8], exists: bool) {
        let Some(list) = self.keys.get_mut(&(db, Box::<[u8]>::from(key))) else {
            return;
        };
        for w in list.iter_mut() {
            if w.expired {
                if !exists {
                    // The expired key is gone: logically nothing changed.
                    w.expired = false;
                    continue;
                }
                // Redis stops at the first such watcher (multi.c: `break`).
                break;
            }
            w.flag.mark();
        }
    }

    /// Database `db` is being emptied (FLUSHDB, FLUSHALL) or, with `replaced`, swapped with
    /// another (SWAPDB): Redis's `touchAllWatchedKeysInDb`, called before the change.
    /// `in_db(key)` says whether a key is in `db`'s table (expired or not); `replaced` gives
    /// the same for the database taking its place, and whether the key is expired there.
    pub fn touch_db(
        &mut self,
        db: usize,
        in_db: impl Fn(&[u8]) -> bool,
        replaced: Option<Replacement<'_>>,
    ) {
        for ((d, key), list) in self.keys.iter_mut() {
            if *d != db {
                continue;
            }
            let exists = in_db(key);
            // Some(expired) if the key is in the replacing database.
            let there = replaced.and_then(|f| f(key));
            if !exists && there.is_none() {
                continue;
            }
            for w in list.iter_mut() {
                if w.expired {
                    match there {
                        None => {
                            w.expired = false;
                            continue;
                        }
                        Some(true) => continue,
                        Some(false) => {}
                    }
                } else if !exists && there == Some(true) {
                    // A missing key replaced by an expired one.
                    w.expired = true;
                    continue;
                }
                w.flag.mark();
            }
        }
    }

    /// Whether a key `flag` watches here, not expired when watched, has expired since
    /// (`is_expired(db, key)`: present and past its TTL): Redis's `isWatchedKeyExpired`.
    pub fn any_expired(
        &self,
        flag: &Arc<WatchFlag>,
        keys: &[(usize, bytes::Bytes)],
        is_expired: impl Fn(usize, &[u8]) -> bool,
    ) -> bool {
        keys.iter().any(|(db, key)| {
            let Some(list) = self.keys.get(&(*db, Box::<[u8]>::from(&key[..]))) else {
                return false;
            };
            list.iter()
                .any(|w| Arc::ptr_eq(&w.flag, flag) && !w.expired && is_expired(*db, key))
        })
    }

    /// How many keys are watched here (all databases).
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_marks_every_watcher_once_registered() {
        let mut w = Watches::default();
        let (a, b) = (
            Arc::new(WatchFlag::default()),
            Arc::new(WatchFlag::default()),
        );
        w.add(0, b"k", &a, false);
        w.add(0, b"k", &a, false);
        w.add(0, b"k", &b, false);
        assert_eq!(w.len(), 1);
        w.touch(1, b"k", true);
        w.touch(0, b"other", true);
        assert!(!a.is_dirty() && !b.is_dirty(), "other db, other key");
        w.touch(0, b"k", true);
        assert!(a.is_dirty() && b.is_dirty());
        w.remove(0, b"k", &a);
        w.remove(0, b"k", &b);
        assert!(w.is_empty());
    }

    #[test]
    fn deleting_a_key_expired_when_watched_is_no_change_but_a_later_write_is() {
        let mut w = Watches::default();
        let f = Arc::new(WatchFlag::default());
        w.add(0, b"k", &f, true);
        w.touch(0, b"k", false);
        assert!(!f.is_dirty(), "expiry of an already expired key");
        w.touch(0, b"k", true);
        assert!(f.is_dirty(), "then a write");
    }

    #[test]
    fn flush_marks_watchers_of_present_keys_only() {
        let mut w = Watches::default();
        let (here, gone) = (
            Arc::new(WatchFlag::default()),
            Arc::new(WatchFlag::default()),
        );
        w.add(0, b"here", &here, false);
        w.add(0, b"gone", &gone, false);
        w.touch_db(0, |k| k == b"here", None);
        assert!(here.is_dirty());
        assert!(!gone.is_dirty());
    }

    #[test]
    fn swap_with_an_expired_key_marks_the_watcher_expired_instead_of_dirty() {
        let mut w = Watches::default();
        let f = Arc::new(WatchFlag::default());
        w.add(0, b"k", &f, false);
        let expired_there = |_: &[u8]| Some(true);
        w.touch_db(0, |_| false, Some(&expired_there));
        assert!(!f.is_dirty());
        let k = [(0, bytes::Bytes::from_static(b"k"))];
        assert!(!w.any_expired(&f, &k, |_, _| true), "now marked expired");
        let live_there = |_: &[u8]| Some(false);
        w.touch_db(0, |_| true, Some(&live_there));
        assert!(f.is_dirty(), "an expired key replaced by a live one");
    }

    #[test]
    fn any_expired_ignores_keys_expired_when_watched() {
        let mut w = Watches::default();
        let f = Arc::new(WatchFlag::default());
        let keys = [
            (0, bytes::Bytes::from_static(b"old")),
            (0, bytes::Bytes::from_static(b"live")),
        ];
        w.add(0, b"old", &f, true);
        w.add(0, b"live", &f, false);
        assert!(!w.any_expired(&f, &keys, |_, k| k == b"old"));
        assert!(w.any_expired(&f, &keys, |_, k| k == b"live"));
    }
}
