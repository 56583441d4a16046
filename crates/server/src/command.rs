//! The one command table: name -> handler, joined with Redis's own metadata (arity, flags, key
//! positions, ACL categories, docs) from `commands::meta`.
//!
//! A handler is one of three kinds, which is what routing needs to know:
//! - `Keyed`: runs on the shard that owns its keys, as a synchronous shard callback (inline when
//!   that is the connection's own shard, else batched into one message per shard). If a call's
//!   keys span shards, its `cross` coordinator runs instead (atomic via `coord::Tx`).
//! - `Conn`: synchronous, touches only the connection (PING, ECHO, SELECT, HELLO...).
//! - `Coord`: asynchronous coordinator code (fan-out to all shards, cross-shard work).
//!
//! Invariant: every command the server answers is registered here exactly once, and COMMAND,
//! arity checks and key extraction all read the same entry.

use crate::commands::meta::{self, CommandMeta};
use crate::conn::Conn;
use crate::shard::Shard;
use bytes::Bytes;
use damselfly_resp::ReplyBuilder;
/// Fast non-cryptographic hashing for the table (names are not attacker-chosen keys that stay).
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::future::Future;
use std::pin::Pin;

/// What a shard callback sees: the shard, the connection's db and protocol, the clock.
pub struct ShardCtx<'a> {
    pub shard: &'a mut Shard,
    pub db: usize,
    pub r: &'a mut ReplyBuilder,
    pub now: u64,
    /// CLIENT NO-TOUCH: reads do not update access time / frequency.
    pub no_touch: bool,
}

pub type ShardHandler = fn(&mut ShardCtx<'_>, &[Bytes]);
pub type LocalFut<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;
pub type CoordHandler = for<'a> fn(&'a mut Conn, Vec<Bytes>) -> LocalFut<'a>;
pub type ConnHandler = fn(&mut Conn, &[Bytes]);

#[derive(Clone, Copy)]
pub enum Handler {
    Keyed {
        shard: ShardHandler,
        cross: Option<CoordHandler>,
    },
    Conn(ConnHandler),
    Coord(CoordHandler),
}

/// Command flags we route on (parsed from Redis's flag names).
pub mod flags {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const NOSCRIPT: u32 = 1 << 4;
    pub const LOADING: u32 = 1 << 5;
    pub const STALE: u32 = 1 << 6;
    pub const FAST: u32 = 1 << 7;
    pub const NO_AUTH: u32 = 1 << 8;
    pub const MAY_REPLICATE: u32 = 1 << 9;
    pub const MOVABLE_KEYS: u32 = 1 << 10;
    pub const PUBSUB: u32 = 1 << 11;
    pub const BLOCKING: u32 = 1 << 12;
    pub const SKIP_MONITOR: u32 = 1 << 13;
    pub const SKIP_SLOWLOG: u32 = 1 << 15;
    /// Refused inside MULTI ("Command not allowed inside a transaction").
    pub const NO_MULTI: u32 = 1 << 16;
    /// Gated by `enable-debug-command` / `enable-module-command`. Redis's CMD_PROTECTED,
    /// which COMMAND INFO does not list, so it is set by name ([`of`]).
    pub const PROTECTED: u32 = 1 << 14;

    /// The flags of command `name` (`module|load` for a subcommand) from its Redis flag names.
    pub fn of(name: &str, names: &[String]) -> u32 {
        let protected = match name {
            "debug" | "module|load" | "module|loadex" | "module|unload" => PROTECTED,
            _ => 0,
        };
        parse(names) | protected
    }

    pub fn parse(names: &[String]) -> u32 {
        let mut f = 0;
        for n in names {
            f |= match n.as_str() {
                "write" => WRITE,
                "readonly" => READONLY,
                "denyoom" => DENYOOM,
                "admin" => ADMIN,
                "noscript" => NOSCRIPT,
                "loading" => LOADING,
                "stale" => STALE,
                "fast" => FAST,
                "no_auth" => NO_AUTH,
                "may_replicate" => MAY_REPLICATE,
                "movablekeys" => MOVABLE_KEYS,
                "pubsub" => PUBSUB,
                "blocking" => BLOCKING,
                "skip_monitor" => SKIP_MONITOR,
                "skip_slowlog" => SKIP_SLOWLOG,
                "no_multi" => NO_MULTI,
                _ => 0,
            };
        }
        f
    }
}

/// Custom key extraction: the positions of a request's keys.
pub type KeyFn = fn(&[Bytes]) -> Vec<usize>;

/// A request's keys hash to more than one shard (a cross-shard handler must run it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpansShards;

/// One entry of the table.
pub struct Command {
    /// Lowercase full name ("get", "client|kill").
    pub name: &'static str,
    pub handler: Handler,
    pub meta: &'static CommandMeta,
    pub arity: i64,
    pub flags: u32,
    /// Subcommands of a container command (CLIENT, CONFIG, OBJECT...).
    pub subs: HashMap<Vec<u8>, Command>,
    /// Custom key extraction, for commands whose keys are not a first/last/step range.
    pub keys: Option<KeyFn>,
}

