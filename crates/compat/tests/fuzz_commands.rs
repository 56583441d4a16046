//! Randomized differential fuzzing of every command the server under test implements.
//!
//! The command list comes from the server under test at run time (`COMMAND LIST`, subcommands of
//! containers included); each command's argument grammar (tokens, key / integer / double /
//! pattern / unix-time arguments, optional and repeated groups) from the oracle's `COMMAND DOCS`,
//! and its flags and tips from the oracle's `COMMAND INFO`. A generated command is either a
//! grammar-following call (sometimes mutated: an argument dropped, inserted or replaced) or the
//! command name with 0..8 words from a vocabulary that provokes edge cases (keys of both shards,
//! hash tags, missing keys, numbers at and past the i64 limits, floats, "inf", "nan", "+1",
//! " 1", "0x10", empty and binary strings, long strings, the command's own tokens).
//!
//! How replies are checked, per command (see `base_mode` and `classify`):
//! * deterministic commands: byte for byte against redis-server in RESP2 and RESP3 (KEYS-like
//!   commands after sorting, TTL-like ones within a tolerance, TIME-like ones by type byte, SCAN
//!   by shape);
//! * nondeterministic or server-specific ones (INFO, CLIENT LIST, MEMORY, DEBUG, ...): sent to
//!   the server under test only, which must answer a well-formed reply within 2 s and then
//!   PING;
//! * a few are never sent (SHUTDOWN without ABORT, CLIENT PAUSE, blocking commands, MONITOR,
//!   ...), see `DENY`.
//!
//! Each sequence runs six times on fresh connections after FLUSHALL: in RESP2 and in RESP3
//! one command at a time, then in RESP2 and RESP3 as one pipeline (the compared commands
//! only), then in RESP2 and RESP3 inside MULTI ... EXEC (the byte-for-byte compared commands
//! only). After
//! every sequence the server under test must still answer PING, and its log must not contain
//! "panicked". A failing sequence is shrunk by proptest to a minimal one (proptest's own
//! shrinking: a shorter sequence, simpler arguments).
//!
//! Environment:
//! * `COMPAT_FUZZ_CASES=N`: number of random sequences (default 1000: about 6 s alone, 15 s
//!   next to the other compat tests on 2 cores);
//! * `COMPAT_FUZZ_SEED=N`: the RNG seed (default fixed, so runs are reproducible);
//! * `COMPAT_FUZZ_LEN=N`: at most N commands per sequence (default 16);
//! * `COMPAT_FUZZ_SKIP=a,b|c`: never send these commands (lower-case names, `container|sub`);
//! * `COMPAT_FUZZ_ONLY=a,b|c`: send only these (plus the SET commands that start a sequence);
//! * `COMPAT_FUZZ_COLLECT=1`: do not stop (nor shrink) at the first failure: run every
//!   sequence and print the shortest failing one for each command that failed;
//! * `COMPAT_DUMP=1`: print every command with redis's reply.
//!
//! It must pass redis against redis (`COMPAT_SELFTEST=1`), where the command list is redis's
//! own: everything compared must be deterministic.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use damselfly_compat::resp::is_scan_shaped;
use damselfly_compat::{
    encode_command, escape, is_closed_error, sort_reply, sort_reply_deep, Pair, RespConn,
    ServerProc,
};
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// How long any reply may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------------
// A small RESP2 value parser, for COMMAND INFO / COMMAND DOCS replies.

#[derive(Debug, Clone)]
enum V {
    S(Vec<u8>),
    I(i64),
    A(Vec<V>),
    Nil,
    E(Vec<u8>),
}

impl V {
    fn text(&self) -> String {
        match self {
            V::S(s) | V::E(s) => String::from_utf8_lossy(s).into_owned(),
            V::I(i) => i.to_string(),
            _ => String::new(),
        }
    }

    fn items(&self) -> &[V] {
        match self {
            V::A(v) => v,
            _ => &[],
        }
    }

    /// A field of a flat RESP2 map.
    fn field(&self, name: &str) -> Option<&V> {
        let it = self.items();
        it.chunks(2)
            .find(|kv| kv.len() == 2 && kv[0].text() == name)
            .map(|kv| &kv[1])
    }
}

fn parse_v(b: &[u8], i: &mut usize) -> V {
    let line_end = |from: usize| {
        b[from..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| from + p)
            .expect("truncated RESP")
    };
    let t = b[*i];
    let le = line_end(*i + 1);
    let line = &b[*i + 1..le];
    *i = le + 2;
    let num = || -> i64 { std::str::from_utf8(line).unwrap().parse().unwrap() };
    match t {
        b'+' => V::S(line.to_vec()),
        b'-' => V::E(line.to_vec()),
        b':' => V::I(num()),
        b'$' => {
            let n = num();
            if n < 0 {
                return V::Nil;
            }
            let s = b[*i..*i + n as usize].to_vec();
            *i += n as usize + 2;
            V::S(s)
        }
        b'*' | b'~' | b'%' => {
            let n = num();
            if n < 0 {
                return V::Nil;
            }
            let n = if t == b'%' { 2 * n } else { n };
            V::A((0..n).map(|_| parse_v(b, i)).collect())
        }
        b'_' => V::Nil,
        other => panic!("unexpected RESP type {:?}", other as char),
    }
}

fn call_v(c: &mut RespConn, args: &[&str]) -> V {
    let r = c
        .call(args)
        .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")));
    parse_v(&r, &mut 0)
}

// ---------------------------------------------------------------------------------------------
// Command grammar from COMMAND DOCS.

#[derive(Clone, Debug)]
enum Kind {
    Key,
    Str,
    Int,
    Double,
    Pattern,
    UnixTime,
    PureToken,
    OneOf(Vec<ArgDoc>),
    Block(Vec<ArgDoc>),
}

#[derive(Clone, Debug)]
struct ArgDoc {
    name: String,
    kind: Kind,
    token: Option<String>,
    optional: bool,
    multiple: bool,
    multiple_token: bool,
}

fn parse_args(v: Option<&V>) -> Vec<ArgDoc> {
    v.map(|v| v.items().iter().map(parse_arg).collect())
        .unwrap_or_default()
}

fn parse_arg(m: &V) -> ArgDoc {
    let get = |k: &str| m.field(k).map(|v| v.text());
    let flags: Vec<String> = m
        .field("flags")
        .map(|f| f.items().iter().map(|x| x.text()).collect())
        .unwrap_or_default();
    let sub = parse_args(m.field("arguments"));
    let kind = match get("type").as_deref() {
        Some("key") => Kind::Key,
        Some("integer") => Kind::Int,
        Some("double") => Kind::Double,
        Some("pattern") => Kind::Pattern,
        Some("unix-time") => Kind::UnixTime,
        Some("pure-token") => Kind::PureToken,
        Some("oneof") => Kind::OneOf(sub),
        Some("block") => Kind::Block(sub),
        _ => Kind::Str,
    };
    ArgDoc {
        name: get("name").unwrap_or_default(),
        kind,
        token: get("token"),
        optional: flags.iter().any(|f| f == "optional"),
        multiple: flags.iter().any(|f| f == "multiple"),
        multiple_token: flags.iter().any(|f| f == "multiple_token"),
    }
}

fn collect_tokens(args: &[ArgDoc], out: &mut BTreeSet<String>) {
    for a in args {
        if let Some(t) = &a.token {
            out.insert(t.clone());
        }
        if let Kind::OneOf(s) | Kind::Block(s) = &a.kind {
            collect_tokens(s, out);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Vocabulary.

fn words(list: &[&str]) -> BoxedStrategy<Vec<u8>> {
    let v: Vec<Vec<u8>> = list.iter().map(|s| s.as_bytes().to_vec()).collect();
    prop::sample::select(v).boxed()
}

fn key() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        6 => words(&["a", "b", "c", "{t}a", "{t}b", "{a}x", "n"]),
        1 => words(&["", "key:0", "key:1", "p:0"]),
        1 => Just(b"\x00\xffk".to_vec()),
        1 => Just("k".repeat(300).into_bytes()),
    ]
    .boxed()
}

const INTS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "5",
    "7",
    "8",
    "-1",
    "-2",
    "-7",
    "10",
    "16",
    "42",
    "100",
    "1000",
    "1000000",
    "-100",
    "007",
    "-0",
    "+1",
    " 1",
    "1 ",
    "0x10",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    // Just past the bit-offset limit (4294967295 would make 512 MB strings, slow on both).
    "4294967296",
    "536870912",
    "2147483648",
    "1.5",
    "1e3",
    "inf",
    "-inf",
    "nan",
    "abc",
    "",
];

