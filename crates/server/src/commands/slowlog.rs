//! SLOWLOG GET|LEN|RESET|HELP (Redis's slowlog.c) over `crate::slowlog`.
//!
//! Invariant: replies are Redis 7.0's: each entry `[id, unix time, microseconds, [args...],
//! "ip:port", name]`, newest first.

use super::{parse_i64, reply_help, subcommand_syntax_error};
use crate::command::TableBuilder;
use crate::conn::Conn;
use bytes::Bytes;

pub fn register(t: &mut TableBuilder) {
    t.conn("slowlog|get", get);
    t.conn("slowlog|len", len);
    t.conn("slowlog|reset", reset);
    t.conn("slowlog|help", help);
}

fn get(c: &mut Conn, args: &[Bytes]) {
    if args.len() > 3 {
        subcommand_syntax_error(c, args);
        return;
    }
    let count = match args.get(2) {
        None => Some(10),
        Some(a) => match parse_i64(a) {
            Some(-1) => None,
            Some(n) if n >= 0 => Some(n as usize),
            _ => {
                c.out
                    .error("ERR count should be greater than or equal to -1");
                return;
            }
        },
    };
    let entries = c.globals.slowlog.get(count);
    c.out.array(entries.len());
    for e in &entries {
        c.out.array(6);
        c.out.int(e.id as i64);
        c.out.int(e.time as i64);
        c.out.int(e.usec as i64);
        c.out.array(e.args.len());
        for a in &e.args {
            c.out.bulk(a);
        }
        c.out.bulk(e.peer.as_bytes());
        c.out.bulk(&e.name);
    }
}

fn len(c: &mut Conn, _args: &[Bytes]) {
    let n = c.globals.slowlog.len();
    c.out.int(n as i64);
}

fn reset(c: &mut Conn, _args: &[Bytes]) {
    c.globals.slowlog.reset();
    c.out.ok();
}

fn help(c: &mut Conn, _args: &[Bytes]) {
    reply_help(
        c,
        &[
            "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
            "HELP",
            "    Prints this help.",
        ],
    );
}