impl Command {
    /// The shard that owns every key of `args`: `Ok(Some(s))` when they all hash to shard `s`,
    /// `Ok(None)` when there are no keys, `Err(SpansShards)` when they span shards. Allocation-free for
    /// the common first/last/step commands.
    pub fn key_shard(&self, args: &[Bytes], nshards: usize) -> Result<Option<usize>, SpansShards> {
        let m = self.meta;
        let mut sid = None;
        let mut check = |p: usize| -> Result<(), SpansShards> {
            let s = crate::conn::shard_of(&args[p], nshards);
            match sid {
                None => sid = Some(s),
                Some(x) if x != s => return Err(SpansShards),
                _ => {}
            }
            Ok(())
        };
        if self.keys.is_none() && m.first_key > 0 && m.step > 0 {
            let argc = args.len() as i64;
            let last = if m.last_key < 0 {
                argc + m.last_key
            } else {
                m.last_key
            };
            let mut p = m.first_key;
            while p <= last && p < argc {
                check(p as usize)?;
                p += m.step;
            }
            return Ok(sid);
        }
        for p in self.key_positions(args) {
            if p < args.len() {
                check(p)?;
            }
        }
        Ok(sid)
    }

    /// Positions of key arguments in `args`.
    pub fn key_positions(&self, args: &[Bytes]) -> Vec<usize> {
        match self.keys {
            Some(f) => f(args),
            None => meta::key_positions(self.meta, args.len()),
        }
    }

    pub fn is_write(&self) -> bool {
        self.flags & flags::WRITE != 0
    }
}

/// Builds the table; each command family adds its commands.
#[derive(Default)]
pub struct TableBuilder {
    entries: Vec<(&'static str, Handler, Option<KeyFn>)>,
    synthesized: Vec<(&'static str, &'static CommandMeta)>,
}

impl TableBuilder {
    pub fn keyed(&mut self, name: &'static str, shard: ShardHandler, cross: Option<CoordHandler>) {
        self.entries
            .push((name, Handler::Keyed { shard, cross }, None));
    }

    pub fn conn(&mut self, name: &'static str, h: ConnHandler) {
        self.entries.push((name, Handler::Conn(h), None));
    }

    pub fn coord(&mut self, name: &'static str, h: CoordHandler) {
        self.entries.push((name, Handler::Coord(h), None));
    }

    /// A connection command newer than Redis 7.0.15 (so absent from its metadata): its
    /// metadata is synthesized from the given arity and flags.
    pub fn extra(&mut self, name: &'static str, arity: i64, flag_names: &[&str], h: ConnHandler) {
        use crate::commands::meta::MetaValue;
        let flags: Vec<String> = flag_names.iter().map(|s| s.to_string()).collect();
        let info = MetaValue::Array(vec![
            MetaValue::Bulk(name.as_bytes().to_vec()),
            MetaValue::Int(arity),
            MetaValue::Set(flags.iter().map(|f| MetaValue::Simple(f.clone())).collect()),
            MetaValue::Int(0),
            MetaValue::Int(0),
            MetaValue::Int(0),
            MetaValue::Set(vec![MetaValue::Simple("@connection".into())]),
            MetaValue::Array(vec![]),
            MetaValue::Array(vec![]),
            MetaValue::Array(vec![]),
        ]);
        let m: &'static CommandMeta = Box::leak(Box::new(CommandMeta {
            name: name.to_string(),
            arity,
            flags,
            first_key: 0,
            last_key: 0,
            step: 0,
            acl_categories: vec!["@connection".into()],
            info,
            docs: None,
            subcommands: vec![],
            movable_keys: false,
        }));
        self.synthesized.push((name, m));
        self.entries.push((name, Handler::Conn(h), None));
    }

    /// Overrides key extraction for the most recently added command.
    pub fn with_keys(&mut self, f: KeyFn) {
        if let Some(last) = self.entries.last_mut() {
            last.2 = Some(f);
        }
    }

    /// Joins handlers with metadata. Panics at startup (a programmer error, never a client's)
    /// if a handler names a command Redis does not have.
    pub fn build(self) -> CommandTable {
        let synthesized = self.synthesized;
        let find = |name: &str| -> Option<&'static CommandMeta> {
            meta::lookup(name).or_else(|| {
                synthesized
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, m)| *m)
            })
        };
        let mut map: HashMap<Vec<u8>, Command> = HashMap::default();
        let mut subs: Vec<(&'static str, Handler, Option<KeyFn>)> = Vec::new();
        for (name, handler, keys) in self.entries {
            if name.contains('|') {
                subs.push((name, handler, keys));
                continue;
            }
            let m = find(name).unwrap_or_else(|| panic!("no Redis metadata for command '{name}'"));
            map.insert(
                name.as_bytes().to_vec(),
                Command {
                    name,
                    handler,
                    meta: m,
                    arity: m.arity,
                    flags: flags::of(name, &m.flags),
                    subs: HashMap::default(),
                    keys,
                },
            );
        }
        for (full, handler, keys) in subs {
            let (parent, sub) = full.split_once('|').unwrap_or((full, ""));
            let m = find(full).unwrap_or_else(|| panic!("no Redis metadata for command '{full}'"));
            let pm = meta::lookup(parent)
                .unwrap_or_else(|| panic!("no Redis metadata for command '{parent}'"));
            let parent_name: &'static str = pm.name.as_str();
            let container = map
                .entry(parent.as_bytes().to_vec())
                .or_insert_with(|| Command {
                    name: parent_name,
                    handler: Handler::Conn(|_, _| {}),
                    meta: pm,
                    arity: pm.arity,
                    flags: flags::parse(&pm.flags),
                    subs: HashMap::default(),
                    keys: None,
                });
            container.subs.insert(
                sub.as_bytes().to_vec(),
                Command {
                    name: full,
                    handler,
                    meta: m,
                    arity: m.arity,
                    flags: flags::of(full, &m.flags),
                    subs: HashMap::default(),
                    keys,
                },
            );
        }
        CommandTable { map }
    }
}