fn int() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => (-20i64..80).prop_map(|i| i.to_string().into_bytes()),
        5 => words(INTS),
    ]
    .boxed()
}

fn double() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        1 => (-20i64..20).prop_map(|i| i.to_string().into_bytes()),
        4 => words(&[
            "0", "1", "-1", "0.1", "-1.5", "1e3", "5", "-0", "3.0e-5", "1.7976931348623157e308",
            "1e309", "-1e309", "inf", "-inf", "+inf", "Infinity", "nan", "-nan", "abc", " 1",
            "1 ", "+1", "0x10", "1e", ".5", "5.", "", "10.5", "9223372036854775807",
            "4.9e-324", "1e-400",
        ]),
    ]
    .boxed()
}

/// A relative time: seconds may be small (a sequence takes milliseconds), milliseconds are
/// kept far from "now" by `sanitize` so that expiry never races the two servers.
fn rel_time() -> BoxedStrategy<Vec<u8>> {
    words(&[
        "0",
        "1",
        "10",
        "100",
        "1000",
        "-1",
        "-100",
        "100000000",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775806",
        "922337203685477580",
        "9223372036854775",
        "abc",
        "1.5",
        "",
        "+1",
    ])
}

fn unix_time() -> BoxedStrategy<Vec<u8>> {
    words(&[
        "0",
        "1",
        "-1",
        "4102444800",
        "4102444800000",
        "4102444801",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775",
        "abc",
        "1.5",
        "",
    ])
}

fn string() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        6 => words(&[
            "", "hello", "hello world", "x", "abc", "10.50", "0", "1", "-1", "42", "3.14",
            "9223372036854775807", "-9223372036854775808", "9223372036854775808", "1e3",
            "inf", "nan", " 1", "+1", "0x10", "\r\n", "a b", "\"", "foo",
        ]),
        1 => Just(b"\x00".to_vec()),
        1 => Just(b"\xff\xfe\x00\x01".to_vec()),
        1 => Just(b"\x80abc\xc3".to_vec()),
        1 => Just("x".repeat(44).into_bytes()),
        1 => Just("y".repeat(45).into_bytes()),
        1 => Just("abcdefghij".repeat(100).into_bytes()),
        2 => "[a-c]{0,6}".prop_map(String::into_bytes),
    ]
    .boxed()
}

fn pattern() -> BoxedStrategy<Vec<u8>> {
    words(&[
        "*", "?", "a*", "[ab]", "{t}*", "*a*", "x*", "\\*", "[", "[a-", "\\", "key:*", "", "[^a]",
        "[!a]", "*\\", "a?c", "[a-c]",
    ])
}

const KEYWORDS: &[&str] = &[
    "EX",
    "PX",
    "EXAT",
    "PXAT",
    "NX",
    "XX",
    "GT",
    "LT",
    "KEEPTTL",
    "GET",
    "SET",
    "INCRBY",
    "OVERFLOW",
    "WRAP",
    "SAT",
    "FAIL",
    "COUNT",
    "MATCH",
    "TYPE",
    "LIMIT",
    "WITHSCORES",
    "BYTE",
    "BIT",
    "PERSIST",
    "LEN",
    "IDX",
    "MINMATCHLEN",
    "WITHMATCHLEN",
    "REPLACE",
    "DB",
    "ASYNC",
    "SYNC",
    "AND",
    "OR",
    "XOR",
    "NOT",
    "ON",
    "OFF",
    "YES",
    "NO",
    "AUTH",
    "SETNAME",
    "HELP",
    "ENCODING",
    "SAMPLES",
    "FILTERBY",
    "ACLCAT",
    "PATTERN",
    "MODULE",
    "string",
    "none",
    "ex",
    "nx",
];

fn any_word(tokens: &[String]) -> BoxedStrategy<Vec<u8>> {
    let mut alts: Vec<(u32, BoxedStrategy<Vec<u8>>)> = vec![
        (4, key()),
        (4, int()),
        (1, double()),
        (3, string()),
        (2, words(KEYWORDS)),
    ];
    if !tokens.is_empty() {
        let t: Vec<Vec<u8>> = tokens.iter().map(|s| s.as_bytes().to_vec()).collect();
        alts.push((4, prop::sample::select(t).boxed()));
    }
    Union::new_weighted(alts).boxed()
}

/// Configuration parameters that CONFIG GET may name (compared exactly).
const CONFIG_GET_PARAMS: &[&str] = &[
    "hz",
    "maxmemory",
    "maxmemory-policy",
    "databases",
    "lfu-log-factor",
    "lfu-decay-time",
    "slowlog-max-len",
    "notify-keyspace-events",
    "maxmemory-samples",
    "nosuchoption",
    "HZ",
    "list-max-listpack-size",
    "proto-max-bulk-len",
    "busy-reply-threshold",
    "set-max-intset-entries",
    "active-expire-effort",
    "appendonly",
    "save",
    "",
];

/// Parameters that CONFIG SET may change: harmless for the harness, and restored after every
/// sequence that used CONFIG SET (`restore_config`). Never port, bind, requirepass, timeout,
/// maxclients, dir, dbfilename, maxmemory (eviction depends on each server's memory
/// accounting), save / appendonly (files), proto-max-bulk-len, client-output-buffer-limit
/// or maxmemory-clients (they would cut the harness's connections): see `CONFIG_DENY`.
const CONFIG_SET_PARAMS: &[&str] = &[
    "hz",
    "maxmemory-policy",
    "lfu-log-factor",
    "lfu-decay-time",
    "maxmemory-samples",
    "slowlog-max-len",
    "slowlog-log-slower-than",
    "notify-keyspace-events",
    "list-max-listpack-size",
    "set-max-intset-entries",
    "busy-reply-threshold",
    "active-expire-effort",
];

const CONFIG_DENY: &[&str] = &[
    "port",
    "bind",
    "requirepass",
    "timeout",
    "maxclients",
    "dir",
    "dbfilename",
    "maxmemory",
    "save",
    "appendonly",
    "proto-max-bulk-len",
    "client-query-buffer-limit",
    "client-output-buffer-limit",
    "maxmemory-clients",
    "logfile",
    "pidfile",
    "replicaof",
    "slaveof",
    "masterauth",
    "unixsocket",
    "protected-mode",
    "tcp-keepalive",
    "cluster-announce-ip",
    "cluster-announce-port",
    "appenddirname",
    "appendfilename",
];

fn config_get_param() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        8 => words(CONFIG_GET_PARAMS),
        1 => words(&["maxmemory*", "*-policy", "hz*", "*"]),
    ]
    .boxed()
}

fn config_set_param() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        8 => words(CONFIG_SET_PARAMS),
        1 => words(&["databases", "nosuchoption", "HZ", ""]),
    ]
    .boxed()
}

fn config_value() -> BoxedStrategy<Vec<u8>> {
    words(&[
        "0",
        "1",
        "10",
        "100",
        "500",
        "-1",
        "-5",
        "yes",
        "no",
        "allkeys-lru",
        "noeviction",
        "volatile-lfu",
        "ALLKEYS-LFU",
        "KEA",
        "Ex",
        "g$",
        "",
        "abc",
        "9223372036854775807",
        "1mb",
        "1.5",
    ])
}

