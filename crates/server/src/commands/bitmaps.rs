//! Bitmap commands (Redis's bitops.c): SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD
//! BITFIELD_RO. Replies and error texts are Redis 7.0's, byte for byte.
//!
//! Bits are numbered from the most significant bit of byte 0, as in Redis. Reads see an
//! integer-encoded string as its decimal digits; writes turn the value into a growable
//! `Object::Str` (OBJECT ENCODING "raw", like Redis's unshared sds), zero-padded as needed.
//!
//! Invariant: the range and overflow arithmetic (BITCOUNT/BITPOS ranges, BITFIELD's
//! WRAP/SAT/FAIL) is a literal port of Redis's, including its corner cases; the pure helpers
//! below are unit-tested against values taken from redis-server.

use super::strings::{growable_string, max_bulk_len, string_len};
use super::{eq_ic, parse_i64, string_bytes, NOT_INT, SYNTAX, WRONGTYPE};
use crate::command::{LocalFut, ShardCtx, TableBuilder};
use crate::config::notify::STRING;
use crate::conn::Conn;
use crate::coord::{group_by_shard, Tx};
use crate::shard::Shard;
use bytes::Bytes;
use damselfly_core::{Entry, NewValue, Object};

pub fn register(t: &mut TableBuilder) {
    t.keyed("setbit", setbit, None);
    t.keyed("getbit", getbit, None);
    t.keyed("bitcount", bitcount, None);
    t.keyed("bitpos", bitpos, None);
    t.keyed("bitop", bitop, Some(bitop_cross));
    t.keyed("bitfield", bitfield, None);
    t.keyed("bitfield_ro", bitfield_ro, None);
}

const BIT_OFFSET_ERR: &str = "ERR bit offset is not an integer or out of range";
const BIT_VALUE_ERR: &str = "ERR bit is not an integer or out of range";
const BITFIELD_TYPE_ERR: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// The smallest proto-max-bulk-len CONFIG SET accepts (1mb): byte offsets below it never need
/// the config to be read.
const MIN_MAX_BULK: i64 = 1024 * 1024;

// ---- argument parsing ------------------------------------------------------------------

/// Redis's `getBitOffsetFromArgument`: a bit offset, or with `hash` a `#N` offset counted in
/// units of `bits`. The byte it falls in must be below proto-max-bulk-len.
fn bit_offset(shard: &Shard, arg: &[u8], hash: bool, bits: u32) -> Result<u64, ()> {
    let usehash = hash && bits > 0 && arg.first() == Some(&b'#');
    let digits = if usehash { &arg[1..] } else { arg };
    let mut off = parse_i64(digits).ok_or(())?;
    if usehash {
        off = off.wrapping_mul(bits as i64);
    }
    if off < 0 || ((off >> 3) >= MIN_MAX_BULK && (off >> 3) >= max_bulk_len(shard)) {
        return Err(());
    }
    Ok(off as u64)
}

/// Redis's `getBitfieldTypeFromArgument`: `i1`..`i64` or `u1`..`u63` as (signed, bits).
fn bitfield_type(arg: &[u8]) -> Result<(bool, u32), ()> {
    let sign = match arg.first() {
        // Lowercase only: Redis refuses "I16" / "U8".
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(()),
    };
    // Redis reads the width with strlen(), so it stops at a NUL byte.
    let rest = &arg[1..];
    let rest = &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())];
    let bits = parse_i64(rest).ok_or(())?;
    if bits < 1 || (sign && bits > 64) || (!sign && bits > 63) {
        return Err(());
    }
    Ok((sign, bits as u32))
}

// ---- bit helpers (pure) ----------------------------------------------------------------

/// Number of set bits (Redis's `redisPopcount`).
fn popcount(s: &[u8]) -> i64 {
    let mut chunks = s.chunks_exact(8);
    let mut n: u64 = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        n += u64::from_ne_bytes(w).count_ones() as u64;
    }
    for b in chunks.remainder() {
        n += b.count_ones() as u64;
    }
    n as i64
}

/// Redis's `redisBitpos`: position of the first bit equal to `bit`. With no such bit: -1 when
/// looking for 1, `len * 8` when looking for 0 (the string counts as zero-padded).
fn bitpos_in(s: &[u8], bit: bool) -> i64 {
    let skip = if bit { 0x00 } else { 0xff };
    match s.iter().position(|&b| b != skip) {
        Some(i) => {
            let b = if bit { s[i] } else { !s[i] };
            (i as i64) * 8 + b.leading_zeros() as i64
        }
        None if bit => -1,
        None => s.len() as i64 * 8,
    }
}

