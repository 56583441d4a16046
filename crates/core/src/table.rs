//! The per-shard keyspace table: extendible hashing over small segments.
//!
//! Why our own (and not one big `hashbrown` map): a single hash map rehashes everything when it
//! grows, which doubles memory for a moment and stalls the shard for the whole copy (a p99.9
//! spike while a 5M-key table fills). Here the table is a directory of segments, as in
//! Dragonfly's Dashtable; a full segment splits alone into two, touching at most `SEG_MAX`
//! entries, so growth cost is bounded and memory grows smoothly.
//!
//! A segment keeps its entries densely in a `Vec<Entry>` (32 bytes each, no holes: removal
//! swaps the last entry in) plus a small `SlotIndex` of `u16` positions (see `index.rs`), sized
//! with the entry capacity at about 3.05 index bytes per slot, so a key costs about 32 + 4 bytes
//! at the average load, where a map of fat entries would pay its empty slots at full entry size.
//!
//! Lookup cost: a cold lookup reads one index cache line (21 tags and their positions side by
//! side) and then the entry. The index is ours rather than `hashbrown::HashTable<u16>` because
//! hashbrown keeps the `u16` buckets kilobytes away from the control bytes, which made three
//! cache misses per lookup (control group, bucket, entry), and it gives no address to
//! prefetch. With the index line known from the hash alone, `prefetch` and `prefetch_entry`
//! let a caller holding a batch of keys (a pipeline) overlap those misses.
//!
//! Hash use: the top bits of a key's 64-bit hash pick the segment (the directory has
//! 2^global_depth slots); the low 32 bits feed the segment's index (group and tag), so they
//! stay independent of the directory bits. A SCAN cursor is a position in hash
//! space (the top 54 bits): a segment split only cuts a range in two, so a cursor stays valid
//! while the table grows, and every key present for the whole scan is returned.
//!
//! Snapshot support: every segment carries a version stamp, bumped through the one mutation
//! path (`get_mut`, `insert`, `remove`) before any change, so a fork-less snapshot can
//! serialize a segment before its first change (our "bucket" is the segment).
//!
//! Invariant: for every segment, `index` holds exactly one position for each element of
//! `entries`, and every entry's hash prefix maps to its segment through the directory.

use crate::entry::Entry;
use crate::index::{prefetch_read, SlotIndex};
use std::hash::BuildHasher;

/// Entries per segment before it splits (the index then has 196 groups of 21 slots, 7/8 full).
pub const SEG_MAX: usize = 3584;
/// Bits of hash used as a SCAN position.
pub const POS_BITS: u32 = 54;
/// Past this local depth a segment stops splitting (only reachable with colliding hashes).
const MAX_DEPTH: u8 = 40;

struct Segment {
    local_depth: u8,
    version: u64,
    entries: Vec<Entry>,
    index: SlotIndex,
}

impl Segment {
    fn new(local_depth: u8, cap: usize) -> Segment {
        Segment {
            local_depth,
            version: 0,
            entries: Vec::with_capacity(cap),
            index: SlotIndex::with_capacity(cap),
        }
    }
}

/// A process-wide random seed, so hash flooding cannot be planned from outside.
fn seed() -> u64 {
    use std::sync::OnceLock;
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let s = std::collections::hash_map::RandomState::new();
        s.hash_one(0x5eed_u64)
    })
}

/// A mutable borrow of an entry that keeps the table's TTL count right when it is dropped.
pub struct EntryMut<'a> {
    entry: &'a mut Entry,
    expires: &'a mut usize,
    had_ttl: bool,
}

impl std::ops::Deref for EntryMut<'_> {
    type Target = Entry;
    fn deref(&self) -> &Entry {
        self.entry
    }
}

impl std::ops::DerefMut for EntryMut<'_> {
    fn deref_mut(&mut self) -> &mut Entry {
        self.entry
    }
}

