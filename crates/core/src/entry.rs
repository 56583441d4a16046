//! `Entry`: one key, its value and its expiry packed into 32 bytes.
//!
//! Why our own: memory per key is a headline feature, and a general enum of `Box<[u8]>` key,
//! value enum and `Option<u64>` TTL costs 56+ bytes before the table slot. Here a key
//! `key:00000001` with a 16-byte value lives entirely inside the entry, and the TTL is stored in
//! the entry, not in a second table.
//!
//! ```text
//! byte 0      tag: bit 0 key on heap | bits 2-4 value repr | bit 5 has TTL | bit 6 raw-string hint
//! byte 1      key length (heap keys: the length if < 255, else 255 and a u32 header on the heap)
//! byte 2      value length (inline and blob strings; same rule as the key)
//! bytes 3..32 payload, in order: [TTL: u64 ms, if any][key: inline bytes | pointer][value]
//! value       inline bytes | i64 | blob pointer | pointer to a boxed `Object`
//! ```
//!
//! The layout is re-chosen on every change (`pack`): both inline if they fit, else the value
//! moves to the heap, else the key. Pointers are stored as exposed addresses
//! (`expose_provenance` / `with_exposed_provenance_mut`), so the entry is plain bytes.
//!
//! Invariant: every heap block referenced by an entry is owned by exactly that entry; it is
//! freed by `Drop` or handed over by `into_parts`, never both.

use crate::value::{Object, ValueRef};

const PAYLOAD: usize = 29;
const TTL_LEN: usize = 8;
const PTR_LEN: usize = 8;

const KEY_HEAP: u8 = 1;
const VAL_SHIFT: u8 = 2;
const VAL_MASK: u8 = 0b111 << VAL_SHIFT;
const V_INLINE: u8 = 0;
const V_INT: u8 = 1;
const V_BLOB: u8 = 2;
const V_OBJ: u8 = 3;
const HAS_TTL: u8 = 1 << 5;
/// Redis's `raw` encoding hint for strings that were modified in place (APPEND, SETRANGE...).
const RAW_HINT: u8 = 1 << 6;

/// Length marker meaning "the length is in a u32 header at the start of the heap block".
const LONG: u8 = 255;

/// A heap byte block: exact size when its length fits in the entry's length byte, otherwise
/// prefixed by a little-endian u32 length.
struct Blob;

impl Blob {
    fn alloc(data: &[u8]) -> (usize, u8) {
        if data.len() < LONG as usize {
            let b: Box<[u8]> = data.into();
            let p = Box::into_raw(b) as *mut u8;
            (p.expose_provenance(), data.len() as u8)
        } else {
            let mut v = Vec::with_capacity(4 + data.len());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(data);
            let p = Box::into_raw(v.into_boxed_slice()) as *mut u8;
            (p.expose_provenance(), LONG)
        }
    }

    /// # Safety
    /// `addr`/`len_byte` must come from `Blob::alloc` and the block must still be alive.
    unsafe fn get<'a>(addr: usize, len_byte: u8) -> &'a [u8] {
        let p = std::ptr::with_exposed_provenance::<u8>(addr);
        if len_byte != LONG {
            // SAFETY: the block holds exactly len_byte bytes (see alloc).
            unsafe { std::slice::from_raw_parts(p, len_byte as usize) }
        } else {
            // SAFETY: the block starts with a u32 length header followed by that many bytes.
            unsafe {
                let len = u32::from_le_bytes(*(p as *const [u8; 4])) as usize;
                std::slice::from_raw_parts(p.add(4), len)
            }
        }
    }

    /// # Safety
    /// As for `get`; the block must not be used afterwards.
    unsafe fn free(addr: usize, len_byte: u8) {
        let p = std::ptr::with_exposed_provenance_mut::<u8>(addr);
        let total = if len_byte != LONG {
            len_byte as usize
        } else {
            // SAFETY: header is readable (see get).
            4 + unsafe { u32::from_le_bytes(*(p as *const [u8; 4])) } as usize
        };
        // SAFETY: reconstructs the boxed slice allocated in `alloc` with its exact length.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, total)) });
    }

    fn heap_size(len: usize) -> usize {
        if len < LONG as usize {
            len
        } else {
            len + 4
        }
    }
}

/// A key or a value taken out of an entry, owning its heap block if it had one.
pub enum KeyPart {
    Inline([u8; PAYLOAD], u8),
    Heap(usize, u8),
}