/// Redis's `getUnsignedBitfield`: `bits` bits at bit `offset`, most significant first.
/// `p` must cover them.
fn get_unsigned_bitfield(p: &[u8], mut offset: u64, bits: u32) -> u64 {
    let mut value: u64 = 0;
    for _ in 0..bits {
        let byte = (offset >> 3) as usize;
        let bit = 7 - (offset & 7);
        value = (value << 1) | ((p[byte] as u64 >> bit) & 1);
        offset += 1;
    }
    value
}

/// Redis's `getSignedBitfield`: the field sign-extended from its top bit.
fn get_signed_bitfield(p: &[u8], offset: u64, bits: u32) -> i64 {
    let mut value = get_unsigned_bitfield(p, offset, bits);
    if bits < 64 && value & (1u64 << (bits - 1)) != 0 {
        value |= u64::MAX << bits;
    }
    value as i64
}

/// Redis's `setUnsignedBitfield`: writes the low `bits` bits of `value`. `p` must cover them.
fn set_unsigned_bitfield(p: &mut [u8], mut offset: u64, bits: u32, value: u64) {
    for j in 0..bits {
        let bitval = ((value >> (bits - 1 - j)) & 1) as u8;
        let byte = (offset >> 3) as usize;
        let bit = 7 - (offset & 7) as u8;
        p[byte] = (p[byte] & !(1 << bit)) | (bitval << bit);
        offset += 1;
    }
}

/// BITFIELD's OVERFLOW behaviour.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// Redis's `checkUnsignedBitfieldOverflow`: (overflow: 0, 1 up or -1 down; the wrapped or
/// saturated value, for WRAP and SAT).
fn check_unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> (i32, Option<u64>) {
    let max: u64 = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = value.wrapping_neg() as i64;
    let wrap = || {
        let mask = if bits >= 64 { 0 } else { u64::MAX << bits };
        value.wrapping_add(incr as u64) & !mask
    };
    if value > max || (incr > 0 && incr > maxincr) {
        match ow {
            Overflow::Wrap => (1, Some(wrap())),
            Overflow::Sat => (1, Some(max)),
            Overflow::Fail => (1, None),
        }
    } else if incr < 0 && incr < minincr {
        match ow {
            Overflow::Wrap => (1, Some(wrap())),
            Overflow::Sat => (-1, Some(0)),
            Overflow::Fail => (-1, None),
        }
    } else {
        (0, None)
    }
}

/// Redis's `checkSignedBitfieldOverflow`, same contract as the unsigned one.
fn check_signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> (i32, Option<i64>) {
    let max: i64 = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let msb = 1u64 << (bits - 1);
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & msb != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        match ow {
            Overflow::Wrap => (1, Some(wrap())),
            Overflow::Sat => (1, Some(max)),
            Overflow::Fail => (1, None),
        }
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        match ow {
            Overflow::Wrap => (1, Some(wrap())),
            Overflow::Sat => (-1, Some(min)),
            Overflow::Fail => (-1, None),
        }
    } else {
        (0, None)
    }
}