/// The finished, immutable table (leaked once at startup and shared by all threads).
pub struct CommandTable {
    pub map: HashMap<Vec<u8>, Command>,
}

/// Why a request cannot be dispatched.
#[derive(Clone, Copy, Debug)]
pub enum LookupError {
    Unknown,
    UnknownSub,
}

impl CommandTable {
    /// Finds the command for `args` (container + subcommand when present).
    pub fn lookup(&self, args: &[Bytes]) -> Result<&Command, LookupError> {
        let mut lower = [0u8; 32];
        let name = &args[0];
        let cmd = if name.len() <= lower.len() {
            for (d, s) in lower.iter_mut().zip(name.iter()) {
                *d = s.to_ascii_lowercase();
            }
            self.map.get(&lower[..name.len()])
        } else {
            None
        }
        .ok_or(LookupError::Unknown)?;
        if cmd.subs.is_empty() || args.len() == 1 {
            return Ok(cmd);
        }
        let sub = args[1].to_ascii_lowercase();
        cmd.subs.get(&sub).ok_or(LookupError::UnknownSub)
    }

    /// All top-level commands.
    pub fn iter(&self) -> impl Iterator<Item = &Command> {
        self.map.values()
    }

    pub fn get(&self, name: &str) -> Option<&Command> {
        self.map.get(name.to_ascii_lowercase().as_bytes())
    }
}

/// Redis's error for an unknown command, arguments quoted and cut at 128 characters.
/// What C's `%.Ns` prints of `arg`: at most `n` bytes, stopping at the first NUL (Redis builds
/// these error texts with printf on the raw argument).
fn c_str_prefix(arg: &[u8], n: usize) -> &[u8] {
    let arg = &arg[..arg.len().min(n)];
    match arg.iter().position(|&b| b == 0) {
        Some(nul) => &arg[..nul],
        None => arg,
    }
}

/// Redis's "unknown command" error, byte for byte: the name (128 bytes at most) and the first
/// arguments quoted until 128 bytes of them are printed. Client bytes go out verbatim.
pub fn unknown_command_error(args: &[Bytes]) -> Vec<u8> {
    let mut rest = Vec::new();
    for a in &args[1..] {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        rest.push(b'\'');
        rest.extend_from_slice(c_str_prefix(a, room));
        rest.extend_from_slice(b"' ");
    }
    let mut msg = b"ERR unknown command '".to_vec();
    msg.extend_from_slice(c_str_prefix(&args[0], 128));
    msg.extend_from_slice(b"', with args beginning with: ");
    msg.extend_from_slice(&rest);
    msg
}

/// Redis's "unknown subcommand" error: the subcommand (128 bytes at most) and the command in
/// ASCII upper case, both cut at a NUL as C strings are.
pub fn unknown_subcommand_error(args: &[Bytes]) -> Vec<u8> {
    let mut msg = b"ERR unknown subcommand '".to_vec();
    msg.extend_from_slice(c_str_prefix(&args[1], 128));
    msg.extend_from_slice(b"'. Try ");
    msg.extend(c_str_prefix(&args[0], usize::MAX).to_ascii_uppercase());
    msg.extend_from_slice(b" HELP.");
    msg
}

pub fn arity_error(name: &str) -> String {
    format!("ERR wrong number of arguments for '{name}' command")
}

/// True if `argc` satisfies Redis's arity rule (exact when positive, minimum when negative).
pub fn arity_ok(arity: i64, argc: usize) -> bool {
    let argc = argc as i64;
    (arity > 0 && argc == arity) || (arity < 0 && argc >= -arity)
}