// ---------------------------------------------------------------------------------------------
// The catalog: which commands exist and how each is checked.

/// How a command's replies are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Mode {
    /// Byte for byte.
    Exact,
    /// Top-level elements (map pairs) sorted.
    Sort,
    /// The elements of every aggregate sorted, at every depth.
    DeepSort,
    /// Integers may differ by this much (wall clock); anything else exactly.
    Approx(i64),
    /// Only the RESP type byte (errors exactly).
    Type,
    /// SCAN's shape (errors exactly).
    Scan,
    /// HELLO: errors exactly, else the type byte (the map holds ids and versions).
    Hello,
    /// Sent to the server under test only: a well-formed reply within 2 s, then PING.
    DutOnly,
    /// Never sent.
    Deny,
}

/// Never sent (see also `sanitize`, which rewrites dangerous forms of allowed commands).
const DENY: &[&str] = &[
    // Replication / monitoring: take over the connection or the server.
    "monitor",
    "sync",
    "psync",
    "replconf",
    "replicaof",
    "slaveof",
    "failover",
    "wait",
    "waitaof",
    // Subscriptions change what a connection may send and add pushes.
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
    // Blocks every client; tracking adds invalidation pushes.
    "client|pause",
    "client|tracking",
    // Transactions: commands sent to one server only would desynchronise the queues.
    "multi",
    "exec",
    "discard",
    "watch",
    "unwatch",
    // Persistence: files, and BGSAVE replies depend on timing.
    "save",
    "bgsave",
    "bgrewriteaof",
    // Connects to arbitrary hosts.
    "migrate",
    // Slow / internal.
    "pfselftest",
    "pfdebug",
    // Lua and functions (not a family of the server under test; scripts would need a
    // vocabulary of their own).
    "eval",
    "evalsha",
    "eval_ro",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
];

/// Command families never sent (the container and all its subcommands).
const DENY_FAMILIES: &[&str] = &["script", "function", "module", "acl"];

/// Explicit modes, before the generic rules of `base_mode`.
fn explicit_mode(name: &str) -> Option<Mode> {
    use Mode::*;
    let family = name.split('|').next().unwrap_or(name);
    if DENY.contains(&name) || DENY_FAMILIES.contains(&family) {
        return Some(Deny);
    }
    Some(match name {
        "ttl" | "expiretime" => Approx(1),
        "pttl" | "pexpiretime" => Approx(50),
        "time" | "lastsave" | "randomkey" => Type,
        // The payload of a hash-table encoded value lists it in hash order (seeded per process).
        "dump" => Type,
        "scan" | "sscan" | "hscan" | "zscan" => Scan,
        "hello" => Hello,
        // Deterministic despite their nondeterministic_output tips.
        "object|encoding" | "object|refcount" | "cluster|info" | "cluster|getkeysinslot" => Exact,
        // Server-specific: versions, ids, memory, clocks.
        "info" | "lolwut" | "object|freq" | "client|list" | "client|info" | "client|id"
        | "client|kill" => DutOnly,
        // docs/compatibility.md: OBJECT IDLETIME is always 0 in damselfly.
        "object|idletime" => DutOnly,
        // docs/compatibility.md: CLIENT SETINFO / NO-TOUCH are Redis 7.2 features we follow.
        "client|setinfo" | "client|no-touch" | "client|capa" => DutOnly,
        // By design (cases/server_extra.txt, cluster_disabled): damselfly answers these in any
        // mode, as Dragonfly, while Redis refuses them outside cluster mode.
        "cluster|keyslot" | "cluster|help" | "readonly" | "readwrite" => DutOnly,
        // The set of implemented commands.
        "command" | "command|count" | "command|list" => DutOnly,
        _ if family == "memory" || family == "latency" || family == "slowlog" => DutOnly,
        _ => return None,
    })
}

struct Meta {
    flags: Vec<String>,
    acl: Vec<String>,
    tips: Vec<String>,
}

fn base_mode(name: &str, meta: Option<&Meta>) -> Mode {
    if let Some(m) = explicit_mode(name) {
        return m;
    }
    let Some(meta) = meta else {
        // Unknown to redis 7.0.15: nothing to compare with.
        return Mode::DutOnly;
    };
    let has = |v: &[String], s: &str| v.iter().any(|x| x == s);
    if has(&meta.flags, "blocking") || has(&meta.acl, "@blocking") {
        return Mode::Deny;
    }
    // Streams: XADD * makes time-based ids.
    if has(&meta.acl, "@stream") || has(&meta.acl, "@scripting") {
        return Mode::Deny;
    }
    if has(&meta.tips, "nondeterministic_output") {
        // A random write (SPOP) would make the two servers' data differ.
        return if has(&meta.flags, "write") {
            Mode::Deny
        } else {
            Mode::DutOnly
        };
    }
    if has(&meta.tips, "nondeterministic_output_order") {
        return Mode::Sort;
    }
    Mode::Exact
}

struct Spec {
    /// Lower-case name: "get", "client|kill".
    name: String,
    /// The words that start the command: ["GET"], ["CLIENT", "KILL"].
    words: Vec<String>,
    args: Vec<ArgDoc>,
    tokens: Vec<String>,
    container: bool,
}

struct Catalog {
    specs: Vec<Spec>,
    modes: HashMap<String, Mode>,
    containers: BTreeSet<String>,
    /// Containers whose subcommand list differs between the servers (COMMAND INFO / DOCS of
    /// them differ by the set of implemented subcommands, not by a bug).
    partial: BTreeSet<String>,
    skip: BTreeSet<String>,
    /// Upper-case command names for COMMAND INFO / DOCS / GETKEYS arguments.
    names: Vec<String>,
    /// Every name (lower case, subcommands as `container|sub`) the oracle knows but the
    /// server under test does not list.
    oracle_only: BTreeSet<String>,
}