impl KeyPart {
    fn from_slice(k: &[u8]) -> KeyPart {
        if k.len() <= PAYLOAD - PTR_LEN {
            let mut b = [0u8; PAYLOAD];
            b[..k.len()].copy_from_slice(k);
            KeyPart::Inline(b, k.len() as u8)
        } else {
            let (a, l) = Blob::alloc(k);
            KeyPart::Heap(a, l)
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            KeyPart::Inline(b, l) => &b[..*l as usize],
            // SAFETY: a Heap part owns a live blob.
            KeyPart::Heap(a, l) => unsafe { Blob::get(*a, *l) },
        }
    }
}

impl Drop for KeyPart {
    fn drop(&mut self) {
        if let KeyPart::Heap(a, l) = *self {
            // SAFETY: the part owns the blob and is being dropped.
            unsafe { Blob::free(a, l) }
        }
    }
}

/// A value to store in an entry.
pub enum NewValue<'a> {
    /// String bytes; stored inline or as a heap blob. Callers decide integer encoding first.
    Str(&'a [u8]),
    /// An integer-encoded string (Redis's `int` encoding).
    Int(i64),
    /// Anything else: a growable string or a collection.
    Obj(Box<Object>),
}

enum ValPart {
    Inline([u8; PAYLOAD], u8),
    Int(i64),
    Blob(usize, u8),
    Obj(usize),
}

impl Drop for ValPart {
    fn drop(&mut self) {
        match *self {
            // SAFETY: the part owns the blob.
            ValPart::Blob(a, l) => unsafe { Blob::free(a, l) },
            ValPart::Obj(a) => {
                // SAFETY: the part owns the boxed object created by Box::into_raw in `pack`.
                drop(unsafe { Box::from_raw(std::ptr::with_exposed_provenance_mut::<Object>(a)) })
            }
            _ => {}
        }
    }
}

/// One key with its value and optional expiry, in 32 bytes.
#[repr(C, align(8))]
pub struct Entry {
    raw: [u8; 32],
}

const _: () = assert!(std::mem::size_of::<Entry>() == 32);

fn read_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

impl Entry {
    /// An entry that owns nothing; used as a placeholder while an entry is rebuilt.
    const EMPTY: Entry = Entry { raw: [0; 32] };

    /// Builds an entry. `ttl_ms` is an absolute Unix time in milliseconds.
    pub fn new(key: &[u8], value: NewValue<'_>, ttl_ms: Option<u64>) -> Entry {
        Self::pack(
            KeyPart::from_slice(key),
            ValPart::from_new(value),
            ttl_ms,
            0,
        )
    }

    /// Chooses the layout and writes the parts into a fresh entry, taking ownership of their
    /// heap blocks. Preference: key and value inline; value on the heap; key on the heap; both.
    fn pack(key: KeyPart, val: ValPart, ttl: Option<u64>, flags: u8) -> Entry {
        let avail = PAYLOAD - if ttl.is_some() { TTL_LEN } else { 0 };
        let klen = key.bytes().len();
        let vlen_inline = match &val {
            ValPart::Inline(_, l) => Some(*l as usize),
            // A blob that now fits (e.g. the TTL was removed) comes back inline.
            // SAFETY: the part owns a live blob.
            ValPart::Blob(a, l) => Some(unsafe { Blob::get(*a, *l) }.len()),
            _ => None,
        };
        let (key_inline, val_inline) = match vlen_inline {
            Some(vl) if klen + vl <= avail => (true, true),
            Some(_) if klen + PTR_LEN <= avail => (true, false),
            Some(vl) if PTR_LEN + vl <= avail => (false, true),
            Some(_) => (false, false),
            None => (klen + PTR_LEN <= avail, false),
        };
        let key = match (key_inline, key) {
            (true, k @ KeyPart::Heap(..)) => {
                let mut b = [0u8; PAYLOAD];
                b[..klen].copy_from_slice(k.bytes());
                KeyPart::Inline(b, klen as u8)
            }
            (false, k @ KeyPart::Inline(..)) => {
                let (a, l) = Blob::alloc(k.bytes());
                KeyPart::Heap(a, l)
            }
            (_, k) => k,
        };
        let val = match (val_inline, val) {
            (true, v @ ValPart::Blob(..)) => {
                // SAFETY: the part owns a live blob.
                let bytes = match &v {
                    ValPart::Blob(a, l) => unsafe { Blob::get(*a, *l) },
                    _ => &[],
                };
                let mut b = [0u8; PAYLOAD];
                b[..bytes.len()].copy_from_slice(bytes);
                ValPart::Inline(b, bytes.len() as u8)
            }
            (false, ValPart::Inline(b, l)) => {
                let (a, l) = Blob::alloc(&b[..l as usize]);
                ValPart::Blob(a, l)
            }
            (_, v) => v,
        };

        let mut e = Entry::EMPTY;
        let mut tag = flags & RAW_HINT;
        let mut off = 3;
        if let Some(t) = ttl {
            tag |= HAS_TTL;
            e.raw[off..off + 8].copy_from_slice(&t.to_le_bytes());
            off += 8;
        }
        match &key {
            KeyPart::Inline(b, l) => {
                e.raw[1] = *l;
                e.raw[off..off + *l as usize].copy_from_slice(&b[..*l as usize]);
                off += *l as usize;
            }
            KeyPart::Heap(a, l) => {
                tag |= KEY_HEAP;
                e.raw[1] = *l;
                e.raw[off..off + 8].copy_from_slice(&(*a as u64).to_le_bytes());
                off += 8;
            }
        }
        let repr = match &val {
            ValPart::Inline(b, l) => {
                e.raw[2] = *l;
                e.raw[off..off + *l as usize].copy_from_slice(&b[..*l as usize]);
                V_INLINE
            }
            ValPart::Int(i) => {
                e.raw[off..off + 8].copy_from_slice(&i.to_le_bytes());
                V_INT
            }
            ValPart::Blob(a, l) => {
                e.raw[2] = *l;
                e.raw[off..off + 8].copy_from_slice(&(*a as u64).to_le_bytes());
                V_BLOB
            }
            ValPart::Obj(a) => {
                e.raw[off..off + 8].copy_from_slice(&(*a as u64).to_le_bytes());
                V_OBJ
            }
        };
        e.raw[0] = tag | (repr << VAL_SHIFT);
        // Ownership of any heap block moved into the entry.
        std::mem::forget(key);
        std::mem::forget(val);
        e
    }