/// Resolves a [start, end] range as BITCOUNT/BITPOS do after their "convert negative indexes"
/// step: the clamped (start, end) in bytes, plus the masks of bits outside the range in the
/// first and last byte (bit mode only).
fn resolve_range(mut start: i64, mut end: i64, strlen: i64, isbit: bool) -> (i64, i64, u8, u8) {
    let totlen = if isbit { strlen << 3 } else { strlen };
    if start < 0 {
        start += totlen;
    }
    if end < 0 {
        end += totlen;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= totlen {
        end = totlen - 1;
    }
    let (mut first_mask, mut last_mask) = (0u8, 0u8);
    if isbit && start <= end {
        first_mask = !((1u32 << (8 - (start & 7))) - 1) as u8;
        last_mask = ((1u32 << (7 - (end & 7))) - 1) as u8;
        start >>= 3;
        end >>= 3;
    }
    (start, end, first_mask, last_mask)
}

// ---- SETBIT GETBIT ---------------------------------------------------------------------

fn setbit(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let Ok(offset) = bit_offset(ctx.shard, &args[2], false, 0) else {
        ctx.r.error(BIT_OFFSET_ERR);
        return;
    };
    let on = match parse_i64(&args[3]) {
        Some(v) if v & !1 == 0 => v as u8,
        _ => {
            ctx.r.error(BIT_VALUE_ERR);
            return;
        }
    };
    let byte = (offset >> 3) as usize;
    let bit = 7 - (offset & 7) as u8;
    let mut set = false;
    if let Some(mut e) = ctx.shard.lookup_write(ctx.db, &args[1], ctx.now) {
        let Some(len) = string_len(&e) else {
            ctx.r.error(WRONGTYPE);
            return;
        };
        // Neither longer nor a different bit: nothing changes (no invalidation, no
        // notification), as in Redis 7.0.
        if byte < len {
            let cur = string_bytes(&e).map_or(0, |b| (b[byte] >> bit) & 1);
            if cur == on {
                // Redis still turns the value into a raw string (OBJECT ENCODING shows it).
                growable_string(e.same_value_mut());
                ctx.r.int(cur as i64);
                return;
            }
        }
        let v = growable_string(&mut e);
        if v.len() <= byte {
            v.resize(byte + 1, 0);
        }
        let old = (v[byte] >> bit) & 1;
        v[byte] = (v[byte] & !(1 << bit)) | (on << bit);
        ctx.r.int(old as i64);
        set = true;
    }
    if !set {
        let mut v = vec![0u8; byte + 1];
        v[byte] = on << bit;
        ctx.shard.store(
            ctx.db,
            Entry::new(&args[1], NewValue::Obj(Box::new(Object::Str(v))), None),
            ctx.now,
        );
        ctx.r.int(0);
    }
    ctx.shard.notify(STRING, "setbit", &args[1], ctx.db);
}

fn getbit(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let Ok(offset) = bit_offset(ctx.shard, &args[2], false, 0) else {
        ctx.r.error(BIT_OFFSET_ERR);
        return;
    };
    let Some(e) = ctx.shard.lookup_read(ctx.db, &args[1], ctx.now) else {
        ctx.r.int(0);
        return;
    };
    let Some(s) = string_bytes(e) else {
        ctx.r.error(WRONGTYPE);
        return;
    };
    let byte = (offset >> 3) as usize;
    let bit = 7 - (offset & 7);
    let v = s.get(byte).map_or(0, |b| (b >> bit) & 1);
    ctx.r.int(v as i64);
}

// ---- BITCOUNT BITPOS -------------------------------------------------------------------

/// Parses a BYTE|BIT unit argument.
fn parse_unit(arg: &[u8]) -> Option<bool> {
    if eq_ic(arg, "bit") {
        Some(true)
    } else if eq_ic(arg, "byte") {
        Some(false)
    } else {
        None
    }
}

fn bitcount(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let Some(e) = ctx.shard.lookup_read(ctx.db, &args[1], ctx.now) else {
        ctx.r.int(0);
        return;
    };
    let Some(p) = string_bytes(e) else {
        ctx.r.error(WRONGTYPE);
        return;
    };
    let strlen = p.len() as i64;
    let (start, end, first_mask, last_mask) = match args.len() {
        4 | 5 => {
            let Some(start) = parse_i64(&args[2]) else {
                ctx.r.error(NOT_INT);
                return;
            };
            let Some(end) = parse_i64(&args[3]) else {
                ctx.r.error(NOT_INT);
                return;
            };
            // Redis answers an inverted negative range before looking at the unit.
            if start < 0 && end < 0 && start > end {
                ctx.r.int(0);
                return;
            }
            let mut isbit = false;
            if args.len() == 5 {
                match parse_unit(&args[4]) {
                    Some(b) => isbit = b,
                    None => {
                        ctx.r.error(SYNTAX);
                        return;
                    }
                }
            }
            resolve_range(start, end, strlen, isbit)
        }
        2 => (0, strlen - 1, 0, 0),
        _ => {
            ctx.r.error(SYNTAX);
            return;
        }
    };
    if start > end {
        ctx.r.int(0);
        return;
    }
    let (s, e) = (start as usize, end as usize);
    let mut count = popcount(&p[s..=e]);
    if first_mask != 0 || last_mask != 0 {
        // Bits of the edge bytes outside the range were counted: take them back.
        let mut edges = [0u8; 2];
        if first_mask != 0 {
            edges[0] = p[s] & first_mask;
        }
        if last_mask != 0 {
            edges[1] = p[e] & last_mask;
        }
        count -= popcount(&edges);
    }
    ctx.r.int(count);
}

fn bitpos(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let bit = match parse_i64(&args[2]) {
        None => {
            ctx.r.error(NOT_INT);
            return;
        }
        Some(b @ (0 | 1)) => b == 1,
        Some(_) => {
            ctx.r.error("ERR The bit argument must be 1 or 0.");
            return;
        }
    };
    let Some(e) = ctx.shard.lookup_read(ctx.db, &args[1], ctx.now) else {
        // A missing key is an infinite run of zeros.
        ctx.r.int(if bit { -1 } else { 0 });
        return;
    };
    let Some(p) = string_bytes(e) else {
        ctx.r.error(WRONGTYPE);
        return;
    };
    let strlen = p.len() as i64;
    let mut end_given = false;
    let (mut start, end, first_mask, last_mask) = match args.len() {
        4..=6 => {
            let Some(start) = parse_i64(&args[3]) else {
                ctx.r.error(NOT_INT);
                return;
            };
            let mut isbit = false;
            if args.len() == 6 {
                match parse_unit(&args[5]) {
                    Some(b) => isbit = b,
                    None => {
                        ctx.r.error(SYNTAX);
                        return;
                    }
                }
            }
            let end = if args.len() >= 5 {
                let Some(end) = parse_i64(&args[4]) else {
                    ctx.r.error(NOT_INT);
                    return;
                };
                end_given = true;
                end
            } else if isbit {
                (strlen << 3) + 7
            } else {
                strlen - 1
            };
            resolve_range(start, end, strlen, isbit)
        }
        3 => (0, strlen - 1, 0, 0),
        _ => {
            ctx.r.error(SYNTAX);
            return;
        }
    };
    if start > end {
        ctx.r.int(-1);
        return;
    }
    // A literal port of Redis's scan: the masked first byte, the whole bytes, the masked
    // last byte, stopping at the first part that has the bit.
    let mut bytes = end - start + 1;
    let pos: i64 = 'scan: {
        if first_mask != 0 {
            let mut c = if bit {
                p[start as usize] & !first_mask
            } else {
                p[start as usize] | first_mask
            };
            if last_mask != 0 && bytes == 1 {
                c = if bit { c & !last_mask } else { c | last_mask };
            }
            let pos = bitpos_in(&[c], bit);
            if bytes == 1 || (pos != -1 && pos != 8) {
                break 'scan pos;
            }
            start += 1;
            bytes -= 1;
        }
        let curbytes = bytes - i64::from(last_mask != 0);
        if curbytes > 0 {
            let s = start as usize;
            let pos = bitpos_in(&p[s..s + curbytes as usize], bit);
            if bytes == curbytes || (pos != -1 && pos != curbytes << 3) {
                break 'scan pos;
            }
            start += curbytes;
            bytes -= curbytes;
        }
        let c = if bit {
            p[end as usize] & !last_mask
        } else {
            p[end as usize] | last_mask
        };
        bitpos_in(&[c], bit)
    };
    // Looking for a 0 in an explicit range: the padding after the range does not count.
    if end_given && !bit && pos == bytes << 3 {
        ctx.r.int(-1);
        return;
    }
    ctx.r.int(if pos != -1 { pos + (start << 3) } else { pos });
}

