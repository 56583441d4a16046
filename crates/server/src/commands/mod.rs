//! Command families, one module each (as Redis's t_*.c and Dragonfly's *_family.cc), plus the
//! helpers they share: argument parsing with Redis's exact error texts.
//!
//! Invariant: a family registers its commands in `register` and nowhere else; replies use
//! only `ReplyBuilder`, never raw bytes, so RESP2/RESP3 stay right.

pub mod bitmaps;
pub mod cluster;
pub mod connection;
pub mod databases;
pub mod keys;
pub mod latency;
pub mod meta;
pub mod modules;
pub mod pubsub;
pub mod replication;
pub mod server_cmds;
pub mod slowlog;
pub mod strings;
pub mod transactions;

use crate::command::{CommandTable, TableBuilder};
use damselfly_core::{Entry, Object, ValueRef};
use std::borrow::Cow;

/// The complete command table.
pub fn build_table() -> CommandTable {
    let mut t = TableBuilder::default();
    connection::register(&mut t);
    strings::register(&mut t);
    bitmaps::register(&mut t);
    keys::register(&mut t);
    databases::register(&mut t);
    server_cmds::register(&mut t);
    cluster::register(&mut t);
    replication::register(&mut t);
    modules::register(&mut t);
    slowlog::register(&mut t);
    latency::register(&mut t);
    pubsub::register(&mut t);
    transactions::register(&mut t);
    t.build()
}

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INT: &str = "ERR value is not an integer or out of range";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const DB_INDEX: &str = "ERR DB index is out of range";

/// Replies a HELP text as Redis's `addReplyHelp` does: status lines.
pub fn reply_help(c: &mut crate::conn::Conn, lines: &[&str]) {
    c.out.array(lines.len());
    for l in lines {
        c.out.simple(l);
    }
}

/// An argument as C code sees it: up to its first NUL.
pub fn c_str(arg: &[u8]) -> &[u8] {
    match arg.iter().position(|&b| b == 0) {
        Some(n) => &arg[..n],
        None => arg,
    }
}

/// Redis's `addReplySubcommandSyntaxError`: the subcommand as sent (up to its first NUL, at
/// most 128 bytes, CR/LF as spaces, as `addReplyErrorFormat` does), the command uppercased.
pub fn subcommand_syntax_error(c: &mut crate::conn::Conn, args: &[bytes::Bytes]) {
    let sub = c_str(&args[1]);
    let sub = &sub[..sub.len().min(128)];
    let mut e = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
    // `error_bytes` turns CR and LF into spaces.
    e.extend_from_slice(sub);
    e.extend_from_slice(b"'. Try ");
    e.extend(c_str(&args[0]).iter().map(|b| b.to_ascii_uppercase()));
    e.extend_from_slice(b" HELP.");
    c.out.error_bytes(&e);
}

/// Redis's `getTimeoutFromObjectOrReply` for milliseconds: a non-negative integer, else its
/// error is replied and `None` returned.
pub fn timeout_ms(c: &mut crate::conn::Conn, arg: &[u8]) -> Option<u64> {
    match parse_i64(arg) {
        None => {
            c.out.error("ERR timeout is not an integer or out of range");
            None
        }
        Some(ms) if ms < 0 => {
            c.out.error("ERR timeout is negative");
            None
        }
        Some(ms) => Some(ms as u64),
    }
}

/// Parses an integer argument as Redis's `string2ll` (strict: no spaces, no '+', no leading 0).
pub fn parse_i64(arg: &[u8]) -> Option<i64> {
    damselfly_resp::parse_i64_strict(arg)
}

/// Parses a float argument as Redis's `getLongDoubleFromObject`/`strtold` would for doubles:
/// no leading/trailing space, "inf"/"-inf" allowed, NaN rejected.
pub fn parse_f64(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() || arg[0].is_ascii_whitespace() || arg[arg.len() - 1].is_ascii_whitespace() {
        return None;
    }
    let s = std::str::from_utf8(arg).ok()?;
    let v: f64 = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => s.parse().ok()?,
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
#[inline]
pub fn eq_ic(arg: &[u8], kw: &str) -> bool {
    arg.eq_ignore_ascii_case(kw.as_bytes())
}

/// A string value's bytes (integers rendered in decimal), or None for non-strings.
pub fn string_bytes(e: &Entry) -> Option<Cow<'_, [u8]>> {
    match e.value() {
        ValueRef::Str(s) => Some(Cow::Borrowed(s)),
        ValueRef::Int(i) => Some(Cow::Owned(i.to_string().into_bytes())),
        ValueRef::Obj(Object::Str(v)) => Some(Cow::Borrowed(v.as_slice())),
    }
}

/// Redis's TYPE name of an entry's value.
pub fn type_name(e: &Entry) -> &'static str {
    match e.value() {
        ValueRef::Str(_) | ValueRef::Int(_) => "string",
        ValueRef::Obj(o) => o.type_name(),
    }
}

/// Redis's OBJECT ENCODING of an entry's value.
pub fn encoding_name(e: &Entry) -> &'static str {
    match e.value() {
        ValueRef::Int(_) => "int",
        ValueRef::Str(s) => {
            if s.len() <= 44 && !e.raw_hint() {
                "embstr"
            } else {
                "raw"
            }
        }
        ValueRef::Obj(Object::Str(_)) => "raw",
    }
}

/// The value to store for string bytes, choosing Redis's integer encoding when it applies.
pub fn new_string_value(bytes: &[u8]) -> damselfly_core::NewValue<'_> {
    match damselfly_core::value::as_canonical_int(bytes) {
        Some(i) => damselfly_core::NewValue::Int(i),
        None => damselfly_core::NewValue::Str(bytes),
    }
}