    #[inline]
    fn tag(&self) -> u8 {
        self.raw[0]
    }

    #[inline]
    fn key_off(&self) -> usize {
        if self.tag() & HAS_TTL != 0 {
            3 + TTL_LEN
        } else {
            3
        }
    }

    #[inline]
    fn val_off(&self) -> usize {
        self.key_off()
            + if self.tag() & KEY_HEAP != 0 {
                PTR_LEN
            } else {
                self.raw[1] as usize
            }
    }

    #[inline]
    fn repr(&self) -> u8 {
        (self.tag() & VAL_MASK) >> VAL_SHIFT
    }

    /// The key bytes.
    #[inline]
    pub fn key(&self) -> &[u8] {
        let off = self.key_off();
        if self.tag() & KEY_HEAP != 0 {
            // SAFETY: a heap key's pointer is owned by this entry and alive while it is.
            unsafe { Blob::get(read_u64(&self.raw, off) as usize, self.raw[1]) }
        } else {
            &self.raw[off..off + self.raw[1] as usize]
        }
    }

    /// Issues a prefetch for the heap blocks that comparing this entry's key and reading its
    /// value will touch (a heap key, a blob or object value), so a batch of lookups can overlap
    /// those cache misses. Only a hint: it never dereferences anything.
    #[inline]
    pub fn prefetch_heap(&self) {
        if self.tag() & KEY_HEAP != 0 {
            crate::index::prefetch_read(read_u64(&self.raw, self.key_off()) as usize as *const u8);
        }
        if matches!(self.repr(), V_BLOB | V_OBJ) {
            crate::index::prefetch_read(read_u64(&self.raw, self.val_off()) as usize as *const u8);
        }
    }

