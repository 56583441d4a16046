//! MODULE (Redis's module.c): the server loads no modules. MODULE LIST answers an empty list,
//! as a Redis with none loaded does (clients such as RedisInsight and redis-om ask on
//! connect); LOAD, LOADEX and UNLOAD are gated by `enable-module-command` like Redis's (`no` by
//! default, checked in `conn.rs`) and, when allowed, fail with Redis's texts.
//!
//! Invariant: nothing here loads code into the process.

use super::reply_help;
use crate::command::TableBuilder;
use crate::conn::Conn;
use bytes::Bytes;

pub fn register(t: &mut TableBuilder) {
    t.conn("module|list", list);
    t.conn("module|load", load);
    t.conn("module|loadex", load);
    t.conn("module|unload", unload);
    t.conn("module|help", help);
}

fn list(c: &mut Conn, _args: &[Bytes]) {
    c.out.array(0);
}

fn load(c: &mut Conn, args: &[Bytes]) {
    crate::log::info(&format!(
        "Module {} failed to load: this server does not load modules",
        String::from_utf8_lossy(&args[2])
    ));
    c.out
        .error("ERR Error loading the extension. Please check the server logs.");
}

fn unload(c: &mut Conn, _args: &[Bytes]) {
    c.out
        .error("ERR Error unloading module: no such module with that name");
}

fn help(c: &mut Conn, _args: &[Bytes]) {
    reply_help(
        c,
        &[
            "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
            "HELP",
            "    Prints this help.",
        ],
    );
}