// ---- BITOP -----------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// Parses the operation and checks NOT's single source, with Redis's errors.
fn parse_bitop(args: &[Bytes]) -> Result<BitOp, &'static str> {
    let op = if eq_ic(&args[1], "and") {
        BitOp::And
    } else if eq_ic(&args[1], "or") {
        BitOp::Or
    } else if eq_ic(&args[1], "xor") {
        BitOp::Xor
    } else if eq_ic(&args[1], "not") {
        BitOp::Not
    } else {
        return Err(SYNTAX);
    };
    if op == BitOp::Not && args.len() != 4 {
        return Err("ERR BITOP NOT must be called with a single source key.");
    }
    Ok(op)
}

/// Folds one source into the running result. Sources are zero-padded to the longest, so the
/// fold is associative and commutative and partial results (one per shard) fold the same way.
/// NOT has a single source; it is inverted at the end (`bitop_finish`).
fn bitop_fold(acc: &mut Option<Vec<u8>>, src: &[u8], op: BitOp) {
    let Some(res) = acc else {
        *acc = Some(src.to_vec());
        return;
    };
    if res.len() < src.len() {
        res.resize(src.len(), 0);
    }
    match op {
        BitOp::And => {
            for (r, s) in res.iter_mut().zip(src) {
                *r &= s;
            }
            for r in res.iter_mut().skip(src.len()) {
                *r = 0;
            }
        }
        BitOp::Or => {
            for (r, s) in res.iter_mut().zip(src) {
                *r |= s;
            }
        }
        BitOp::Xor => {
            for (r, s) in res.iter_mut().zip(src) {
                *r ^= s;
            }
        }
        BitOp::Not => {}
    }
}