    /// The value.
    #[inline]
    pub fn value(&self) -> ValueRef<'_> {
        let off = self.val_off();
        match self.repr() {
            V_INLINE => ValueRef::Str(&self.raw[off..off + self.raw[2] as usize]),
            V_INT => ValueRef::Int(read_u64(&self.raw, off) as i64),
            // SAFETY: the blob is owned by this entry.
            V_BLOB => {
                ValueRef::Str(unsafe { Blob::get(read_u64(&self.raw, off) as usize, self.raw[2]) })
            }
            _ => {
                let p =
                    std::ptr::with_exposed_provenance::<Object>(read_u64(&self.raw, off) as usize);
                // SAFETY: the object box is owned by this entry and alive while it is.
                ValueRef::Obj(unsafe { &*p })
            }
        }
    }

    /// Mutable access to a boxed object value (growable strings, collections).
    pub fn object_mut(&mut self) -> Option<&mut Object> {
        if self.repr() != V_OBJ {
            return None;
        }
        let p = std::ptr::with_exposed_provenance_mut::<Object>(
            read_u64(&self.raw, self.val_off()) as usize,
        );
        // SAFETY: owned by this entry; `&mut self` guarantees exclusive access.
        Some(unsafe { &mut *p })
    }

    /// Absolute expiry time in Unix milliseconds, if any.
    #[inline]
    pub fn ttl(&self) -> Option<u64> {
        if self.tag() & HAS_TTL != 0 {
            Some(read_u64(&self.raw, 3))
        } else {
            None
        }
    }

    /// True if the entry has a TTL at or before `now_ms`.
    #[inline]
    pub fn is_expired(&self, now_ms: u64) -> bool {
        matches!(self.ttl(), Some(t) if t <= now_ms)
    }

    /// Whether a string value should report Redis's `raw` encoding (modified in place).
    pub fn raw_hint(&self) -> bool {
        self.tag() & RAW_HINT != 0
    }

    pub fn set_raw_hint(&mut self, on: bool) {
        if on {
            self.raw[0] |= RAW_HINT;
        } else {
            self.raw[0] &= !RAW_HINT;
        }
    }

    fn into_parts(self) -> (KeyPart, ValPart, Option<u64>, u8) {
        let ttl = self.ttl();
        let koff = self.key_off();
        let key = if self.tag() & KEY_HEAP != 0 {
            KeyPart::Heap(read_u64(&self.raw, koff) as usize, self.raw[1])
        } else {
            let mut b = [0u8; PAYLOAD];
            let l = self.raw[1] as usize;
            b[..l].copy_from_slice(&self.raw[koff..koff + l]);
            KeyPart::Inline(b, l as u8)
        };
        let voff = self.val_off();
        let val = match self.repr() {
            V_INLINE => {
                let mut b = [0u8; PAYLOAD];
                let l = self.raw[2] as usize;
                b[..l].copy_from_slice(&self.raw[voff..voff + l]);
                ValPart::Inline(b, l as u8)
            }
            V_INT => ValPart::Int(read_u64(&self.raw, voff) as i64),
            V_BLOB => ValPart::Blob(read_u64(&self.raw, voff) as usize, self.raw[2]),
            _ => ValPart::Obj(read_u64(&self.raw, voff) as usize),
        };
        let flags = self.tag() & RAW_HINT;
        // The parts now own the heap blocks.
        std::mem::forget(self);
        (key, val, ttl, flags)
    }

    /// Replaces the value, keeping key and TTL. The raw-string hint is cleared.
    pub fn set_value(&mut self, value: NewValue<'_>) {
        let old = std::mem::replace(self, Entry::EMPTY);
        let (key, oldval, ttl, _) = old.into_parts();
        drop(oldval);
        *self = Self::pack(key, ValPart::from_new(value), ttl, 0);
    }

    /// Sets or clears the expiry (absolute Unix ms).
    pub fn set_ttl(&mut self, ttl_ms: Option<u64>) {
        if ttl_ms.is_none() && self.ttl().is_none() {
            return;
        }
        if let (Some(new), Some(_)) = (ttl_ms, self.ttl()) {
            self.raw[3..11].copy_from_slice(&new.to_le_bytes());
            return;
        }
        let old = std::mem::replace(self, Entry::EMPTY);
        let (key, val, _, flags) = old.into_parts();
        *self = Self::pack(key, val, ttl_ms, flags);
    }

    /// Builds a new entry with the same value under another key (RENAME, COPY within a shard
    /// move the entry itself; this is for the cross-key case). The value is moved, not copied.
    pub fn rekey(self, new_key: &[u8]) -> Entry {
        let (_, val, ttl, flags) = self.into_parts();
        Self::pack(KeyPart::from_slice(new_key), val, ttl, flags)
    }

    /// A deep copy of this entry under `new_key` (COPY): same value and TTL.
    pub fn duplicate(&self, new_key: &[u8]) -> Entry {
        let value = match self.value() {
            ValueRef::Str(s) => NewValue::Str(s),
            ValueRef::Int(i) => NewValue::Int(i),
            ValueRef::Obj(o) => NewValue::Obj(Box::new(o.clone())),
        };
        let mut e = Entry::new(new_key, value, self.ttl());
        e.set_raw_hint(self.raw_hint());
        e
    }

    /// Bytes this entry owns on the heap (blobs and the object's estimate), for MEMORY USAGE.
    pub fn heap_bytes(&self) -> usize {
        let mut n = 0;
        if self.tag() & KEY_HEAP != 0 {
            n += Blob::heap_size(self.key().len());
        }
        match self.value() {
            ValueRef::Str(s) if self.repr() == V_BLOB => n += Blob::heap_size(s.len()),
            ValueRef::Obj(o) => n += std::mem::size_of::<Object>() + o.heap_bytes(),
            _ => {}
        }
        n
    }
}

