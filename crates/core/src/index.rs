//! `SlotIndex`: a small open-addressing index from a key hash to a `u16` position, laid out so
//! one lookup touches one 64-byte cache line.
//!
//! Why our own (and not `hashbrown::HashTable<u16>`): hashbrown keeps its control bytes and its
//! buckets in two regions of one allocation, so a lookup in a cold table pays a miss for the
//! control group and a second miss for the `u16` bucket (several KB away), before the entry
//! itself. It also gives no address to prefetch. Here a `Group` is one aligned cache line holding
//! 21 tags, their 21 positions and an overflow count, so a lookup is one index line plus the
//! entry, and `prefetch` can pull that line in ahead of time.
//!
//! ```text
//! Group (64 bytes, align 64)
//! bytes  0..21  tags: 7 bits of the hash (high bit clear) or EMPTY (0x80)
//! byte  21      overflow: how many stored items have a probe that passed this group
//!               (saturates at 255, and then stays: "always look further")
//! bytes 22..64  slots: the u16 position for each tag
//! ```
//!
//! Hash use: only the low 32 bits (the table's directory uses the top bits, which are equal for
//! every key of a segment). The home group is `(low32 * groups) >> 32` (Lemire's multiply-shift
//! reduction, so the group count need not be a power of two and the index can be sized to the
//! segment's entry capacity); the tag is bits 0..7, which that reduction nearly ignores.
//!
//! Probing is linear over groups, wrapping around. Instead of tombstones each group counts the
//! items that overflowed past it (as in folly's F14): a lookup stops at the first group whose
//! count is 0, and a removal empties its slot and decrements the counts along its probe. So
//! deletes leave no debris, churn never forces a rebuild, and a miss usually reads one group.
//!
//! Load: at most 7/8 of the slots are used; `insert` grows (rehashing every stored position
//! through the caller's `rehash` closure, as hashbrown does) when that would be exceeded.
//!
//! Invariants: `items` equals the number of non-EMPTY tags; every stored position is in a group
//! reachable from its home group through groups whose overflow count is non-zero; a group's
//! count is either exact or saturated at 255.

/// Marks a free slot. Tags always have the high bit clear, so they never equal it.
pub const EMPTY: u8 = 0x80;
/// Slots per group.
pub const GROUP_SLOTS: usize = 21;
const ALL: u32 = (1 << GROUP_SLOTS) - 1;
/// Maximum load: 7/8 of the slots.
const LOAD_NUM: usize = 7;
const LOAD_DEN: usize = 8;

#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Group {
    tags: [u8; GROUP_SLOTS],
    overflow: u8,
    slots: [u16; GROUP_SLOTS],
}

const _: () = assert!(std::mem::size_of::<Group>() == 64);
const _: () = assert!(std::mem::align_of::<Group>() == 64);

impl Group {
    const EMPTY: Group = Group {
        tags: [EMPTY; GROUP_SLOTS],
        overflow: 0,
        slots: [0; GROUP_SLOTS],
    };

    /// Bit `i` set where `tags[i] == b`.
    #[inline(always)]
    fn match_byte(&self, b: u8) -> u32 {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{
                __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
            };
            let p = self.tags.as_ptr();
            // SAFETY: SSE2 is part of the x86_64 baseline. The two unaligned 16-byte loads read
            // tags[0..16] and tags[5..21], both inside the 21-byte `tags` array.
            unsafe {
                let needle = _mm_set1_epi8(b as i8);
                let lo = _mm_loadu_si128(p.cast::<__m128i>());
                let hi = _mm_loadu_si128(p.add(GROUP_SLOTS - 16).cast::<__m128i>());
                let lo = _mm_movemask_epi8(_mm_cmpeq_epi8(lo, needle)) as u32;
                let hi = _mm_movemask_epi8(_mm_cmpeq_epi8(hi, needle)) as u32;
                // The windows overlap on tags 5..16, where both report the same bits.
                lo | (hi << (GROUP_SLOTS - 16))
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self.match_byte_scalar(b)
        }
    }

    /// Portable version of `match_byte` (used off x86_64, and to test the SIMD one).
    #[inline]
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    fn match_byte_scalar(&self, b: u8) -> u32 {
        let mut m = 0u32;
        for (i, &t) in self.tags.iter().enumerate() {
            m |= ((t == b) as u32) << i;
        }
        m
    }

    #[inline(always)]
    fn match_empty(&self) -> u32 {
        self.match_byte(EMPTY)
    }
}