fn bitop_finish(acc: Option<Vec<u8>>, op: BitOp) -> Vec<u8> {
    let mut res = acc.unwrap_or_default();
    if op == BitOp::Not {
        for b in res.iter_mut() {
            *b = !*b;
        }
    }
    res
}

/// Reads and folds `keys` (in order) on one shard. Err on the first non-string source.
fn bitop_read(
    s: &mut Shard,
    db: usize,
    keys: &[Bytes],
    op: BitOp,
    now: u64,
) -> Result<Option<Vec<u8>>, ()> {
    let mut acc = None;
    for k in keys {
        match s.lookup_read(db, k, now) {
            None => bitop_fold(&mut acc, &[], op),
            Some(e) => match string_bytes(e) {
                Some(b) => bitop_fold(&mut acc, &b, op),
                None => return Err(()),
            },
        }
    }
    Ok(acc)
}

/// Stores BITOP's result (a "raw" string, no TTL) or deletes the destination when empty.
fn bitop_store(s: &mut Shard, db: usize, dest: &[u8], res: &[u8], now: u64) {
    if res.is_empty() {
        if s.remove(db, dest, now).is_some() {
            s.notify(crate::config::notify::GENERIC, "del", dest, db);
        }
    } else {
        let mut e = Entry::new(dest, NewValue::Str(res), None);
        e.set_raw_hint(true);
        s.store(db, e, now);
        s.notify(STRING, "set", dest, db);
    }
}

fn bitop(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let op = match parse_bitop(args) {
        Ok(op) => op,
        Err(e) => {
            ctx.r.error(e);
            return;
        }
    };
    let Ok(acc) = bitop_read(ctx.shard, ctx.db, &args[3..], op, ctx.now) else {
        ctx.r.error(WRONGTYPE);
        return;
    };
    let res = bitop_finish(acc, op);
    bitop_store(ctx.shard, ctx.db, &args[2], &res, ctx.now);
    ctx.r.int(res.len() as i64);
}

/// BITOP with keys on several shards, atomically under one Tx: every shard folds its sources,
/// the partial results are folded here, and the destination's shard stores the result.
fn bitop_cross(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        let op = match parse_bitop(&args) {
            Ok(op) => op,
            Err(e) => {
                c.out.error(e);
                return;
            }
        };
        let positions: Vec<usize> = (2..args.len()).collect();
        let groups = group_by_shard(c, &args, &positions);
        let tx = Tx::begin_keys(c, &args, &groups, true).await;
        let db = c.db;
        let mut rxs = Vec::new();
        for (sid, pos) in &groups {
            let keys: Vec<Bytes> = pos
                .iter()
                .filter(|&&p| p >= 3)
                .map(|&p| args[p].clone())
                .collect();
            if keys.is_empty() {
                continue;
            }
            rxs.push(tx.send(*sid, move |s| {
                bitop_read(s, db, &keys, op, crate::shard::now_ms())
            }));
        }
        let mut acc: Option<Vec<u8>> = None;
        let mut wrongtype = false;
        for rx in rxs {
            match rx.await {
                Ok(Ok(Some(part))) => bitop_fold(&mut acc, &part, op),
                Ok(Ok(None)) => {}
                Ok(Err(())) => wrongtype = true,
                Err(_) => {}
            }
        }
        if wrongtype {
            tx.end();
            c.out.error(WRONGTYPE);
            return;
        }
        let res = bitop_finish(acc, op);
        let len = res.len();
        let dest = args[2].clone();
        let rx = tx.send(c.shard_of(&dest), move |s| {
            bitop_store(s, db, &dest, &res, crate::shard::now_ms())
        });
        let _ = rx.await;
        tx.end();
        c.out.int(len as i64);
    })
}

// ---- BITFIELD --------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FieldOp {
    Get,
    Set,
    Incrby,
}

#[derive(Clone, Copy, Debug)]
struct BitfieldOp {
    op: FieldOp,
    offset: u64,
    value: i64,
    signed: bool,
    bits: u32,
    overflow: Overflow,
}