impl Drop for EntryMut<'_> {
    fn drop(&mut self) {
        let has = self.entry.ttl().is_some();
        if has && !self.had_ttl {
            *self.expires += 1;
        } else if !has && self.had_ttl {
            *self.expires -= 1;
        }
    }
}

/// The segmented table of one database on one shard.
pub struct Table {
    dir: Vec<u32>,
    global_depth: u8,
    segs: Vec<Segment>,
    len: usize,
    expires: usize,
    clock: u64,
    hasher: foldhash::fast::FixedState,
}

impl Default for Table {
    fn default() -> Self {
        Self::new()
    }
}

impl Table {
    pub fn new() -> Table {
        Table {
            dir: vec![0],
            global_depth: 0,
            segs: vec![Segment::new(0, 0)],
            len: 0,
            expires: 0,
            clock: 0,
            hasher: foldhash::fast::FixedState::with_seed(seed()),
        }
    }

    /// Number of keys (including expired ones not yet reclaimed).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of keys that carry a TTL.
    pub fn expires(&self) -> usize {
        self.expires
    }

    /// Number of segments (for INFO and tests).
    pub fn segments(&self) -> usize {
        self.segs.len()
    }

    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline]
    fn seg_of(&self, h: u64) -> usize {
        if self.global_depth == 0 {
            self.dir[0] as usize
        } else {
            self.dir[(h >> (64 - self.global_depth as u32)) as usize] as usize
        }
    }

    #[inline]
    fn find(&self, h: u64, key: &[u8]) -> Option<(usize, usize)> {
        let s = self.seg_of(h);
        let seg = &self.segs[s];
        seg.index
            .find(h, |i| {
                seg.entries.get(i as usize).is_some_and(|e| e.key() == key)
            })
            .map(|i| (s, i as usize))
    }

    fn bump(&mut self, s: usize) {
        // Pre-mutation hook: a snapshot in progress serializes the segment here (later issue).
        self.clock += 1;
        self.segs[s].version = self.clock;
    }

    /// Looks a key up.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.get_hashed(self.hash(key), key)
    }

    /// `get` with the key's hash already computed by `hash` (a wrong hash just misses).
    #[inline]
    pub fn get_hashed(&self, h: u64, key: &[u8]) -> Option<&Entry> {
        self.find(h, key).map(|(s, i)| &self.segs[s].entries[i])
    }

    /// Batch lookups, step 1: prefetches the index line a lookup of `key` reads first. Call it
    /// for every key of a batch, then `prefetch_entry` for every key, then `get`: the misses of
    /// the batch overlap instead of queueing. Cheap, never panics, changes nothing.
    #[inline]
    pub fn prefetch(&self, key: &[u8]) {
        self.prefetch_hashed(self.hash(key));
    }

    /// `prefetch` with the hash already computed by `hash`.
    #[inline]
    pub fn prefetch_hashed(&self, h: u64) {
        if let Some(seg) = self.segs.get(self.seg_of(h)) {
            seg.index.prefetch(h);
        }
    }

    /// Batch lookups, step 2: reads the index line of `key` (in cache after `prefetch`) and
    /// prefetches the entry of the first tag match, the likely hit. Never panics.
    #[inline]
    pub fn prefetch_entry(&self, key: &[u8]) {
        self.prefetch_entry_hashed(self.hash(key));
    }

    /// `prefetch_entry` with the hash already computed by `hash`.
    #[inline]
    pub fn prefetch_entry_hashed(&self, h: u64) {
        if let Some(e) = self.candidate_hashed(h) {
            prefetch_read(e as *const Entry);
        }
    }

    /// The likely entry for hash `h`: the first tag match in its home index group, keys not
    /// compared, so it may be another key's entry (or `None` for a present key that overflowed
    /// its home group). For prefetching only; use `get_hashed` for answers. Never panics.
    #[inline]
    pub fn candidate_hashed(&self, h: u64) -> Option<&Entry> {
        let seg = self.segs.get(self.seg_of(h))?;
        seg.entries.get(seg.index.first_candidate(h)? as usize)
    }

    /// Looks a key up for change (marks its segment as mutated).
    pub fn get_mut(&mut self, key: &[u8]) -> Option<EntryMut<'_>> {
        self.get_mut_hashed(self.hash(key), key)
    }

    /// `get_mut` with the key's hash already computed by `hash`.
    pub fn get_mut_hashed(&mut self, h: u64, key: &[u8]) -> Option<EntryMut<'_>> {
        let (s, i) = self.find(h, key)?;
        self.bump(s);
        let entry = &mut self.segs[s].entries[i];
        let had_ttl = entry.ttl().is_some();
        Some(EntryMut {
            entry,
            expires: &mut self.expires,
            had_ttl,
        })
    }

    /// Inserts or replaces; returns the previous entry of that key. `now_ms` lets a full
    /// segment reclaim expired entries before it splits.
    pub fn insert(&mut self, entry: Entry, now_ms: u64) -> Option<Entry> {
        let h = self.hash(entry.key());
        if entry.ttl().is_some() {
            self.expires += 1;
        }
        if let Some((s, i)) = self.find(h, entry.key()) {
            self.bump(s);
            let old = std::mem::replace(&mut self.segs[s].entries[i], entry);
            if old.ttl().is_some() {
                self.expires -= 1;
            }
            return Some(old);
        }
        self.insert_new(h, entry, now_ms);
        None
    }

    fn insert_new(&mut self, h: u64, entry: Entry, now_ms: u64) {
        loop {
            let s = self.seg_of(h);
            if self.segs[s].entries.len() >= SEG_MAX && self.segs[s].local_depth < MAX_DEPTH {
                if self.reclaim_expired(s, now_ms) == 0 {
                    self.split(s, h);
                }
                continue;
            }
            self.bump(s);
            let hasher = &self.hasher;
            let Segment { entries, index, .. } = &mut self.segs[s];
            if entries.len() == entries.capacity() {
                let cap = entries.capacity();
                let want = (cap + cap / 4).clamp(4, SEG_MAX);
                entries.reserve_exact(want.saturating_sub(cap).max(1));
                // The index follows the entry capacity (it rehashes only past its own).
                index.reserve(entries.capacity(), |i| {
                    hasher.hash_one(entries[i as usize].key())
                });
            }
            let pos = entries.len() as u16;
            entries.push(entry);
            index.insert(h, pos, |i| hasher.hash_one(entries[i as usize].key()));
            self.len += 1;
            return;
        }
    }

    /// Removes expired entries of segment `s`; returns how many.
    fn reclaim_expired(&mut self, s: usize, now_ms: u64) -> usize {
        let mut n = 0;
        let mut i = self.segs[s].entries.len();
        while i > 0 {
            i -= 1;
            if self.segs[s].entries[i].is_expired(now_ms) {
                drop(self.remove_at(s, i));
                n += 1;
            }
        }
        n
    }

    /// Splits segment `s`, which holds the hash `h`, in two by the next hash bit.
    fn split(&mut self, s: usize, h: u64) {
        let ld = self.segs[s].local_depth;
        if ld == self.global_depth {
            let old = std::mem::take(&mut self.dir);
            self.dir = (0..old.len() * 2).map(|j| old[j >> 1]).collect();
            self.global_depth += 1;
        }
        let gd = self.global_depth;
        let bit = 63 - ld as u32;
        let old_entries = std::mem::take(&mut self.segs[s].entries);
        let hashes: Vec<u64> = old_entries
            .iter()
            .map(|e| self.hasher.hash_one(e.key()))
            .collect();
        let ones = hashes.iter().filter(|&&x| (x >> bit) & 1 == 1).count();
        let zeros = hashes.len() - ones;
        let mut keep = Segment::new(ld + 1, zeros + zeros / 8);
        let mut moved = Segment::new(ld + 1, ones + ones / 8);
        for (e, hv) in old_entries.into_iter().zip(hashes) {
            let seg = if (hv >> bit) & 1 == 1 {
                &mut moved
            } else {
                &mut keep
            };
            let pos = seg.entries.len() as u16;
            seg.entries.push(e);
            let hasher = &self.hasher;
            let Segment { entries, index, .. } = seg;
            index.insert(hv, pos, |i| hasher.hash_one(entries[i as usize].key()));
        }
        self.clock += 1;
        keep.version = self.clock;
        moved.version = self.clock;
        self.segs[s] = keep;
        let new_id = self.segs.len() as u32;
        self.segs.push(moved);
        // The directory slots of `s` form one aligned run; its upper half now points to the new one.
        let span = 1usize << (gd - ld);
        let start = ((h >> (64 - gd as u32)) as usize) & !(span - 1);
        for d in &mut self.dir[start + span / 2..start + span] {
            *d = new_id;
        }
    }

    fn remove_at(&mut self, s: usize, i: usize) -> Entry {
        self.bump(s);
        let hasher = &self.hasher;
        let Segment { entries, index, .. } = &mut self.segs[s];
        let h = hasher.hash_one(entries[i].key());
        index.remove(h, i as u16);
        let last = entries.len() - 1;
        let e = entries.swap_remove(i);
        if i != last {
            let hm = hasher.hash_one(entries[i].key());
            index.replace_pos(hm, last as u16, i as u16);
        }
        if entries.capacity() > 64 && entries.len() * 2 < entries.capacity() {
            let target = entries.len() + entries.len() / 4;
            entries.shrink_to(target);
            index.shrink_to(target, |j| hasher.hash_one(entries[j as usize].key()));
        }
        self.len -= 1;
        if e.ttl().is_some() {
            self.expires -= 1;
        }
        e
    }

    /// Removes a key; returns its entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        self.remove_hashed(self.hash(key), key)
    }

    /// `remove` with the key's hash already computed by `hash`.
    pub fn remove_hashed(&mut self, h: u64, key: &[u8]) -> Option<Entry> {
        let (s, i) = self.find(h, key)?;
        Some(self.remove_at(s, i))
    }

    /// Drops every key.
    pub fn clear(&mut self) {
        *self = Table::new();
    }

    /// Iterates all entries (in no particular order).
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.segs.iter().flat_map(|s| s.entries.iter())
    }

    /// One SCAN step from `cursor` (a position below 2^54; 0 starts). Visits at least `count`
    /// entries if that many remain, continuing to the end of the current eighth of a segment
    /// (COUNT is a hint, as in Redis). Returns the next cursor, 0 when the scan is complete.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&Entry)) -> u64 {
        let mut pos = cursor & ((1u64 << POS_BITS) - 1);
        let mut emitted = 0usize;
        loop {
            let s = self.seg_of(pos << (64 - POS_BITS));
            let seg = &self.segs[s];
            let ld = (seg.local_depth as u32).min(POS_BITS);
            let width = 1u64 << (POS_BITS - ld);
            let seg_lo = pos & !(width - 1);
            let seg_hi = seg_lo + width;
            let mut items: Vec<(u64, usize)> = seg
                .entries
                .iter()
                .enumerate()
                .map(|(i, e)| (self.hasher.hash_one(e.key()) >> (64 - POS_BITS), i))
                .filter(|&(p, _)| p >= pos)
                .collect();
            items.sort_unstable();
            let eighth = (width / 8).max(1);
            let mut stop_at: Option<u64> = None;
            for (p, i) in items {
                if let Some(limit) = stop_at {
                    if p >= limit {
                        return p;
                    }
                }
                visit(&seg.entries[i]);
                emitted += 1;
                if emitted >= count && stop_at.is_none() {
                    // Finish the current eighth of the segment, then stop.
                    stop_at = Some(seg_lo + ((p - seg_lo) / eighth + 1) * eighth);
                }
            }
            if seg_hi >= 1u64 << POS_BITS {
                return 0;
            }
            pos = seg_hi;
            if emitted >= count {
                return pos;
            }
        }
    }

    /// A pseudo-random entry chosen with `r` (uniform over segments, then within one).
    pub fn random(&self, r: u64) -> Option<&Entry> {
        if self.len == 0 {
            return None;
        }
        let n = self.segs.len();
        let start = (r as usize) % n;
        for k in 0..n {
            let seg = &self.segs[(start + k) % n];
            if !seg.entries.is_empty() {
                return Some(&seg.entries[((r >> 32) as usize) % seg.entries.len()]);
            }
        }
        None
    }

    /// Active expiry: examines up to `budget` entries starting at `*cursor` (a segment number,
    /// kept by the caller between calls) and removes expired ones, handing each to `on_expired`.
    /// Returns (examined, removed).
    pub fn expire_step(
        &mut self,
        now_ms: u64,
        cursor: &mut usize,
        budget: usize,
        mut on_expired: impl FnMut(Entry),
    ) -> (usize, usize) {
        if self.expires == 0 {
            return (0, 0);
        }
        let mut examined = 0;
        let mut removed = 0;
        let nsegs = self.segs.len();
        let mut visited_segs = 0;
        while examined < budget && visited_segs < nsegs {
            let s = *cursor % nsegs;
            let mut i = self.segs[s].entries.len();
            while i > 0 {
                i -= 1;
                examined += 1;
                if self.segs[s].entries[i].is_expired(now_ms) {
                    on_expired(self.remove_at(s, i));
                    removed += 1;
                }
            }
            *cursor = (s + 1) % nsegs;
            visited_segs += 1;
        }
        (examined, removed)
    }

    /// The version stamp of the segment that holds `key`'s hash.
    pub fn version_of(&self, key: &[u8]) -> u64 {
        self.segs[self.seg_of(self.hash(key))].version
    }

    /// Approximate bytes held by the table structure itself (not values' heap blocks).
    pub fn overhead_bytes(&self) -> usize {
        self.dir.capacity() * 4
            + self.segs.capacity() * std::mem::size_of::<Segment>()
            + self
                .segs
                .iter()
                .map(|s| s.entries.capacity() * 32 + s.index.memory_bytes())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::NewValue;
    use std::collections::{BTreeSet, HashMap};

    fn e(k: &str) -> Entry {
        Entry::new(k.as_bytes(), NewValue::Str(b"v"), None)
    }

    #[test]
    fn grows_by_splitting_and_finds_everything() {
        let mut t = Table::new();
        for i in 0..50_000 {
            assert!(t.insert(e(&format!("key:{i}")), 0).is_none());
        }
        assert_eq!(t.len(), 50_000);
        assert!(t.segments() > 10);
        for i in 0..50_000 {
            assert!(t.get(format!("key:{i}").as_bytes()).is_some());
        }
        for i in (0..50_000).step_by(2) {
            assert!(t.remove(format!("key:{i}").as_bytes()).is_some());
        }
        assert_eq!(t.len(), 25_000);
        for i in 0..50_000 {
            assert_eq!(t.get(format!("key:{i}").as_bytes()).is_some(), i % 2 == 1);
        }
    }

    #[test]
    fn scan_survives_growth() {
        let mut t = Table::new();
        for i in 0..5000 {
            t.insert(e(&format!("old:{i}")), 0);
        }
        let mut seen = BTreeSet::new();
        let mut cursor = 0;
        let mut n = 0;
        loop {
            cursor = t.scan(cursor, 10, |en| {
                seen.insert(en.key().to_vec());
            });
            // Grow the table while scanning.
            for _ in 0..50 {
                t.insert(e(&format!("new:{n}")), 0);
                n += 1;
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..5000 {
            assert!(
                seen.contains(format!("old:{i}").as_bytes()),
                "missing old:{i}"
            );
        }
    }

    #[test]
    fn ttl_count_and_expiry() {
        let mut t = Table::new();
        for i in 0..100 {
            t.insert(
                Entry::new(
                    format!("k{i}").as_bytes(),
                    NewValue::Int(i),
                    if i < 40 { Some(1000) } else { None },
                ),
                0,
            );
        }
        assert_eq!(t.expires(), 40);
        t.get_mut(b"k50").unwrap().set_ttl(Some(5));
        assert_eq!(t.expires(), 41);
        t.get_mut(b"k0").unwrap().set_ttl(None);
        assert_eq!(t.expires(), 40);
        let mut cur = 0;
        let mut gone = vec![];
        t.expire_step(2000, &mut cur, 1000, |en| gone.push(en.key().to_vec()));
        assert_eq!(gone.len(), 40);
        assert_eq!(t.expires(), 0);
        assert_eq!(t.len(), 60);
    }

    #[test]
    fn structure_cost_per_key_is_small() {
        let mut t = Table::new();
        let n = 1_000_000;
        for i in 0..n {
            t.insert(
                Entry::new(
                    format!("key:{i:08}").as_bytes(),
                    NewValue::Str(&[b'x'; 16]),
                    None,
                ),
                0,
            );
        }
        let per_key = t.overhead_bytes() as f64 / n as f64;
        eprintln!("table bytes per key: {per_key:.1}");
        assert!(per_key < 44.0, "{per_key}");
    }

    #[test]
    fn prefetch_is_harmless_and_hashed_get_agrees() {
        let mut t = Table::new();
        t.prefetch(b"nothing");
        t.prefetch_entry(b"nothing");
        for i in 0..20_000 {
            t.insert(e(&format!("key:{i}")), 0);
        }
        for i in 0..25_000 {
            let k = format!("key:{i}");
            t.prefetch(k.as_bytes());
            t.prefetch_entry(k.as_bytes());
            let h = t.hash(k.as_bytes());
            t.prefetch_hashed(h);
            t.prefetch_entry_hashed(h);
            if let Some(c) = t.candidate_hashed(h) {
                c.key();
            }
            assert_eq!(t.get_hashed(h, k.as_bytes()).is_some(), i < 20_000);
            // A wrong hash may only miss.
            assert!(t
                .get_hashed(!h, k.as_bytes())
                .is_none_or(|en| en.key() == k.as_bytes()));
        }
        for h in [0, u64::MAX, 1 << 63] {
            t.prefetch_hashed(h);
            t.prefetch_entry_hashed(h);
            let _ = t.candidate_hashed(h);
        }
        t.clear();
        t.prefetch(b"key:1");
        t.prefetch_entry(b"key:1");
    }

    proptest::proptest! {
        #[test]
        fn behaves_like_a_hashmap(ops in proptest::collection::vec((0u8..3, 0u16..3000), 1..4000)) {
            let mut t = Table::new();
            let mut m: HashMap<Vec<u8>, i64> = HashMap::new();
            for (op, k) in ops {
                let key = format!("k{k}").into_bytes();
                match op {
                    0 => { t.insert(Entry::new(&key, NewValue::Int(k as i64), None), 0); m.insert(key, k as i64); }
                    1 => { proptest::prop_assert_eq!(t.remove(&key).is_some(), m.remove(&key).is_some()); }
                    _ => { proptest::prop_assert_eq!(t.get(&key).is_some(), m.contains_key(&key)); }
                }
            }
            proptest::prop_assert_eq!(t.len(), m.len());
            let mut all = 0;
            let mut c = 0;
            loop { c = t.scan(c, 7, |_| all += 1); if c == 0 { break; } }
            proptest::prop_assert_eq!(all, m.len());
        }
    }
}