impl ValPart {
    fn from_new(value: NewValue<'_>) -> ValPart {
        match value {
            NewValue::Str(s) if s.len() <= PAYLOAD => {
                let mut b = [0u8; PAYLOAD];
                b[..s.len()].copy_from_slice(s);
                ValPart::Inline(b, s.len() as u8)
            }
            NewValue::Str(s) => {
                let (a, l) = Blob::alloc(s);
                ValPart::Blob(a, l)
            }
            NewValue::Int(i) => ValPart::Int(i),
            NewValue::Obj(o) => ValPart::Obj(Box::into_raw(o).expose_provenance()),
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let e = std::mem::replace(self, Entry::EMPTY);
        let parts = e.into_parts();
        drop(parts);
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("ttl", &self.ttl())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: ValueRef<'_>) -> Vec<u8> {
        match v {
            ValueRef::Str(b) => b.to_vec(),
            ValueRef::Int(i) => i.to_string().into_bytes(),
            ValueRef::Obj(Object::Str(v)) => v.clone(),
        }
    }

    #[test]
    fn benchmark_key_is_fully_inline() {
        let e = Entry::new(b"key:00000001", NewValue::Str(&[7u8; 16]), None);
        assert_eq!(e.tag() & KEY_HEAP, 0);
        assert_eq!(e.repr(), V_INLINE);
        assert_eq!(e.heap_bytes(), 0);
        assert_eq!(e.key(), b"key:00000001");
        assert_eq!(s(e.value()), vec![7u8; 16]);
    }

    #[test]
    fn ttl_moves_value_to_heap_and_back() {
        let mut e = Entry::new(b"key:00000001", NewValue::Str(&[7u8; 16]), None);
        e.set_ttl(Some(123));
        assert_eq!(e.ttl(), Some(123));
        assert_eq!(e.repr(), V_BLOB);
        assert_eq!(e.heap_bytes(), 16);
        assert_eq!(e.key(), b"key:00000001");
        e.set_ttl(Some(456));
        assert_eq!(e.ttl(), Some(456));
        e.set_ttl(None);
        assert_eq!(e.repr(), V_INLINE);
        assert_eq!(s(e.value()), vec![7u8; 16]);
    }

    #[test]
    fn long_keys_and_values() {
        let k = vec![b'k'; 300];
        let v = vec![b'v'; 100_000];
        let mut e = Entry::new(&k, NewValue::Str(&v), Some(9));
        assert_eq!(e.key(), &k[..]);
        assert_eq!(s(e.value()), v);
        e.set_value(NewValue::Int(-42));
        assert_eq!(s(e.value()), b"-42");
        assert_eq!(e.ttl(), Some(9));
        let e = e.rekey(b"short");
        assert_eq!(e.key(), b"short");
        assert_eq!(s(e.value()), b"-42");
    }

    #[test]
    fn objects_are_owned_and_mutable() {
        let mut e = Entry::new(
            b"k",
            NewValue::Obj(Box::new(Object::Str(b"abc".to_vec()))),
            None,
        );
        if let Some(Object::Str(v)) = e.object_mut() {
            v.extend_from_slice(b"def");
        }
        assert_eq!(s(e.value()), b"abcdef");
        e.set_ttl(Some(1));
        assert_eq!(s(e.value()), b"abcdef");
    }

    proptest::proptest! {
        #[test]
        fn any_key_value_ttl_roundtrips(k in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
                                        v in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
                                        t1 in proptest::option::of(0u64..u64::MAX), t2 in proptest::option::of(0u64..u64::MAX)) {
            let mut e = Entry::new(&k, NewValue::Str(&v), t1);
            proptest::prop_assert_eq!(e.key(), &k[..]);
            proptest::prop_assert_eq!(s(e.value()), v.clone());
            proptest::prop_assert_eq!(e.ttl(), t1);
            e.set_ttl(t2);
            proptest::prop_assert_eq!(e.key(), &k[..]);
            proptest::prop_assert_eq!(s(e.value()), v);
            proptest::prop_assert_eq!(e.ttl(), t2);
        }
    }
}
