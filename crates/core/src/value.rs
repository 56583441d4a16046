//! Values that do not fit an entry's inline forms: growable strings now, collections later.
//!
//! Invariant: an `Object` is owned by exactly one entry (or is in flight between shards as a
//! `Box<Object>`); nothing else holds references to it across a command.

/// A borrowed view of an entry's value.
#[derive(Debug, Clone, Copy)]
pub enum ValueRef<'a> {
    /// A string stored inline or as an exact-size heap blob.
    Str(&'a [u8]),
    /// An integer-encoded string.
    Int(i64),
    /// A boxed object.
    Obj(&'a Object),
}

/// A heap value of any type. Hashes, lists, sets, sorted sets and streams join this enum in
/// their own issues; the entry already has room for them (one pointer).
#[derive(Debug, Clone)]
pub enum Object {
    /// A string grown in place (APPEND, SETRANGE, SETBIT): amortised growth like Redis's sds.
    Str(Vec<u8>),
}

impl Object {
    /// Heap bytes owned beyond the `Object` itself.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Object::Str(v) => v.capacity(),
        }
    }

    /// Redis's TYPE name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Object::Str(_) => "string",
        }
    }
}

/// Parses a string the way Redis's `string2ll` does for integer encoding: canonical decimal,
/// fits i64, at most 20 characters.
pub fn as_canonical_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, d) = if s[0] == b'-' {
        (true, &s[1..])
    } else {
        (false, s)
    };
    if d.is_empty() || d[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}