fn env_list(var: &str) -> BTreeSet<String> {
    std::env::var(var)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

fn info_meta(v: &V) -> (String, Meta) {
    let it = v.items();
    let strs = |i: usize| -> Vec<String> {
        it.get(i)
            .map(|x| x.items().iter().map(|y| y.text()).collect())
            .unwrap_or_default()
    };
    (
        it[0].text().to_ascii_lowercase(),
        Meta {
            flags: strs(2),
            acl: strs(6),
            tips: strs(7),
        },
    )
}

fn build_catalog(pair: &Pair) -> Catalog {
    let mut dut = pair.dut.connect();
    let mut oracle = pair.oracle.connect();
    let mut list: Vec<String> = call_v(&mut dut, &["COMMAND", "LIST"])
        .items()
        .iter()
        .map(|v| v.text().to_ascii_lowercase())
        .collect();
    list.sort();
    list.dedup();
    let tops: Vec<&str> = list
        .iter()
        .filter(|n| !n.contains('|'))
        .map(|s| s.as_str())
        .collect();
    // Metadata from the oracle (flags, ACL categories, tips; subcommands too).
    let mut metas: HashMap<String, Meta> = HashMap::new();
    let mut oracle_subs: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut docs: HashMap<String, Vec<ArgDoc>> = HashMap::new();
    for top in &tops {
        let info = call_v(&mut oracle, &["COMMAND", "INFO", top]);
        for v in info.items() {
            if !matches!(v, V::A(_)) {
                continue;
            }
            let (name, meta) = info_meta(v);
            metas.insert(name.clone(), meta);
            let subs = oracle_subs.entry(name.clone()).or_default();
            for s in v.items().get(9).map(|s| s.items()).unwrap_or(&[]) {
                let (sname, smeta) = info_meta(s);
                subs.insert(sname.clone());
                metas.insert(sname, smeta);
            }
        }
        let d = call_v(&mut oracle, &["COMMAND", "DOCS", top]);
        let it = d.items();
        if it.len() == 2 {
            docs.insert(top.to_string(), parse_args(it[1].field("arguments")));
            if let Some(subs) = it[1].field("subcommands") {
                for kv in subs.items().chunks(2) {
                    if kv.len() == 2 {
                        docs.insert(
                            kv[0].text().to_ascii_lowercase(),
                            parse_args(kv[1].field("arguments")),
                        );
                    }
                }
            }
        }
    }
    let skip = env_list("COMPAT_FUZZ_SKIP");
    let only = env_list("COMPAT_FUZZ_ONLY");
    let mut modes = HashMap::new();
    let mut containers = BTreeSet::new();
    let mut dut_subs: HashMap<String, BTreeSet<String>> = HashMap::new();
    for n in &list {
        if let Some((c, _)) = n.split_once('|') {
            containers.insert(c.to_string());
            dut_subs.entry(c.to_string()).or_default().insert(n.clone());
        }
    }
    let partial = containers
        .iter()
        .filter(|c| dut_subs.get(*c) != oracle_subs.get(*c))
        .cloned()
        .collect();
    let mut specs = Vec::new();
    for n in &list {
        let mut mode = base_mode(n, metas.get(n));
        if skip.contains(n) {
            mode = Mode::Deny;
        }
        modes.insert(n.clone(), mode);
        if mode == Mode::Deny || (!only.is_empty() && !only.contains(n)) {
            continue;
        }
        let args = docs.get(n).cloned().unwrap_or_default();
        let mut tokens = BTreeSet::new();
        collect_tokens(&args, &mut tokens);
        specs.push(Spec {
            name: n.clone(),
            words: n.split('|').map(|w| w.to_ascii_uppercase()).collect(),
            args,
            tokens: tokens.into_iter().collect(),
            container: containers.contains(n),
        });
    }
    let names = list.iter().map(|n| n.to_ascii_uppercase()).collect();
    let oracle_only = call_v(&mut oracle, &["COMMAND", "LIST"])
        .items()
        .iter()
        .map(|v| v.text().to_ascii_lowercase())
        .filter(|n| !list.contains(n))
        .collect();
    Catalog {
        oracle_only,
        specs,
        modes,
        containers,
        partial,
        skip,
        names,
    }
}

impl Catalog {
    /// The table name of a concrete command: "client|kill" for CLIENT KILL, "client" for
    /// CLIENT FOO or a bare CLIENT.
    fn effective_name(&self, args: &[Vec<u8>]) -> String {
        let top = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        if self.containers.contains(&top) && args.len() > 1 {
            let full = format!(
                "{top}|{}",
                String::from_utf8_lossy(&args[1]).to_ascii_lowercase()
            );
            if self.modes.contains_key(&full) {
                return full;
            }
        }
        top
    }

    fn mode_of(&self, name: &str) -> Mode {
        if self.skip.contains(name) {
            return Mode::Deny;
        }
        match self.modes.get(name) {
            Some(m) => *m,
            None => match explicit_mode(name) {
                Some(m) => m,
                // A name neither server lists (random words): compare the error.
                None => Mode::Exact,
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generation.

#[derive(Clone)]
struct Cmd {
    args: Vec<Vec<u8>>,
    mode: Mode,
    name: String,
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line: Vec<String> = self
            .args
            .iter()
            .map(|a| {
                let plain = !a.is_empty()
                    && a.iter()
                        .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\');
                if plain {
                    String::from_utf8_lossy(a).into_owned()
                } else {
                    escape(a)
                }
            })
            .collect();
        f.write_str(&line.join(" "))?;
        if self.mode != Mode::Exact {
            write!(f, "    [{:?}]", self.mode)?;
        }
        Ok(())
    }
}

type Args = Vec<Vec<u8>>;

/// Values for an argument, by the command, the argument's name and its type.
fn value_for(cmd: &str, a: &ArgDoc) -> BoxedStrategy<Args> {
    let one = |s: BoxedStrategy<Vec<u8>>| s.prop_map(|v| vec![v]).boxed();
    let n = a.name.as_str();
    match (&a.kind, cmd, n) {
        (Kind::PureToken, ..) => Just(vec![]).boxed(),
        (_, "bitfield" | "bitfield_ro", "encoding") => one(words(&[
            "u1", "i1", "u8", "i8", "u4", "i5", "i16", "u63", "i64", "u64", "x8", "u0", "i65",
            "U8", "i", "",
        ])),
        (_, "bitfield" | "bitfield_ro", "offset") => one(prop_oneof![
            4 => (0u32..40).prop_map(|i| i.to_string().into_bytes()),
            2 => (0u32..5).prop_map(|i| format!("#{i}").into_bytes()),
            1 => words(&["-1", "#x", "#", "#-1", "4294967296", "#9223372036854775807", "1000000", "abc"]),
        ]
        .boxed()),
        (_, "bitop", "operation") => one(words(&["AND", "OR", "XOR", "NOT", "and", "not", "FOO"])),
        (_, "config|get", _) => one(config_get_param()),
        (_, "config|set", "parameter") => one(config_set_param()),
        (_, "config|set", "value") => one(config_value()),
        (_, "command|docs" | "command|info", _) => one(command_name()),
        (_, "hello", "protover") => one(words(&["2", "3", "1", "4", "0", "-1", "abc", "3.0"])),
        (_, "client|kill", "yes/no") => one(words(&["yes", "no", "maybe"])),
        (_, "client|kill", "ip:port") => one(words(&["192.0.2.1:1", "x", "127.0.0.1"])),
        (_, _, "username") => one(words(&["default", "nobody", ""])),
        (_, _, "password") => one(words(&["", "x", "nopass"])),
        (_, "info", "section") => one(words(&["server", "keyspace", "all", "everything", "x"])),
        (_, "scan", "type") => one(words(&["string", "list", "none", "STRING", "x"])),
        (_, "lolwut", _) => one(words(&["5", "6", "1", "-1", "x"])),
        (_, "setbit", "value") => one(words(&["0", "1", "2", "-1", "x", ""])),
        (_, "bitpos", "bit") => one(words(&["0", "1", "2", "-1", "x"])),
        (_, _, "db" | "index" | "index1" | "index2" | "destination-db") => one(words(&[
            "0",
            "1",
            "15",
            "16",
            "-1",
            "abc",
            "9223372036854775807",
            "01",
            "",
        ])),
        (_, _, "slot" | "start-slot" | "end-slot") => {
            one(words(&["0", "1", "16383", "16384", "-1", "abc"]))
        }
        (_, _, "seconds" | "milliseconds") => one(rel_time()),
        (Kind::UnixTime, ..) => one(unix_time()),
        (Kind::Key, ..) => one(key()),
        (Kind::Int, ..) => one(int()),
        (Kind::Double, ..) => one(double()),
        (Kind::Pattern, ..) => one(pattern()),
        (Kind::Str, ..) => one(string()),
        (Kind::OneOf(alts), ..) => {
            Union::new(alts.iter().map(|x| arg_strategy(cmd, x)).collect::<Vec<_>>()).boxed()
        }
        (Kind::Block(items), ..) => seq_strategy(cmd, items),
    }
}

fn command_name() -> BoxedStrategy<Vec<u8>> {
    // Filled in per run (see `command_names`); a thread-local keeps strategies 'static.
    COMMAND_NAMES.with(|n| {
        let list = n.borrow().clone();
        prop_oneof![
            6 => prop::sample::select(list),
            1 => words(&["foo", "", "get|x", "CONFIG|GET", "client|kill"]),
        ]
        .boxed()
    })
}

thread_local! {
    static FAIL_NAME: RefCell<String> = const { RefCell::new(String::new()) };
    static COMMAND_NAMES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

fn seq_strategy(cmd: &str, items: &[ArgDoc]) -> BoxedStrategy<Args> {
    let parts: Vec<BoxedStrategy<Args>> = items.iter().map(|x| arg_strategy(cmd, x)).collect();
    parts.prop_map(|v| v.concat()).boxed()
}

/// One argument with its token, optionality and repetition.
fn arg_strategy(cmd: &str, a: &ArgDoc) -> BoxedStrategy<Args> {
    let value = value_for(cmd, a);
    let token = a.token.clone();
    let with_token = move |v: BoxedStrategy<Args>| -> BoxedStrategy<Args> {
        match token.clone() {
            None => v,
            Some(t) => (v, prop::bool::weighted(0.15))
                .prop_map(move |(v, lower)| {
                    let t = if lower {
                        t.to_ascii_lowercase()
                    } else {
                        t.clone()
                    };
                    let mut out = vec![t.into_bytes()];
                    out.extend(v);
                    out
                })
                .boxed(),
        }
    };
    let unit = if a.multiple {
        if a.multiple_token {
            prop::collection::vec(with_token(value), 1..=3)
                .prop_map(|v| v.concat())
                .boxed()
        } else {
            with_token(
                prop::collection::vec(value, 1..=3)
                    .prop_map(|v| v.concat())
                    .boxed(),
            )
        }
    } else {
        with_token(value)
    };
    if a.optional {
        prop::option::weighted(0.5, unit)
            .prop_map(Option::unwrap_or_default)
            .boxed()
    } else {
        unit
    }
}

/// DEBUG has no documented arguments: the subcommands the server under test knows, with their
/// arguments (sanitized further by `sanitize`).
fn debug_args() -> BoxedStrategy<Args> {
    let w = |s: &str| s.as_bytes().to_vec();
    prop_oneof![
        Just(vec![w("HELP")]),
        words(&["0", "0.01", "-1", "abc", "", "0.001"]).prop_map(move |s| vec![w("SLEEP"), s]),
        key().prop_map(move |k| vec![w("OBJECT"), k]),
        (
            words(&["0", "1", "3", "10", "-1", "x", "1.5", "100", ""]),
            prop::option::of((
                prop_oneof![key(), words(&["p", "key"])],
                prop::option::of(words(&["0", "1", "10", "-1", "x", "100", "45"]))
            )),
        )
            .prop_map(move |(n, rest)| {
                let mut v = vec![w("POPULATE"), n];
                if let Some((p, s)) = rest {
                    v.push(p);
                    v.extend(s);
                }
                v
            }),
        words(&["FOO", "DIGEST-VALUE", "help", "populate"]).prop_map(|s| vec![s]),
    ]
    .boxed()
}

fn grammar(spec: &Spec) -> BoxedStrategy<Args> {
    match spec.name.as_str() {
        "debug" => debug_args(),
        "command|getkeys" | "command|getkeysandflags" => {
            (command_name(), prop::collection::vec(any_word(&[]), 0..5))
                .prop_map(|(c, rest)| {
                    let mut v = vec![c];
                    v.extend(rest);
                    v
                })
                .boxed()
        }
        _ => seq_strategy(&spec.name, &spec.args),
    }
}

/// Drops, inserts or replaces one argument now and then.
fn mutate(args: BoxedStrategy<Args>, tokens: &[String]) -> BoxedStrategy<Args> {
    (
        args,
        prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
        any::<prop::sample::Index>(),
        any_word(tokens),
    )
        .prop_map(|(mut a, how, at, w)| {
            match how {
                1 if !a.is_empty() => {
                    a.remove(at.index(a.len()));
                }
                2 => {
                    let i = at.index(a.len() + 1);
                    a.insert(i, w);
                }
                3 if !a.is_empty() => {
                    let i = at.index(a.len());
                    a[i] = w;
                }
                _ => {}
            }
            a
        })
        .boxed()
}

fn spec_strategy(spec: &Spec) -> BoxedStrategy<Args> {
    let head: Args = spec.words.iter().map(|w| w.as_bytes().to_vec()).collect();
    let random = prop::collection::vec(any_word(&spec.tokens), 0..=8).boxed();
    let body = if spec.container {
        random
    } else {
        prop_oneof![
            3 => mutate(grammar(spec), &spec.tokens),
            1 => random,
        ]
        .boxed()
    };
    (body, prop::bool::weighted(0.1))
        .prop_map(move |(b, lower)| {
            let mut v = head.clone();
            if lower {
                v[0] = v[0].to_ascii_lowercase();
            }
            v.extend(b);
            v
        })
        .boxed()
}

/// True for a non-negative decimal integer without sign or spaces that is below `limit`.
fn small_positive(arg: &[u8], limit: u64) -> bool {
    !arg.is_empty()
        && arg.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(arg)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|v| v > 0 && v < limit)
}

/// Rewrites what would break the harness or race the clock into a harmless form.
fn sanitize(cat: &Catalog, mut args: Args) -> Args {
    let name = cat.effective_name(&args);
    let ping = || vec![b"PING".to_vec()];
    let ic = |a: &[u8], s: &str| a.eq_ignore_ascii_case(s.as_bytes());
    if cat.mode_of(&name) == Mode::Deny {
        return ping();
    }
    match name.as_str() {
        // Only SHUTDOWN ... ABORT is safe (anything with ABORT never shuts down in Redis).
        "shutdown" if !args[1..].iter().any(|a| ic(a, "abort")) => {
            return vec![b"SHUTDOWN".to_vec(), b"ABORT".to_vec()];
        }
        "client|reply" if args.len() > 2 && (ic(&args[2], "off") || ic(&args[2], "skip")) => {
            args[2] = b"ON".to_vec();
        }
        // Filters that could match the harness's own connections; the new form without an
        // address filter (`CLIENT KILL SKIPME no`) matches every client.
        "client|kill"
            if args[2..]
                .iter()
                .any(|a| ["id", "type", "user", "maxage"].iter().any(|k| ic(a, k)))
                || (args.len() > 3
                    && !args[2..].iter().any(|a| ic(a, "addr") || ic(a, "laddr"))) =>
        {
            return vec![
                b"CLIENT".to_vec(),
                b"KILL".to_vec(),
                b"ADDR".to_vec(),
                b"192.0.2.1:1".to_vec(),
            ];
        }
        "config|set"
            if args[2..]
                .iter()
                .any(|a| CONFIG_DENY.iter().any(|k| ic(a, k))) =>
        {
            return ping();
        }
        "debug" if args.len() > 1 => {
            let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
            match sub.as_str() {
                "help" | "object" | "digest-value" | "foo" => {}
                "sleep" => {
                    for a in args.iter_mut().skip(2) {
                        let long = std::str::from_utf8(a)
                            .ok()
                            .and_then(|s| s.trim().parse::<f64>().ok())
                            .is_some_and(|x| x.is_nan() || x > 0.01);
                        if long {
                            *a = b"0".to_vec();
                        }
                    }
                }
                "populate" => {
                    for (i, limit) in [(2usize, 1000i64), (4, 10000)] {
                        if let Some(a) = args.get_mut(i) {
                            let big = std::str::from_utf8(a)
                                .ok()
                                .and_then(|s| s.trim().parse::<i64>().ok())
                                .is_some_and(|x| x > limit);
                            if big {
                                *a = b"10".to_vec();
                            }
                        }
                    }
                }
                _ => args[1] = b"FOO".to_vec(),
            }
        }
        // Bit offsets past ~75 MB of string (up to the 512 MB limit) make replies too big to
        // compare in time: move them past the limit (an error on both).
        "setbit" | "bitfield" | "bitfield_ro" => {
            for a in args.iter_mut().skip(2) {
                let digits = a.strip_prefix(b"#").unwrap_or(a);
                let huge = !digits.is_empty()
                    && digits.iter().all(u8::is_ascii_digit)
                    && std::str::from_utf8(digits)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .is_some_and(|v| (600_000_000..1 << 32).contains(&v));
                if huge {
                    *a = b"4294967296".to_vec();
                }
            }
        }
        // Relative expiries in milliseconds: never close enough to expire during a run.
        "pexpire" | "psetex" if args.len() > 2 && small_positive(&args[2], 60_000) => {
            args[2] = b"100000000".to_vec();
        }
        "set" | "getex" => {
            let set = name == "set";
            for i in 0..args.len().saturating_sub(1) {
                if ic(&args[i], "px") && small_positive(&args[i + 1], 60_000) {
                    args[i + 1] = b"100000000".to_vec();
                }
                // SET with a time already past stores a key that is expired but stays in the
                // keyspace until something deletes it (active expiry, RANDOMKEY, a lookup), so
                // DBSIZE would depend on timing. (GETEX deletes such a key at once.)
                if set && ic(&args[i], "exat") && small_positive(&args[i + 1], 4_000_000_000) {
                    args[i + 1] = b"4102444800".to_vec();
                }
                if set && ic(&args[i], "pxat") && small_positive(&args[i + 1], 4_000_000_000_000) {
                    args[i + 1] = b"4102444800000".to_vec();
                }
            }
        }
        _ => {}
    }
    // GT / LT against an expiry set relative to "now" depend on whether a millisecond passed
    // between the two commands (on each server separately).
    if matches!(name.as_str(), "expire" | "pexpire") {
        for a in args.iter_mut().skip(3) {
            if ic(a, "gt") || ic(a, "lt") {
                *a = b"XX".to_vec();
            }
        }
    }
    args
}

fn has_glob(a: &[u8]) -> bool {
    a.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// The mode for a concrete (sanitized) command.
fn classify(cat: &Catalog, args: &[Vec<u8>]) -> (String, Mode) {
    let name = cat.effective_name(args);
    let mut mode = cat.mode_of(&name);
    let lower = |a: &[u8]| String::from_utf8_lossy(a).to_ascii_lowercase();
    match name.as_str() {
        "command|docs" | "command|info" => {
            // A container whose subcommands differ, or a command only the oracle has: the
            // replies differ by the set of implemented commands.
            let partial = args[2..].iter().any(|a| {
                let a = lower(a);
                let top = a.split('|').next().unwrap_or("").to_string();
                cat.partial.contains(&top)
                    || cat.oracle_only.contains(&top)
                    || cat.oracle_only.contains(&a)
            });
            // Subcommands are listed in hash-table order.
            mode = Mode::DeepSort;
            if args.len() == 2 || partial {
                mode = Mode::DutOnly;
            }
        }
        // The HELP text of a container lists its subcommands: where the servers implement
        // different sets, the texts differ by that.
        n if n.ends_with("|help") && cat.partial.contains(n.split('|').next().unwrap_or("")) => {
            mode = Mode::DutOnly
        }
        "command|getkeys" | "command|getkeysandflags"
            if args.len() > 2 && cat.oracle_only.contains(&lower(&args[2])) =>
        {
            mode = Mode::DutOnly
        }
        "config|get" if args[2..].iter().any(|a| has_glob(a)) => mode = Mode::DutOnly,
        "config|get" => mode = Mode::Sort,
        "debug" => {
            mode = if args.len() > 1 && lower(&args[1]) == "populate" {
                Mode::Exact
            } else {
                Mode::DutOnly
            }
        }
        _ => {}
    }
    (name, mode)
}

fn finish(cat: &Catalog, args: Args) -> Cmd {
    let args = sanitize(cat, args);
    let (name, mode) = classify(cat, &args);
    Cmd { args, mode, name }
}

fn setup_command() -> BoxedStrategy<Args> {
    (key(), prop_oneof![string(), int()])
        .prop_map(|(k, v)| vec![b"SET".to_vec(), k, v])
        .boxed()
}

fn sequence(cat: &'static Catalog, max_len: usize) -> BoxedStrategy<Vec<Cmd>> {
    let all: Vec<BoxedStrategy<Args>> = cat.specs.iter().map(spec_strategy).collect();
    let any_cmd = Union::new(all);
    (
        prop::collection::vec(setup_command(), 0..=3),
        prop::collection::vec(any_cmd, 1..=max_len),
    )
        .prop_map(move |(setup, body)| {
            setup
                .into_iter()
                .chain(body)
                .map(|a| finish(cat, a))
                .collect()
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Running.

struct State {
    pair: Pair,
    restarts: usize,
    gave_up: bool,
    /// How far the server under test's log has been checked.
    log_seen: u64,
    log_path: std::path::PathBuf,
    /// Each settable parameter's value at startup, for `restore_config`.
    config: Vec<ConfigDefault>,
    /// Commands sent, by name and mode.
    sent: BTreeMap<(String, Mode), usize>,
    /// The name of the command the last failure happened at.
    fail_name: String,
    /// A sequence has failed (proptest is shrinking now).
    failed_once: bool,
    /// `COMPAT_FUZZ_COLLECT=1`: failures by the failing command's name (not shrunk; the run
    /// goes on).
    collected: Option<BTreeMap<String, (usize, String)>>,
}

const MAX_RESTARTS: usize = 20;

fn show(r: &std::io::Result<Vec<u8>>) -> String {
    match r {
        Ok(b) if b.len() > 600 => format!("{}... ({} bytes)", escape(&b[..600]), b.len()),
        Ok(b) => escape(b),
        Err(e) if is_closed_error(e) => "<connection closed by server>".to_string(),
        Err(e) => format!("<error: {e}>"),
    }
}

fn approx_equal(a: &[u8], b: &[u8], tol: i64) -> bool {
    let int = |r: &[u8]| -> Option<i64> {
        std::str::from_utf8(r.strip_prefix(b":")?.strip_suffix(b"\r\n")?)
            .ok()?
            .parse()
            .ok()
    };
    match (int(a), int(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= tol,
        _ => a == b,
    }
}

fn equal(mode: Mode, a: &[u8], b: &[u8]) -> bool {
    let err = a.first() == Some(&b'-') || b.first() == Some(&b'-');
    match mode {
        Mode::Exact | Mode::DutOnly | Mode::Deny => a == b,
        Mode::Sort => sort_reply(a) == sort_reply(b),
        Mode::DeepSort => sort_reply_deep(a) == sort_reply_deep(b),
        Mode::Approx(t) => approx_equal(a, b, t),
        Mode::Type | Mode::Hello if err => a == b,
        Mode::Type | Mode::Hello => a.first() == b.first(),
        Mode::Scan => (is_scan_shaped(a) && is_scan_shaped(b)) || a == b,
    }
}

fn connect(srv: &ServerProc, resp3: bool) -> Result<RespConn, String> {
    let mut c =
        RespConn::connect(srv.addr()).map_err(|e| format!("{}: connect: {e}", srv.label()))?;
    c.set_timeout(REPLY_TIMEOUT)
        .map_err(|e| format!("{}: {e}", srv.label()))?;
    if resp3 {
        let r = c
            .call(&["HELLO", "3"])
            .map_err(|e| format!("{}: HELLO 3: {e}", srv.label()))?;
        if r.first() != Some(&b'%') {
            return Err(format!("{}: HELLO 3 replied {}", srv.label(), escape(&r)));
        }
    }
    Ok(c)
}

fn listing(seq: &[Cmd]) -> String {
    let mut s = format!("sequence ({} commands):\n", seq.len());
    for (i, c) in seq.iter().enumerate() {
        s.push_str(&format!("  {:>2}. {c:?}\n", i + 1));
    }
    s
}

/// One pass (RESP2 or RESP3) over `seq` on fresh connections.
fn run_pass(state: &mut State, seq: &[Cmd], resp3: bool) -> Result<(), String> {
    let pass = if resp3 { "RESP3" } else { "RESP2" };
    let dump = std::env::var("COMPAT_DUMP").is_ok_and(|v| v == "1");
    let mut o = connect(&state.pair.oracle, resp3)?;
    let mut d = connect(&state.pair.dut, resp3)?;
    for (c, who) in [(&mut o, "redis"), (&mut d, "damselfly")] {
        let r = c.call(&["FLUSHALL"]);
        if !matches!(&r, Ok(b) if b == b"+OK\r\n") {
            return Err(format!("{who}: FLUSHALL replied {}", show(&r)));
        }
    }
    let mut history = String::new();
    let fail = |history: &str, n: usize, c: &Cmd, what: String| {
        FAIL_NAME.with(|f| *f.borrow_mut() = c.name.clone());
        format!(
            "{}replies before the failure [{pass}]:\n{history}failure at command {} [{pass}]: {c:?}\n{what}",
            listing(seq),
            n + 1
        )
    };
    for (n, c) in seq.iter().enumerate() {
        *state.sent.entry((c.name.clone(), c.mode)).or_default() += 1;
        if c.mode == Mode::DutOnly {
            let t = Instant::now();
            let r = d.call(&c.args);
            if r.is_err() {
                return Err(fail(
                    &history,
                    n,
                    c,
                    format!(
                        "    damselfly (not compared): {} after {:?}\n",
                        show(&r),
                        t.elapsed()
                    ),
                ));
            }
            let p = d.call(&["PING"]);
            if !matches!(&p, Ok(b) if b == b"+PONG\r\n") {
                return Err(fail(
                    &history,
                    n,
                    c,
                    format!(
                        "    damselfly replied {}\n    then PING got {}\n",
                        show(&r),
                        show(&p)
                    ),
                ));
            }
            history.push_str(&format!("  {:>2}. {c:?} -> (not compared)\n", n + 1));
            continue;
        }
        let ro = o.call(&c.args);
        let rd = d.call(&c.args);
        let ok = match (&ro, &rd) {
            (Ok(a), Ok(b)) => equal(c.mode, a, b),
            (Err(a), Err(b)) => is_closed_error(a) && is_closed_error(b),
            _ => false,
        };
        if !ok {
            return Err(fail(
                &history,
                n,
                c,
                format!(
                    "    redis:     {}\n    damselfly: {}\n",
                    show(&ro),
                    show(&rd)
                ),
            ));
        }
        if dump {
            eprintln!("[{pass}] {c:?} -> {}", show(&ro));
        }
        history.push_str(&format!("  {:>2}. {c:?} -> {}\n", n + 1, show(&ro)));
        let quit = c.args[0].eq_ignore_ascii_case(b"QUIT");
        if ro.is_err() || quit {
            // Both closed (QUIT, or the same error on both): go on with new connections.
            let (co, cd) = (
                o.is_closed(Duration::from_secs(1)),
                d.is_closed(Duration::from_secs(1)),
            );
            if co != cd {
                return Err(fail(
                    &history,
                    n,
                    c,
                    format!("    redis closed the connection: {co}; damselfly: {cd}\n"),
                ));
            }
            if co {
                o = connect(&state.pair.oracle, resp3)?;
                d = connect(&state.pair.dut, resp3)?;
            }
        }
    }
    let p = d.call(&["PING"]);
    if !matches!(&p, Ok(b) if b == b"+PONG\r\n") {
        return Err(format!(
            "{}[{pass}] after the sequence, damselfly's PING got {}\n",
            listing(seq),
            show(&p)
        ));
    }
    Ok(())
}

/// The sequence once more, sent as one pipeline (all requests in one write, then the replies
/// read): batches that span shards, replies placed in order. Commands sent to the server under
/// test only, and QUIT, are left out.
fn run_pipelined(state: &mut State, seq: &[Cmd], resp3: bool) -> Result<(), String> {
    let pass = if resp3 { "RESP3" } else { "RESP2" };
    let cmds: Vec<&Cmd> = seq
        .iter()
        .filter(|c| c.mode != Mode::DutOnly && !c.args[0].eq_ignore_ascii_case(b"QUIT"))
        .collect();
    let mut o = connect(&state.pair.oracle, resp3)?;
    let mut d = connect(&state.pair.dut, resp3)?;
    let mut bytes = encode_command(&[b"FLUSHALL".as_slice()]);
    for c in &cmds {
        bytes.extend(encode_command(&c.args));
    }
    for (c, who) in [(&mut o, "redis"), (&mut d, "damselfly")] {
        c.send_raw(&bytes)
            .map_err(|e| format!("{who}: sending the pipeline: {e}"))?;
    }
    for (c, who) in [(&mut o, "redis"), (&mut d, "damselfly")] {
        let r = c.read_reply();
        if !matches!(&r, Ok(b) if b == b"+OK\r\n") {
            return Err(format!("{who}: FLUSHALL replied {}", show(&r)));
        }
    }
    let mut history = String::new();
    for (n, c) in cmds.iter().enumerate() {
        let ro = o.read_reply();
        let rd = d.read_reply();
        let ok = match (&ro, &rd) {
            (Ok(a), Ok(b)) => equal(c.mode, a, b),
            (Err(a), Err(b)) => is_closed_error(a) && is_closed_error(b),
            _ => false,
        };
        if !ok {
            FAIL_NAME.with(|f| *f.borrow_mut() = c.name.clone());
            let mut list = format!("pipelined ({pass}), {} commands:\n", cmds.len());
            for (i, c) in cmds.iter().enumerate() {
                list.push_str(&format!("  {:>2}. {c:?}\n", i + 1));
            }
            return Err(format!(
                "{list}replies before the failure:\n{history}failure at command {} [pipelined {pass}]: {c:?}\n    redis:     {}\n    damselfly: {}\n",
                n + 1,
                show(&ro),
                show(&rd)
            ));
        }
        if ro.is_err() {
            break;
        }
        history.push_str(&format!("  {:>2}. {c:?} -> {}\n", n + 1, show(&ro)));
    }
    Ok(())
}

/// The sequence's byte-for-byte compared commands once more, inside MULTI ... EXEC, one
/// request at a time: every `+QUEUED` (or rejection) and the EXEC reply compared. Commands
/// compared another way (sorted, approximate...) are left out, since EXEC returns them in one
/// array, and QUIT and RESET, which MULTI does not queue.
fn run_transaction(state: &mut State, seq: &[Cmd], resp3: bool) -> Result<(), String> {
    let pass = if resp3 { "RESP3" } else { "RESP2" };
    let body = seq.iter().filter(|c| {
        c.mode == Mode::Exact
            && !c.args[0].eq_ignore_ascii_case(b"QUIT")
            && !c.args[0].eq_ignore_ascii_case(b"RESET")
            // Redis counts the queued command's own reference to a value SET in the same
            // transaction (docs/compatibility.md).
            && c.name != "object|refcount"
    });
    let multi = [b"MULTI".to_vec()];
    let exec = [b"EXEC".to_vec()];
    let mut cmds: Vec<&[Vec<u8>]> = vec![&multi];
    cmds.extend(body.map(|c| c.args.as_slice()));
    cmds.push(&exec);
    let mut o = connect(&state.pair.oracle, resp3)?;
    let mut d = connect(&state.pair.dut, resp3)?;
    for (c, who) in [(&mut o, "redis"), (&mut d, "damselfly")] {
        let r = c.call(&["FLUSHALL"]);
        if !matches!(&r, Ok(b) if b == b"+OK\r\n") {
            return Err(format!("{who}: FLUSHALL replied {}", show(&r)));
        }
    }
    let mut history = String::new();
    for (n, args) in cmds.iter().enumerate() {
        let ro = o.call(args);
        let rd = d.call(args);
        let ok = match (&ro, &rd) {
            (Ok(a), Ok(b)) => a == b,
            (Err(a), Err(b)) => is_closed_error(a) && is_closed_error(b),
            _ => false,
        };
        let shown: Vec<String> = args.iter().map(|a| escape(a)).collect();
        if !ok {
            FAIL_NAME.with(|f| *f.borrow_mut() = "multi".into());
            return Err(format!(
                "in MULTI ({pass}):\n{history}failure at {}: {}\n    redis:     {}\n    damselfly: {}\n",
                n + 1,
                shown.join(" "),
                show(&ro),
                show(&rd)
            ));
        }
        if ro.is_err() {
            break;
        }
        history.push_str(&format!(
            "  {:>2}. {} -> {}\n",
            n + 1,
            shown.join(" "),
            show(&ro)
        ));
    }
    let p = d.call(&["PING"]);
    if !matches!(&p, Ok(b) if b == b"+PONG\r\n") {
        return Err(format!(
            "[MULTI {pass}] after EXEC, damselfly's PING got {}\n",
            show(&p)
        ));
    }
    Ok(())
}

fn restore_config(state: &State) {
    for (srv, which) in [(&state.pair.oracle, 0), (&state.pair.dut, 1)] {
        let Ok(mut c) = connect(srv, false) else {
            continue;
        };
        for (p, ov, dv) in &state.config {
            let v = if which == 0 { ov } else { dv };
            if let Some(v) = v {
                let _ = c.call(&[b"CONFIG".as_slice(), b"SET", p.as_bytes(), v]);
            }
        }
    }
}

fn new_log_lines(state: &mut State) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(&state.log_path) else {
        return String::new();
    };
    let _ = f.seek(SeekFrom::Start(state.log_seen));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    state.log_seen += buf.len() as u64;
    String::from_utf8_lossy(&buf).into_owned()
}

fn run_sequence(state: &mut State, seq: &[Cmd]) -> Result<(), String> {
    let mut result = run_pass(state, seq, false)
        .and_then(|()| run_pass(state, seq, true))
        .and_then(|()| run_pipelined(state, seq, false))
        .and_then(|()| run_pipelined(state, seq, true))
        .and_then(|()| run_transaction(state, seq, false))
        .and_then(|()| run_transaction(state, seq, true));
    if seq.iter().any(|c| c.name == "config|set") {
        restore_config(state);
    }
    let log = new_log_lines(state);
    if log.contains("panicked") {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("panicked")).collect();
        let msg = format!(
            "damselfly's log says \"panicked\":\n    {}\n",
            lines.join("\n    ")
        );
        result = match result {
            Ok(()) => Err(format!("{}{msg}", listing(seq))),
            Err(e) => Err(format!("{e}{msg}")),
        };
    }
    result
}

fn run_sequence_checked(state: &mut State, seq: &[Cmd]) -> Result<(), String> {
    if state.gave_up {
        return Ok(());
    }
    FAIL_NAME.with(|f| *f.borrow_mut() = "(after the sequence)".to_string());
    let mut result = run_sequence(state, seq);
    // Which thread accepts a connection (SO_REUSEPORT) decides which keys are remote to it, so
    // a cross-shard bug shows on some connections only. While shrinking, a candidate that
    // passes gets two more tries before it counts as passing.
    if state.failed_once && state.collected.is_none() {
        for _ in 0..2 {
            if result.is_err() {
                break;
            }
            FAIL_NAME.with(|f| *f.borrow_mut() = "(after the sequence)".to_string());
            result = run_sequence(state, seq);
        }
    }
    state.failed_once |= result.is_err();
    state.fail_name = FAIL_NAME.with(|f| f.borrow().clone());
    if let Err(msg) = &mut result {
        let deadline = Instant::now() + Duration::from_millis(500);
        while state.pair.oracle.is_running()
            && state.pair.dut.is_running()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut dut_restarted = false;
        for (server, is_dut) in [(&mut state.pair.oracle, false), (&mut state.pair.dut, true)] {
            if let Some(why) = server.exited() {
                msg.push_str(&format!("\n{why}\n"));
                if state.restarts < MAX_RESTARTS {
                    state.restarts += 1;
                    server.restart();
                    dut_restarted |= is_dut;
                } else {
                    state.gave_up = true;
                }
            }
        }
        if dut_restarted {
            state.log_path = state.pair.dut.log_path().to_path_buf();
            state.log_seen = 0;
        }
    }
    if let (Err(msg), Some(col)) = (&result, state.collected.as_mut()) {
        let e = col
            .entry(state.fail_name.clone())
            .or_insert((0, msg.clone()));
        e.0 += 1;
        if msg.len() < e.1.len() {
            e.1 = msg.clone();
        }
        return Ok(());
    }
    result
}

fn env_num(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (parameter, oracle's value, dut's value); `None` where a server does not have it.
type ConfigDefault = (String, Option<Vec<u8>>, Option<Vec<u8>>);

fn initial_config(pair: &Pair) -> Vec<ConfigDefault> {
    let get = |srv: &ServerProc, p: &str| -> Option<Vec<u8>> {
        let mut c = srv.connect();
        match call_v(&mut c, &["CONFIG", "GET", p]) {
            V::A(v) if v.len() == 2 => match &v[1] {
                V::S(s) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        }
    };
    CONFIG_SET_PARAMS
        .iter()
        .map(|p| (p.to_string(), get(&pair.oracle, p), get(&pair.dut, p)))
        .collect()
}

#[test]
fn fuzz_every_command() {
    let started = Instant::now();
    let cases = env_num("COMPAT_FUZZ_CASES", 1000) as u32;
    let seed = env_num("COMPAT_FUZZ_SEED", 0x0da5_e1f1);
    let max_len = env_num("COMPAT_FUZZ_LEN", 16).max(1) as usize;
    let pair = Pair::start();
    let cat: &'static Catalog = Box::leak(Box::new(build_catalog(&pair)));
    COMMAND_NAMES.with(|n| {
        *n.borrow_mut() = cat.names.iter().map(|s| s.as_bytes().to_vec()).collect();
    });
    let config = initial_config(&pair);
    let log_path = pair.dut.log_path().to_path_buf();
    let state = RefCell::new(State {
        pair,
        restarts: 0,
        gave_up: false,
        log_seen: 0,
        log_path,
        config,
        sent: BTreeMap::new(),
        fail_name: String::new(),
        failed_once: false,
        collected: (std::env::var("COMPAT_FUZZ_COLLECT").as_deref() == Ok("1")).then(BTreeMap::new),
    });
    // Anything logged while starting is not ours to judge.
    {
        let mut s = state.borrow_mut();
        let _ = new_log_lines(&mut s);
    }
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let runner_config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2048,
        max_shrink_time: 45_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(runner_config, rng);
    let result = runner.run(&sequence(cat, max_len), |seq| {
        run_sequence_checked(&mut state.borrow_mut(), &seq).map_err(TestCaseError::fail)
    });
    let State {
        mut pair,
        sent,
        collected,
        ..
    } = state.into_inner();
    if let Some(col) = &collected {
        for (name, (n, msg)) in col {
            eprintln!("==== {name}: {n} failing sequence(s); the shortest:\n{msg}");
        }
    }
    let mut by_mode: BTreeMap<Mode, (usize, usize)> = BTreeMap::new();
    let names: BTreeSet<&String> = sent.keys().map(|(n, _)| n).collect();
    for ((_, m), k) in &sent {
        let e = by_mode.entry(*m).or_default();
        e.0 += 1;
        e.1 += k;
    }
    let never: Vec<&str> = cat
        .specs
        .iter()
        .filter(|s| !names.contains(&s.name))
        .map(|s| s.name.as_str())
        .collect();
    eprintln!(
        "fuzz_commands: seed {seed:#x}, {cases} sequences of up to {max_len} commands in {:?}; \
         {} commands in the catalog ({} generated, {} distinct names sent); by mode \
         (names, commands): {by_mode:?}; never sent: {never:?}",
        started.elapsed(),
        cat.modes.len(),
        cat.specs.len(),
        names.len(),
    );
    match result {
        Ok(()) if collected.as_ref().is_some_and(|c| !c.is_empty()) => {
            let logs = pair.keep_logs();
            panic!(
                "{} command(s) failed (see above)\n{logs}",
                collected.unwrap().len()
            );
        }
        Ok(()) => {}
        Err(TestError::Fail(reason, _)) => {
            let logs = pair.keep_logs();
            panic!("\nminimal failing sequence after shrinking:\n{reason}\n{logs}\n");
        }
        Err(TestError::Abort(reason)) => panic!("proptest aborted: {reason}"),
    }
}