/// Iterates the set bits of a group mask, lowest first.
#[derive(Clone, Copy)]
struct Bits(u32);

impl Iterator for Bits {
    type Item = usize;
    #[inline(always)]
    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let i = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(i)
    }
}

#[inline(always)]
fn tag(hash: u64) -> u8 {
    (hash as u8) & 0x7f
}

#[inline(always)]
fn home(hash: u64, groups: usize) -> usize {
    (((hash as u32) as u64 * groups as u64) >> 32) as usize
}

/// Groups needed to hold `cap` items at the maximum load (at least one).
fn groups_for(cap: usize) -> usize {
    (cap * LOAD_DEN).div_ceil(LOAD_NUM * GROUP_SLOTS).max(1)
}

fn limit_of(groups: usize) -> usize {
    groups * GROUP_SLOTS * LOAD_NUM / LOAD_DEN
}

/// Hints the CPU to pull the cache line at `p` into L1. Never faults, whatever `p` is.
#[inline(always)]
pub fn prefetch_read<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is only a hint; it never faults, even on an invalid address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = p;
    }
}

/// Where a probe found a slot: group, slot within it, and how many groups it passed first.
struct Found {
    group: usize,
    slot: usize,
    steps: usize,
}

/// Hash -> `u16` position index; see the module documentation.
pub struct SlotIndex {
    groups: Box<[Group]>,
    items: u32,
    limit: u32,
}

impl Default for SlotIndex {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl SlotIndex {
    /// An index that holds `cap` positions without growing (always at least one group).
    pub fn with_capacity(cap: usize) -> SlotIndex {
        Self::with_groups(groups_for(cap))
    }

    fn with_groups(n: usize) -> SlotIndex {
        SlotIndex {
            groups: vec![Group::EMPTY; n.max(1)].into_boxed_slice(),
            items: 0,
            limit: limit_of(n.max(1)) as u32,
        }
    }

    /// Number of stored positions.
    pub fn len(&self) -> usize {
        self.items as usize
    }

    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// How many positions fit before the next insert grows the index.
    pub fn capacity(&self) -> usize {
        self.limit as usize
    }

    /// Bytes of the group array (for memory accounting).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val::<[Group]>(&self.groups)
    }