/// Parses BITFIELD's operations with Redis's errors (the first error wins). Returns the ops
/// and the highest bit a write reaches (None when every op is a GET).
fn parse_bitfield(
    shard: &Shard,
    args: &[Bytes],
) -> Result<(Vec<BitfieldOp>, Option<u64>), &'static str> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut highest_write: Option<u64> = None;
    let mut j = 2;
    while j < args.len() {
        let remargs = args.len() - j - 1;
        let sub = &args[j];
        let op = if eq_ic(sub, "get") && remargs >= 2 {
            FieldOp::Get
        } else if eq_ic(sub, "set") && remargs >= 3 {
            FieldOp::Set
        } else if eq_ic(sub, "incrby") && remargs >= 3 {
            FieldOp::Incrby
        } else if eq_ic(sub, "overflow") && remargs >= 1 {
            let ty = &args[j + 1];
            overflow = if eq_ic(ty, "wrap") {
                Overflow::Wrap
            } else if eq_ic(ty, "sat") {
                Overflow::Sat
            } else if eq_ic(ty, "fail") {
                Overflow::Fail
            } else {
                return Err("ERR Invalid OVERFLOW type specified");
            };
            j += 2;
            continue;
        } else {
            return Err(SYNTAX);
        };
        let (signed, bits) = bitfield_type(&args[j + 1]).map_err(|_| BITFIELD_TYPE_ERR)?;
        let offset = bit_offset(shard, &args[j + 2], true, bits).map_err(|_| BIT_OFFSET_ERR)?;
        let mut value = 0;
        if op != FieldOp::Get {
            let last = offset + bits as u64 - 1;
            highest_write = Some(highest_write.map_or(last, |h| h.max(last)));
            value = parse_i64(&args[j + 3]).ok_or(NOT_INT)?;
        }
        ops.push(BitfieldOp {
            op,
            offset,
            value,
            signed,
            bits,
            overflow,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    Ok((ops, highest_write))
}

/// BITFIELD GET on a string that may be shorter than the field: Redis copies up to 9 bytes
/// into a zero-padded buffer first.
fn bitfield_get(src: &[u8], op: &BitfieldOp) -> i64 {
    let byte = (op.offset >> 3) as usize;
    let mut buf = [0u8; 9];
    if byte < src.len() {
        let n = (src.len() - byte).min(9);
        buf[..n].copy_from_slice(&src[byte..byte + n]);
    }
    let off = op.offset - (byte as u64) * 8;
    if op.signed {
        get_signed_bitfield(&buf, off, op.bits)
    } else {
        get_unsigned_bitfield(&buf, off, op.bits) as i64
    }
}

/// Runs one SET or INCRBY on `p` (long enough for it). Returns the reply value, None for
/// an overflow under OVERFLOW FAIL (nothing written).
fn bitfield_write(p: &mut [u8], op: &BitfieldOp) -> Option<i64> {
    if op.signed {
        let old = get_signed_bitfield(p, op.offset, op.bits);
        let (newval, ret, overflow) = if op.op == FieldOp::Incrby {
            let (ovf, lim) = check_signed_overflow(old, op.value, op.bits, op.overflow);
            let n = if ovf != 0 {
                lim.unwrap_or(0)
            } else {
                old.wrapping_add(op.value)
            };
            (n, n, ovf)
        } else {
            let (ovf, lim) = check_signed_overflow(op.value, 0, op.bits, op.overflow);
            let n = if ovf != 0 {
                lim.unwrap_or(op.value)
            } else {
                op.value
            };
            (n, old, ovf)
        };
        if overflow != 0 && op.overflow == Overflow::Fail {
            return None;
        }
        set_unsigned_bitfield(p, op.offset, op.bits, newval as u64);
        Some(ret)
    } else {
        let old = get_unsigned_bitfield(p, op.offset, op.bits);
        let (newval, ret, overflow) = if op.op == FieldOp::Incrby {
            let (ovf, lim) = check_unsigned_overflow(old, op.value, op.bits, op.overflow);
            let n = match lim {
                Some(l) if ovf != 0 => l,
                _ => old.wrapping_add(op.value as u64),
            };
            (n, n, ovf)
        } else {
            let v = op.value as u64;
            let (ovf, lim) = check_unsigned_overflow(v, 0, op.bits, op.overflow);
            let n = match lim {
                Some(l) if ovf != 0 => l,
                _ => v,
            };
            (n, old, ovf)
        };
        if overflow != 0 && op.overflow == Overflow::Fail {
            return None;
        }
        set_unsigned_bitfield(p, op.offset, op.bits, newval);
        Some(ret as i64)
    }
}

fn bitfield(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    bitfield_generic(ctx, args, false);
}

fn bitfield_ro(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    bitfield_generic(ctx, args, true);
}

fn bitfield_generic(ctx: &mut ShardCtx<'_>, args: &[Bytes], readonly_cmd: bool) {
    let (ops, highest_write) = match parse_bitfield(ctx.shard, args) {
        Ok(x) => x,
        Err(e) => {
            ctx.r.error(e);
            return;
        }
    };
    let key = &args[1];
    let Some(highest) = highest_write else {
        // Only GETs: a read (a missing key reads as zeros).
        let src = match ctx.shard.lookup_read(ctx.db, key, ctx.now) {
            None => None,
            Some(e) => match string_bytes(e) {
                Some(b) => Some(b),
                None => {
                    ctx.r.error(WRONGTYPE);
                    return;
                }
            },
        };
        let src = src.as_deref().unwrap_or(&[]);
        ctx.r.array(ops.len());
        for op in &ops {
            ctx.r.int(bitfield_get(src, op));
        }
        return;
    };
    if readonly_cmd {
        ctx.r
            .error("ERR BITFIELD_RO only supports the GET subcommand");
        return;
    }
    let need = (highest >> 3) as usize + 1;
    let r = &mut *ctx.r;
    // Returns how many writes took effect (Redis notifies "setbit" only then).
    let run = |v: &mut Vec<u8>, r: &mut damselfly_resp::ReplyBuilder| {
        if v.len() < need {
            v.resize(need, 0);
        }
        let mut changes = 0;
        r.array(ops.len());
        for op in &ops {
            if op.op == FieldOp::Get {
                r.int(bitfield_get(v, op));
            } else {
                match bitfield_write(v, op) {
                    Some(x) => {
                        changes += 1;
                        r.int(x)
                    }
                    None => r.null(),
                }
            }
        }
        changes
    };
    let mut changes = None;
    if let Some(mut e) = ctx.shard.lookup_write(ctx.db, key, ctx.now) {
        if string_len(&e).is_none() {
            r.error(WRONGTYPE);
            return;
        }
        // Converted to a raw string either way; changed (for tracking) only by a write that
        // took effect, as Redis signals it only then.
        let n = run(growable_string(e.same_value_mut()), r);
        if n > 0 {
            e.mark_changed();
        }
        changes = Some(n);
    }
    let changes = match changes {
        Some(n) => n,
        None => {
            let mut v = Vec::new();
            let n = run(&mut v, r);
            ctx.shard.store(
                ctx.db,
                Entry::new(key, NewValue::Obj(Box::new(Object::Str(v))), None),
                ctx.now,
            );
            n
        }
    };
    if changes > 0 {
        ctx.shard.notify(STRING, "setbit", key, ctx.db);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitfield_type_parsing() {
        assert_eq!(bitfield_type(b"i64"), Ok((true, 64)));
        assert_eq!(bitfield_type(b"u63"), Ok((false, 63)));
        assert!(bitfield_type(b"U8").is_err());
        assert!(bitfield_type(b"I16").is_err());
        assert_eq!(bitfield_type(b"u8\0junk"), Ok((false, 8)));
        assert!(bitfield_type(b"u64").is_err());
        assert!(bitfield_type(b"i65").is_err());
        assert!(bitfield_type(b"i0").is_err());
        assert!(bitfield_type(b"u08").is_err());
        assert!(bitfield_type(b"x8").is_err());
        assert!(bitfield_type(b"").is_err());
        assert!(bitfield_type(b"u").is_err());
    }

    #[test]
    fn bitfield_get_set_roundtrip() {
        let mut p = vec![0u8; 16];
        set_unsigned_bitfield(&mut p, 3, 13, 0x1abc);
        assert_eq!(get_unsigned_bitfield(&p, 3, 13), 0x1abc);
        assert_eq!(get_signed_bitfield(&p, 3, 13), 0x1abc - 0x2000);
        set_unsigned_bitfield(&mut p, 0, 64, u64::MAX);
        assert_eq!(get_signed_bitfield(&p, 0, 64), -1);
        assert_eq!(get_unsigned_bitfield(&p, 1, 63), i64::MAX as u64);
        // Writing only touches the field's own bits.
        let mut q = vec![0xffu8; 2];
        set_unsigned_bitfield(&mut q, 4, 8, 0);
        assert_eq!(q, vec![0xf0, 0x0f]);
    }

    #[test]
    fn unsigned_overflow() {
        use Overflow::*;
        // u2: 3 + 1 wraps to 0, saturates at 3, fails.
        assert_eq!(check_unsigned_overflow(3, 1, 2, Wrap), (1, Some(0)));
        assert_eq!(check_unsigned_overflow(3, 10, 2, Sat), (1, Some(3)));
        assert_eq!(check_unsigned_overflow(3, 1, 2, Fail), (1, None));
        assert_eq!(check_unsigned_overflow(1, -10, 2, Sat), (-1, Some(0)));
        assert_eq!(check_unsigned_overflow(1, -2, 2, Wrap), (1, Some(3)));
        assert_eq!(check_unsigned_overflow(1, 1, 2, Wrap), (0, None));
        // SET u8 -5 (value as u64 is huge): SAT gives the max, WRAP the low bits.
        assert_eq!(
            check_unsigned_overflow(-5i64 as u64, 0, 8, Sat),
            (1, Some(255))
        );
        assert_eq!(
            check_unsigned_overflow(-5i64 as u64, 0, 8, Wrap),
            (1, Some(251))
        );
        assert_eq!(
            check_unsigned_overflow(i64::MAX as u64, 1, 63, Wrap),
            (1, Some(0))
        );
    }

    #[test]
    fn signed_overflow() {
        use Overflow::*;
        assert_eq!(check_signed_overflow(100, 100, 8, Wrap), (1, Some(-56)));
        assert_eq!(check_signed_overflow(100, 100, 8, Sat), (1, Some(127)));
        assert_eq!(check_signed_overflow(127, -300, 8, Sat), (-1, Some(-128)));
        assert_eq!(check_signed_overflow(-128, -1, 8, Fail), (-1, None));
        assert_eq!(check_signed_overflow(200, 0, 8, Wrap), (1, Some(-56)));
        assert_eq!(check_signed_overflow(-200, 0, 8, Sat), (-1, Some(-128)));
        assert_eq!(check_signed_overflow(5, -3, 8, Sat), (0, None));
        assert_eq!(
            check_signed_overflow(i64::MAX, i64::MAX, 64, Wrap),
            (1, Some(-2))
        );
        assert_eq!(
            check_signed_overflow(i64::MAX, i64::MAX, 64, Sat),
            (1, Some(i64::MAX))
        );
        assert_eq!(
            check_signed_overflow(i64::MIN, -1, 64, Sat),
            (-1, Some(i64::MIN))
        );
        assert_eq!(check_signed_overflow(-1, 1, 64, Fail), (0, None));
    }

    #[test]
    fn bitpos_and_popcount() {
        assert_eq!(popcount(b"foobar"), 26);
        assert_eq!(popcount(&[0xff; 17]), 136);
        assert_eq!(bitpos_in(&[0x00, 0x0f], true), 12);
        assert_eq!(bitpos_in(&[0x00, 0x00], true), -1);
        assert_eq!(bitpos_in(&[0xff, 0xf0], false), 12);
        assert_eq!(bitpos_in(&[0xff, 0xff], false), 16);
    }

    #[test]
    fn ranges() {
        // BITCOUNT foobar 5 30 BIT: bytes 0..=3, first 5 bits and last bit masked out.
        assert_eq!(resolve_range(5, 30, 6, true), (0, 3, 0xf8, 0x01));
        assert_eq!(resolve_range(-2, -1, 6, false), (4, 5, 0, 0));
        assert_eq!(resolve_range(0, 1000, 6, false), (0, 5, 0, 0));
        assert_eq!(resolve_range(3, 1, 6, true), (3, 1, 0, 0));
    }

    #[test]
    fn bitop_folds() {
        let mut acc = None;
        bitop_fold(&mut acc, b"\xf0\x0f", BitOp::And);
        bitop_fold(&mut acc, b"\xff", BitOp::And);
        assert_eq!(acc.as_deref(), Some(&b"\xf0\x00"[..]));
        let mut acc = None;
        bitop_fold(&mut acc, b"", BitOp::And);
        bitop_fold(&mut acc, b"\xff\xff", BitOp::And);
        assert_eq!(acc.as_deref(), Some(&b"\x00\x00"[..]));
        let mut acc = None;
        bitop_fold(&mut acc, b"\x01", BitOp::Xor);
        bitop_fold(&mut acc, b"\x03\x04", BitOp::Xor);
        assert_eq!(acc.as_deref(), Some(&b"\x02\x04"[..]));
        assert_eq!(
            bitop_finish(Some(b"\x0f".to_vec()), BitOp::Not),
            b"\xf0".to_vec()
        );
        assert!(bitop_finish(None, BitOp::Or).is_empty());
    }
}