    /// Issues a prefetch of the home group of `hash` (the line a lookup reads first).
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if let Some(g) = self.groups.get(home(hash, self.groups.len())) {
            prefetch_read(g as *const Group);
        }
    }

    /// The position in the first slot of `hash`'s home group whose tag matches, if any: the
    /// likely answer of a lookup, for prefetching the entry. Reads only the home group.
    #[inline]
    pub fn first_candidate(&self, hash: u64) -> Option<u16> {
        let g = self.groups.get(home(hash, self.groups.len()))?;
        let i = Bits(g.match_byte(tag(hash))).next()?;
        g.slots.get(i).copied()
    }

    #[inline]
    fn probe(&self, hash: u64, mut eq: impl FnMut(u16) -> bool) -> Option<Found> {
        let n = self.groups.len();
        let t = tag(hash);
        let mut g = home(hash, n);
        for steps in 0..n {
            let grp = &self.groups[g];
            for i in Bits(grp.match_byte(t)) {
                if eq(grp.slots[i]) {
                    return Some(Found {
                        group: g,
                        slot: i,
                        steps,
                    });
                }
            }
            if grp.overflow == 0 {
                return None;
            }
            g += 1;
            if g == n {
                g = 0;
            }
        }
        None
    }

    /// Finds the position of `hash` for which `eq` holds.
    #[inline]
    pub fn find(&self, hash: u64, eq: impl FnMut(u16) -> bool) -> Option<u16> {
        self.probe(hash, eq)
            .map(|f| self.groups[f.group].slots[f.slot])
    }

    /// Adds `pos` under `hash`. The caller guarantees `pos` is not stored already. Grows when the
    /// load would pass 7/8; `rehash` must give the hash of every stored position.
    pub fn insert(&mut self, hash: u64, pos: u16, rehash: impl Fn(u16) -> u64) {
        if self.items >= self.limit {
            self.grow(&rehash);
        }
        while !self.insert_no_grow(hash, pos) {
            // Unreachable while the load limit holds (there is always an empty slot); growing
            // again keeps even a broken invariant from looping or panicking.
            self.grow(&rehash);
        }
    }

    fn grow(&mut self, rehash: &impl Fn(u16) -> u64) {
        let cap = self.capacity();
        let want = (self.len() + 1).max(cap + cap / 4 + 1);
        self.resize(groups_for(want).max(self.groups.len() + 1), rehash);
    }

    /// Stores without growing; false when no group had room.
    fn insert_no_grow(&mut self, hash: u64, pos: u16) -> bool {
        let n = self.groups.len();
        let h = home(hash, n);
        let mut g = h;
        for _ in 0..n {
            if let Some(i) = Bits(self.groups[g].match_empty()).next() {
                let grp = &mut self.groups[g];
                grp.tags[i] = tag(hash);
                grp.slots[i] = pos;
                self.items += 1;
                // Count the overflow in every full group passed on the way.
                let mut p = h;
                while p != g {
                    let o = &mut self.groups[p].overflow;
                    *o = o.saturating_add(1);
                    p += 1;
                    if p == n {
                        p = 0;
                    }
                }
                return true;
            }
            g += 1;
            if g == n {
                g = 0;
            }
        }
        false
    }

    /// Removes the slot holding exactly `pos` in the probe of `hash`; false if there is none.
    pub fn remove(&mut self, hash: u64, pos: u16) -> bool {
        let Some(f) = self.probe(hash, |p| p == pos) else {
            return false;
        };
        let n = self.groups.len();
        self.groups[f.group].tags[f.slot] = EMPTY;
        self.items -= 1;
        let mut g = home(hash, n);
        for _ in 0..f.steps {
            let o = &mut self.groups[g].overflow;
            // A saturated count no longer knows its true value: it stays.
            if *o != u8::MAX {
                *o = o.saturating_sub(1);
            }
            g += 1;
            if g == n {
                g = 0;
            }
        }
        true
    }

    /// Changes the stored `old_pos` of `hash` to `new_pos`; false if `old_pos` was not found.
    pub fn replace_pos(&mut self, hash: u64, old_pos: u16, new_pos: u16) -> bool {
        match self.probe(hash, |p| p == old_pos) {
            Some(f) => {
                self.groups[f.group].slots[f.slot] = new_pos;
                true
            }
            None => false,
        }
    }

    /// Empties the index, keeping its allocation.
    pub fn clear(&mut self) {
        self.groups.fill(Group::EMPTY);
        self.items = 0;
    }

    /// Makes room for `cap` positions in all (rehashing now if needed).
    pub fn reserve(&mut self, cap: usize, rehash: impl Fn(u16) -> u64) {
        if cap > self.capacity() {
            self.resize(groups_for(cap), &rehash);
        }
    }

    /// Shrinks to the smallest size holding `max(cap, len)` positions, if that is smaller.
    pub fn shrink_to(&mut self, cap: usize, rehash: impl Fn(u16) -> u64) {
        let n = groups_for(cap.max(self.len()));
        if n < self.groups.len() {
            self.resize(n, &rehash);
        }
    }

    /// Rebuilds with `n` groups (which must hold every item), rehashing each stored position.
    fn resize(&mut self, n: usize, rehash: &impl Fn(u16) -> u64) {
        let n = n.max(groups_for(self.len()));
        let mut new = SlotIndex::with_groups(n);
        for grp in self.groups.iter() {
            for i in Bits(!grp.match_empty() & ALL) {
                let p = grp.slots[i];
                if !new.insert_no_grow(rehash(p), p) {
                    // Cannot happen: `n` holds every item at the load limit. Keep going with a
                    // bigger table rather than lose a position.
                    let bigger = n + n / 2 + 1;
                    return self.resize(bigger, rehash);
                }
            }
        }
        *self = new;
    }

    /// Every stored position (in no particular order).
    pub fn positions(&self) -> impl Iterator<Item = u16> + '_ {
        self.groups
            .iter()
            .flat_map(|g| Bits(!g.match_empty() & ALL).map(move |i| g.slots[i]))
    }

    /// Checks the invariants (tests and debugging): item count, overflow counts, reachability.
    /// Returns a description of the first violation.
    pub fn check(&self, rehash: impl Fn(u16) -> u64) -> Result<(), String> {
        let n = self.groups.len();
        let mut counts = vec![0usize; n];
        let mut items = 0;
        for (g, grp) in self.groups.iter().enumerate() {
            for i in Bits(!grp.match_empty() & ALL) {
                items += 1;
                let p = grp.slots[i];
                let h = rehash(p);
                if grp.tags[i] != tag(h) {
                    return Err(format!("pos {p}: tag {} != {}", grp.tags[i], tag(h)));
                }
                let mut q = home(h, n);
                while q != g {
                    counts[q] += 1;
                    q = (q + 1) % n;
                }
            }
        }
        if items != self.len() {
            return Err(format!("items {} but {items} stored", self.len()));
        }
        for (g, grp) in self.groups.iter().enumerate() {
            let c = grp.overflow as usize;
            // A saturated count has lost track (it may be above the truth); others are exact.
            if c != u8::MAX as usize && c != counts[g] {
                return Err(format!("group {g}: overflow {c}, true {}", counts[g]));
            }
        }
        Ok(())
    }

    /// Average groups read by a successful lookup of every stored position (diagnostics).
    pub fn mean_probe_groups(&self, rehash: impl Fn(u16) -> u64) -> f64 {
        let mut total = 0usize;
        for p in self.positions() {
            let steps = self.probe(rehash(p), |q| q == p).map_or(0, |f| f.steps);
            total += steps + 1;
        }
        total as f64 / self.len().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// splitmix64, as a deterministic hash of a position.
    fn mix(x: u64) -> u64 {
        let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn h(p: u16) -> u64 {
        mix(p as u64)
    }

    #[test]
    fn group_layout() {
        assert_eq!(std::mem::size_of::<Group>(), 64);
        let idx = SlotIndex::with_capacity(100);
        assert_eq!(idx.groups.as_ptr() as usize % 64, 0);
        assert!(std::mem::size_of::<SlotIndex>() <= 24);
    }

    #[test]
    fn simd_match_agrees_with_scalar() {
        let mut s = 7u64;
        for _ in 0..10_000 {
            let mut g = Group::EMPTY;
            for t in g.tags.iter_mut() {
                s = mix(s);
                *t = match s % 4 {
                    0 => EMPTY,
                    _ => (s >> 8) as u8 & 0x7,
                };
            }
            for b in (0..8).chain([EMPTY]) {
                assert_eq!(g.match_byte(b), g.match_byte_scalar(b));
            }
            assert_eq!(g.match_byte(0xff) & !ALL, 0);
        }
    }

    #[test]
    fn insert_find_remove_replace() {
        let mut idx = SlotIndex::with_capacity(0);
        for p in 0..1000u16 {
            idx.insert(h(p), p, h);
        }
        assert_eq!(idx.len(), 1000);
        idx.check(h).unwrap();
        for p in 0..1000u16 {
            assert_eq!(idx.find(h(p), |q| q == p), Some(p));
        }
        assert_eq!(idx.find(h(5000), |q| q == 5000), None);
        for p in (0..1000u16).step_by(3) {
            assert!(idx.remove(h(p), p));
            assert!(!idx.remove(h(p), p));
        }
        idx.check(h).unwrap();
        for p in 0..1000u16 {
            assert_eq!(idx.find(h(p), |q| q == p).is_some(), p % 3 != 0);
        }
        // Move position 1 to 2001 (under the same hash).
        assert!(idx.replace_pos(h(1), 1, 2001));
        assert_eq!(idx.find(h(1), |q| q == 2001), Some(2001));
        assert_eq!(idx.find(h(1), |q| q == 1), None);
        assert!(!idx.replace_pos(h(1), 1, 7));
        idx.clear();
        assert_eq!(idx.len(), 0);
        assert_eq!(idx.find(h(2), |q| q == 2), None);
        idx.check(h).unwrap();
    }

    #[test]
    fn full_segment_fits_and_probes_are_short() {
        let n = crate::table::SEG_MAX;
        let mut idx = SlotIndex::with_capacity(n);
        let groups = idx.groups.len();
        assert!(groups <= 256);
        for p in 0..n as u16 {
            idx.insert(h(p), p, |_| panic!("no growth expected"));
        }
        assert_eq!(idx.groups.len(), groups);
        idx.check(h).unwrap();
        let mean = idx.mean_probe_groups(h);
        eprintln!("full segment: {groups} groups, mean groups per hit {mean:.3}");
        assert!(mean < 1.5, "{mean}");
        for p in 0..n as u16 {
            assert_eq!(idx.find(h(p), |q| q == p), Some(p));
        }
    }

    #[test]
    fn constant_hash_collisions() {
        // Every position under one hash: all probes start at the same group and overflow
        // counts saturate; everything must still be found, removed and re-added.
        let c = |_: u16| 42u64;
        let mut idx = SlotIndex::with_capacity(0);
        for p in 0..3584u16 {
            idx.insert(42, p, c);
        }
        idx.check(c).unwrap();
        for p in (0..3584u16).rev().step_by(7) {
            assert_eq!(idx.find(42, |q| q == p), Some(p));
        }
        for p in (0..3584u16).filter(|p| p % 2 == 0) {
            assert!(idx.remove(42, p));
        }
        idx.check(c).unwrap();
        for p in 0..3584u16 {
            assert_eq!(idx.find(42, |q| q == p).is_some(), p % 2 == 1);
        }
        for p in (0..3584u16).filter(|p| p % 2 == 0) {
            idx.insert(42, p, c);
        }
        assert_eq!(idx.len(), 3584);
        idx.check(c).unwrap();
    }

    #[test]
    fn churn_leaves_no_debris() {
        // Many insert/remove rounds at a fixed size: no tombstones, no growth.
        let mut idx = SlotIndex::with_capacity(3000);
        let groups = idx.groups.len();
        let mut live: Vec<u16> = (0..3000).collect();
        for p in &live {
            idx.insert(h(*p), *p, h);
        }
        let mut next = 3000u16;
        let mut s = 1u64;
        for _ in 0..100_000 {
            s = mix(s);
            let k = (s % live.len() as u64) as usize;
            let old = live.swap_remove(k);
            assert!(idx.remove(h(old), old));
            let p = next;
            next = next.wrapping_add(1);
            idx.insert(h(p), p, h);
            live.push(p);
        }
        assert_eq!(idx.groups.len(), groups);
        idx.check(h).unwrap();
        for p in &live {
            assert_eq!(idx.find(h(*p), |q| q == *p), Some(*p));
        }
    }

    #[test]
    fn grows_and_shrinks_by_rehash() {
        let mut idx = SlotIndex::with_capacity(0);
        let g0 = idx.groups.len();
        for p in 0..3584u16 {
            idx.insert(h(p), p, h);
        }
        assert!(idx.groups.len() > g0);
        assert!(idx.capacity() >= 3584);
        for p in 100..3584u16 {
            assert!(idx.remove(h(p), p));
        }
        let before = idx.memory_bytes();
        idx.shrink_to(125, h);
        assert!(idx.memory_bytes() < before);
        idx.check(h).unwrap();
        for p in 0..100u16 {
            assert_eq!(idx.find(h(p), |q| q == p), Some(p));
        }
        idx.reserve(2000, h);
        assert!(idx.capacity() >= 2000);
        idx.check(h).unwrap();
        assert_eq!(idx.len(), 100);
        // Shrinking below the item count keeps every item.
        idx.shrink_to(0, h);
        assert_eq!(idx.positions().count(), 100);
        idx.check(h).unwrap();
    }

    #[test]
    fn prefetch_and_first_candidate_never_panic() {
        let mut idx = SlotIndex::default();
        idx.prefetch(0);
        idx.prefetch(u64::MAX);
        assert_eq!(idx.first_candidate(u64::MAX), None);
        idx.insert(h(3), 3, h);
        assert_eq!(idx.first_candidate(h(3)), Some(3));
        prefetch_read(std::ptr::null::<u8>());
    }

    proptest::proptest! {
        #[test]
        fn behaves_like_a_hashmap(
            ops in proptest::collection::vec((0u8..4, 0u16..600), 1..3000),
            narrow in 0u64..3,
        ) {
            // `narrow` squeezes the hashes into few values to force collisions.
            let hf = move |p: u16| match narrow {
                0 => h(p),
                1 => h(p % 16),
                _ => h(p) & 0xff,
            };
            let mut idx = SlotIndex::with_capacity(0);
            let mut m: HashMap<u16, ()> = HashMap::new();
            for (op, p) in ops {
                match op {
                    0 => {
                        if m.insert(p, ()).is_none() {
                            idx.insert(hf(p), p, hf);
                        }
                    }
                    1 => proptest::prop_assert_eq!(idx.remove(hf(p), p), m.remove(&p).is_some()),
                    2 => proptest::prop_assert_eq!(idx.find(hf(p), |q| q == p), m.get(&p).map(|_| p)),
                    _ => idx.shrink_to(m.len(), hf),
                }
            }
            proptest::prop_assert_eq!(idx.len(), m.len());
            if let Err(e) = idx.check(hf) {
                return Err(proptest::test_runner::TestCaseError::fail(e));
            }
            let mut all: Vec<u16> = idx.positions().collect();
            all.sort_unstable();
            let mut want: Vec<u16> = m.keys().copied().collect();
            want.sort_unstable();
            proptest::prop_assert_eq!(all, want);
        }
    }
}
