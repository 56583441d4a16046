//! Server commands (Redis's server.c, config.c, debug.c, object.c, lolwut.c): INFO, CONFIG,
//! COMMAND, TIME, LASTSAVE, DEBUG, MEMORY, SHUTDOWN, LOLWUT.
//!
//! Replies follow Redis 7.0.15 (texts, error messages, RESP2/RESP3 shapes), with our own
//! numbers where the server differs (memory, encodings, timing). COMMAND describes exactly the
//! commands this server's table implements, in Redis's metadata format: a container's entry
//! nests only the subcommands we serve.
//!
//! Invariant: nothing here keeps a `&mut Shard` across an `.await`; work on keys goes through
//! shard callbacks (`coord::run_on`, `run_on_all`, keyed handlers).

use super::meta::{self, MetaValue};
use super::{eq_ic, parse_i64, reply_help, NOT_INT, SYNTAX};
use crate::command::{arity_ok, Command, CommandTable, LocalFut, ShardCtx, TableBuilder};
use crate::conn::Conn;
use crate::coord::{run_on, run_on_all};
use crate::info;
use crate::shard::ThreadStats;
use bytes::Bytes;
use damselfly_core::{Entry, NewValue, ValueRef};
use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub fn register(t: &mut TableBuilder) {
    t.coord("info", info_cmd);
    t.conn("config|get", config_get);
    t.conn("config|set", config_set);
    t.coord("config|resetstat", config_resetstat);
    t.conn("config|rewrite", config_rewrite);
    t.conn("config|help", config_help);
    t.conn("command", command_all);
    t.conn("command|count", command_count);
    t.conn("command|info", command_info);
    t.conn("command|docs", command_docs);
    t.conn("command|list", command_list);
    t.conn("command|getkeys", command_getkeys);
    t.conn("command|getkeysandflags", command_getkeysandflags);
    t.conn("command|help", command_help);
    t.conn("time", time);
    t.conn("lastsave", lastsave);
    t.conn("lolwut", lolwut);
    t.conn("shutdown", shutdown);
    t.coord("debug", debug);
    t.keyed("memory|usage", memory_usage, None);
    t.coord("memory|stats", memory_stats);
    t.conn("memory|doctor", memory_doctor);
    t.conn("memory|malloc-stats", memory_malloc_stats);
    t.conn("memory|purge", memory_purge);
    t.conn("memory|help", memory_help);
}

// ------------------------------------------------------------------------------------------
// INFO
// ------------------------------------------------------------------------------------------

fn info_cmd(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        let names: Vec<&[u8]> = args[1..].iter().map(|a| a.as_ref()).collect();
        let sections = info::Sections::parse(&names);
        let data = info::gather(c, &sections).await;
        let text = info::render(&sections, &data);
        c.out.verbatim(text.as_bytes());
    })
}

// ------------------------------------------------------------------------------------------
// CONFIG
// ------------------------------------------------------------------------------------------

fn config_get(c: &mut Conn, args: &[Bytes]) {
    let patterns: Vec<&[u8]> = args[2..].iter().map(|a| a.as_ref()).collect();
    let cfg = c.globals.config();
    config_get_reply(&cfg, &patterns, &mut c.out);
}

/// CONFIG GET's reply: a map of name -> value (a flat array in RESP2).
pub fn config_get_reply(
    cfg: &crate::config::Config,
    patterns: &[&[u8]],
    r: &mut damselfly_resp::ReplyBuilder,
) {
    let pairs = cfg.config_get(patterns);
    r.map(pairs.len());
    for (k, v) in pairs {
        r.bulk(k.as_bytes());
        r.bulk(v.as_bytes());
    }
}

/// Redis's `islocalClient`: a loopback peer.
fn config_set(c: &mut Conn, args: &[Bytes]) {
    let rest = &args[2..];
    if rest.len() & 1 == 1 {
        c.out.error(SYNTAX);
        return;
    }
    let values: Vec<Cow<'_, [u8]>> = rest
        .chunks(2)
        .map(|p| config_value_as_c(&p[0], &p[1]))
        .collect();
    let pairs: Vec<(&[u8], &[u8])> = rest
        .chunks(2)
        .zip(&values)
        .map(|(p, v)| (p[0].as_ref(), v.as_ref()))
        .collect();
    let local = c.is_local;
    let res = c.globals.config_mut().config_set_multi_ex(&pairs, local);
    match res {
        Ok(()) => {
            c.globals.apply_config();
            c.out.ok()
        }
        Err(e) => match unknown_option_error(&e, &pairs) {
            Some(raw) => c.out.error_bytes(&raw),
            None => c.out.error(&e),
        },
    }
}

/// A CONFIG SET value as Redis 7.0 parses it for the option's type. Booleans, enums, memory
/// sizes and `notify-keyspace-events` are parsed from the argument as a C string (strcasecmp,
/// strtoull, a character loop), so a NUL ends the value: `yes\0x` is `yes`. Multi-word options
/// (`save`, flag enums, `oom-score-adj-values`) are split at spaces first and each word is a C
/// string. Integers (string2ll with the length), free text (sds) and the rest keep every byte.
fn config_value_as_c<'a>(name: &[u8], value: &'a [u8]) -> Cow<'a, [u8]> {
    use crate::config::{lookup, OptType};
    let Some(def) = std::str::from_utf8(name).ok().and_then(lookup) else {
        return Cow::Borrowed(value);
    };
    let cut = |v: &'a [u8]| &v[..v.iter().position(|&b| b == 0).unwrap_or(v.len())];
    match def.ty {
        OptType::Bool
        | OptType::Enum(_)
        | OptType::KeyspaceEvents
        | OptType::Memory { .. }
        | OptType::MemoryOrPercent => Cow::Borrowed(cut(value)),
        OptType::EnumFlags(_) | OptType::Save | OptType::OomScoreAdjValues
            if value.contains(&0) =>
        {
            Cow::Owned(
                value
                    .split(|&b| b == b' ')
                    .map(cut)
                    .collect::<Vec<_>>()
                    .join(&b' '),
            )
        }
        _ => Cow::Borrowed(value),
    }
}

/// Redis prints an unknown CONFIG SET name with `'%s'`: the client's bytes up to the first NUL,
/// verbatim. The config layer shows names lossily (valid UTF-8, NULs kept), so for its "unknown
/// option" error this finds the pair it means (the first whose lossy form is the one shown)
/// and renders that name as Redis does. `None` for other errors.
fn unknown_option_error(e: &str, pairs: &[(&[u8], &[u8])]) -> Option<Vec<u8>> {
    const UNKNOWN: &str = "ERR Unknown option or number of arguments for CONFIG SET - '";
    let shown = e.strip_prefix(UNKNOWN)?.strip_suffix('\'')?;
    let (name, _) = pairs
        .iter()
        .find(|(n, _)| String::from_utf8_lossy(n) == shown)?;
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    let mut out = UNKNOWN.as_bytes().to_vec();
    out.extend_from_slice(&name[..end]);
    out.push(b'\'');
    Some(out)
}

fn config_resetstat(c: &mut Conn, _args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        run_on_all(c, |sh| sh.stats = ThreadStats::default()).await;
        let g = &c.globals;
        g.total_connections.store(0, Ordering::Relaxed);
        g.rejected_connections.store(0, Ordering::Relaxed);
        g.stat_reset_epoch.fetch_add(1, Ordering::Relaxed);
        info::reset_samples();
        info::reset_peak();
        c.out.ok();
    })
}

fn config_help(c: &mut Conn, _args: &[Bytes]) {
    reply_help(
        c,
        &[
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
            "HELP",
            "    Prints this help.",
        ],
    );
}

fn config_rewrite(c: &mut Conn, _args: &[Bytes]) {
    let cfg = c.globals.config().clone();
    let Some(path) = cfg.config_file().map(str::to_string) else {
        c.out
            .error("ERR The server is running without a config file");
        return;
    };
    match rewrite_config_file(&path, &cfg) {
        Ok(()) => {
            crate::log::info("CONFIG REWRITE executed with success.");
            c.out.ok();
        }
        Err(e) => {
            crate::log::warn(&format!("CONFIG REWRITE failed: {e}"));
            c.out.error(&format!("ERR Rewriting config file: {e}"));
        }
    }
}

/// Quotes a config value for a redis.conf line when it needs it (Redis's `sdscatrepr`).
fn conf_quote(v: &str) -> String {
    let plain = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\');
    if plain {
        return v.to_string();
    }
    let mut s = String::from("\"");
    for b in v.bytes() {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

/// The redis.conf lines for one option's current value.
fn conf_lines(name: &str, def: &crate::config::OptDef, value: &str) -> Vec<String> {
    if def.multi_arg {
        if value.is_empty() {
            return vec![format!("{name} \"\"")];
        }
        // One line per save point / buffer class, as Redis writes them.
        let per_line = match name {
            "save" => 2,
            "client-output-buffer-limit" => 4,
            _ => 0,
        };
        if per_line > 0 {
            let w: Vec<&str> = value.split_whitespace().collect();
            return w
                .chunks(per_line)
                .map(|c| format!("{name} {}", c.join(" ")))
                .collect();
        }
        return vec![format!("{name} {value}")];
    }
    vec![format!("{name} {}", conf_quote(value))]
}

/// CONFIG REWRITE as Redis's `rewriteConfig`: lines of options already in the file are
/// replaced with the current values (extra lines of the same option are dropped), options
/// whose value differs from the default and that the file lacks are appended after
/// `# Generated by CONFIG REWRITE`, everything else is kept. Written to a temporary file and
/// renamed over the original.
fn rewrite_config_file(path: &str, cfg: &crate::config::Config) -> Result<(), String> {
    use std::collections::HashMap;
    const SIGNATURE: &str = "# Generated by CONFIG REWRITE";
    let errtext = |e: std::io::Error| {
        let s = e.to_string();
        s.split(" (os error").next().unwrap_or(&s).to_string()
    };
    let old = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(errtext(e)),
    };
    // Current values, one per option, under its CONFIG name.
    let mut current: Vec<(usize, String, String)> = Vec::new();
    for (name, value) in cfg.config_get(&[b"*"]) {
        let Some(idx) = crate::config::option_index(&name) else {
            continue;
        };
        let def = &crate::config::OPTIONS[idx];
        if def.config_name() != name {
            continue; // an alias
        }
        current.push((idx, name, value));
    }
    let by_idx: HashMap<usize, (String, String)> = current
        .iter()
        .map(|(i, n, v)| (*i, (n.clone(), v.clone())))
        .collect();
    let mut out: Vec<String> = Vec::new();
    let mut done: std::collections::HashSet<usize> = std::collections::HashSet::new();
    for line in old.lines() {
        if line.trim() == SIGNATURE {
            continue;
        }
        let t = line.trim_start();
        let word = t.split_whitespace().next().unwrap_or("");
        let idx = if t.starts_with('#') || word.is_empty() {
            None
        } else {
            crate::config::option_index(word)
        };
        match idx.and_then(|i| by_idx.get(&i).map(|nv| (i, nv))) {
            Some((i, (name, value))) => {
                if done.insert(i) {
                    out.extend(conf_lines(name, &crate::config::OPTIONS[i], value));
                }
            }
            None => out.push(line.to_string()),
        }
    }
    let mut tail = Vec::new();
    for (i, name, value) in &current {
        if done.contains(i) {
            continue;
        }
        let def = &crate::config::OPTIONS[*i];
        if def.name == "dir" && !cfg.is_explicit("dir") {
            continue;
        }
        if value != def.default {
            tail.extend(conf_lines(name, def, value));
        }
    }
    if !tail.is_empty() {
        out.push(SIGNATURE.to_string());
        out.extend(tail);
    }
    let mut text = out.join("\n");
    text.push('\n');
    let tmp = format!("{path}.tmp-{}", std::process::id());
    std::fs::write(&tmp, text).map_err(errtext)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        errtext(e)
    })
}

// ------------------------------------------------------------------------------------------
// COMMAND
// ------------------------------------------------------------------------------------------

/// A command of our table by full name (`get`, `config|get`), case-insensitive.
pub(crate) fn find_command<'t>(table: &'t CommandTable, name: &[u8]) -> Option<&'t Command> {
    let lower = name.to_ascii_lowercase();
    match lower.iter().position(|&b| b == b'|') {
        None => table.map.get(&lower),
        Some(i) => table.map.get(&lower[..i])?.subs.get(&lower[i + 1..]),
    }
}

pub(crate) fn sorted_subs(cmd: &Command) -> Vec<&Command> {
    let mut subs: Vec<&Command> = cmd.subs.values().collect();
    subs.sort_by_key(|s| s.name);
    subs
}

fn sorted_commands(table: &CommandTable) -> Vec<&Command> {
    let mut all: Vec<&Command> = table.iter().collect();
    all.sort_by_key(|c| c.name);
    all
}

/// The COMMAND INFO entry of `cmd`: Redis's, with a container's nested subcommands limited
/// to the ones we implement.
fn info_value(cmd: &Command) -> Cow<'static, MetaValue> {
    if cmd.subs.is_empty() {
        return Cow::Borrowed(&cmd.meta.info);
    }
    let mut v = cmd.meta.info.clone();
    if let MetaValue::Array(items) = &mut v {
        if items.len() == 10 {
            items[9] = MetaValue::Array(
                sorted_subs(cmd)
                    .into_iter()
                    .map(|s| info_value(s).into_owned())
                    .collect(),
            );
        }
    }
    Cow::Owned(v)
}

/// Docs of a command newer than Redis 7.0.15 (its metadata is synthesized).
fn synthesized_docs(name: &str) -> MetaValue {
    let summary = match name {
        "client|setinfo" => "Sets information specific to the client or connection.",
        "client|no-touch" => {
            "Controls whether commands sent by the client affect the LRU/LFU of accessed keys."
        }
        "client|capa" => "A client claims its capability.",
        _ => "",
    };
    let since = if name == "client|capa" {
        "8.0.0"
    } else {
        "7.2.0"
    };
    let b = |s: &str| MetaValue::Bulk(s.as_bytes().to_vec());
    MetaValue::Map(vec![
        (b("summary"), b(summary)),
        (b("since"), b(since)),
        (b("group"), b("connection")),
        (b("complexity"), b("O(1)")),
    ])
}

/// The COMMAND DOCS value of `cmd`, a container's "subcommands" limited to ours.
fn docs_value(cmd: &Command) -> MetaValue {
    let mut d = match &cmd.meta.docs {
        Some(d) => d.clone(),
        None => synthesized_docs(cmd.name),
    };
    if cmd.subs.is_empty() {
        return d;
    }
    let subs = MetaValue::Map(
        sorted_subs(cmd)
            .into_iter()
            .map(|s| (MetaValue::Bulk(s.name.as_bytes().to_vec()), docs_value(s)))
            .collect(),
    );
    if let MetaValue::Map(pairs) = &mut d {
        match pairs
            .iter_mut()
            .find(|(k, _)| k.as_bytes() == Some(b"subcommands"))
        {
            Some(p) => p.1 = subs,
            None => pairs.push((MetaValue::Bulk(b"subcommands".to_vec()), subs)),
        }
    }
    d
}

fn command_all(c: &mut Conn, _args: &[Bytes]) {
    let table = c.table;
    let all = sorted_commands(table);
    c.out.array(all.len());
    for cmd in all {
        meta::emit(&info_value(cmd), &mut c.out);
    }
}

fn command_count(c: &mut Conn, _args: &[Bytes]) {
    c.out.int(c.table.map.len() as i64);
}

fn command_info(c: &mut Conn, args: &[Bytes]) {
    if args.len() == 2 {
        command_all(c, args);
        return;
    }
    let table = c.table;
    c.out.array(args.len() - 2);
    for name in &args[2..] {
        match find_command(table, name) {
            Some(cmd) => meta::emit(&info_value(cmd), &mut c.out),
            None => c.out.null(),
        }
    }
}

fn command_docs(c: &mut Conn, args: &[Bytes]) {
    let table = c.table;
    let cmds: Vec<&Command> = if args.len() == 2 {
        sorted_commands(table)
    } else {
        args[2..]
            .iter()
            .filter_map(|n| find_command(table, n))
            .collect()
    };
    c.out.map(cmds.len());
    for cmd in cmds {
        c.out.bulk(cmd.name.as_bytes());
        meta::emit(&docs_value(cmd), &mut c.out);
    }
}

enum ListFilter {
    None,
    Module,
    AclCat(String),
    Pattern(Vec<u8>),
}

fn command_list(c: &mut Conn, args: &[Bytes]) {
    let filter = match args.len() {
        2 => ListFilter::None,
        5 if eq_ic(&args[2], "filterby") => {
            if eq_ic(&args[3], "module") {
                ListFilter::Module
            } else if eq_ic(&args[3], "aclcat") {
                ListFilter::AclCat(format!("@{}", String::from_utf8_lossy(&args[4])))
            } else if eq_ic(&args[3], "pattern") {
                ListFilter::Pattern(args[4].to_vec())
            } else {
                c.out.error(SYNTAX);
                return;
            }
        }
        _ => {
            c.out.error(SYNTAX);
            return;
        }
    };
    let keep = |cmd: &Command| match &filter {
        ListFilter::None => true,
        ListFilter::Module => false,
        ListFilter::AclCat(cat) => cmd
            .meta
            .acl_categories
            .iter()
            .any(|x| x.eq_ignore_ascii_case(cat)),
        ListFilter::Pattern(p) => damselfly_core::glob::glob_match(p, cmd.name.as_bytes(), true),
    };
    let mut names: Vec<&'static str> = Vec::new();
    for cmd in sorted_commands(c.table) {
        if keep(cmd) {
            names.push(cmd.name);
        }
        for s in sorted_subs(cmd) {
            if keep(s) {
                names.push(s.name);
            }
        }
    }
    c.out.array(names.len());
    for n in names {
        c.out.bulk(n.as_bytes());
    }
}

/// One key found by a key spec: its argv position and the spec's flags.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecKey {
    pub pos: usize,
    pub flags: Vec<String>,
}

/// Redis's `getKeysUsingKeySpecs` over the key specs in `info` (COMMAND INFO's 9th element):
/// `None` where Redis reports an invalid or incomplete spec.
pub fn keys_from_specs(info: &MetaValue, argv: &[Bytes]) -> Option<Vec<SpecKey>> {
    let specs = info.items().get(8)?.items();
    let argc = argv.len() as i64;
    let int = |m: Option<&MetaValue>, k: &str| m.and_then(|m| m.get(k)).and_then(|v| v.as_int());
    let mut out = Vec::new();
    for spec in specs {
        let flags: Vec<String> = spec
            .get("flags")
            .map(|f| {
                f.items()
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if flags.iter().any(|f| f == "not_key") {
            continue;
        }
        let bs = spec.get("begin_search")?;
        let bs_spec = bs.get("spec");
        let mut first: i64 = match bs.get("type").and_then(|t| t.as_str()) {
            Some("index") => int(bs_spec, "index")?,
            Some("keyword") => {
                let kw = bs_spec
                    .and_then(|s| s.get("keyword"))
                    .and_then(|k| k.as_bytes())?;
                let from = int(bs_spec, "startfrom")?;
                let (start, end) = if from > 0 {
                    (from, argc - 1)
                } else {
                    (argc + from, 0)
                };
                let mut found = 0;
                let mut i = start;
                while i != end {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if argv[i as usize].eq_ignore_ascii_case(kw) {
                        found = i + 1;
                        break;
                    }
                    i = if start <= end { i + 1 } else { i - 1 };
                }
                if found == 0 {
                    continue;
                }
                found
            }
            _ => return None,
        };
        let fk = spec.get("find_keys")?;
        let fk_spec = fk.get("spec");
        let (last, step) = match fk.get("type").and_then(|t| t.as_str()) {
            Some("range") => {
                let lastkey = int(fk_spec, "lastkey")?;
                let step = int(fk_spec, "keystep")?;
                let limit = int(fk_spec, "limit")?;
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (last, step)
            }
            Some("keynum") => {
                let idx = int(fk_spec, "keynumidx")?;
                let firstkey = int(fk_spec, "firstkey")?;
                let step = int(fk_spec, "keystep")?;
                if idx >= argc - first {
                    return None;
                }
                let n = parse_i64(&argv[(first + idx) as usize]).filter(|n| *n >= 0)?;
                first += firstkey;
                (first + n - 1, step)
            }
            _ => return None,
        };
        if last >= argc || last < first || first >= argc {
            return None;
        }
        let mut i = first;
        while i <= last {
            out.push(SpecKey {
                pos: i as usize,
                flags: flags.clone(),
            });
            i += step.max(1);
        }
        if flags.iter().any(|f| f == "incomplete") {
            return None;
        }
    }
    Some(out)
}

/// Whether a command has a key spec not flagged `not_key` (Redis's `doesCommandHaveKeys`:
/// the channels of SSUBSCRIBE and SPUBLISH have specs, flagged `not_key`, and are no keys).
fn has_key_specs(info: &MetaValue) -> bool {
    info.items().get(8).is_some_and(|specs| {
        specs.items().iter().any(|spec| {
            !spec.get("flags").is_some_and(|f| {
                f.items()
                    .iter()
                    .any(|x| x.as_str().is_some_and(|s| s == "not_key"))
            })
        })
    })
}

/// Why COMMAND GETKEYS cannot answer, with Redis's texts.
fn getkeys_target<'t>(
    table: &'t CommandTable,
    argv: &[Bytes],
) -> Result<&'t Command, &'static str> {
    let cmd = table
        .lookup(argv)
        .map_err(|_| "ERR Invalid command specified")?;
    if !has_key_specs(&cmd.meta.info) && cmd.keys.is_none() {
        return Err("ERR The command has no key arguments");
    }
    if !arity_ok(cmd.arity, argv.len()) {
        return Err("ERR Invalid number of arguments specified for command");
    }
    Ok(cmd)
}

/// Key positions as COMMAND GETKEYS reports them: the table's own extraction for commands
/// with custom key positions, else Redis's key specs, else the legacy range.
fn getkeys_positions(cmd: &Command, argv: &[Bytes]) -> Vec<usize> {
    if cmd.keys.is_some() {
        return cmd.key_positions(argv);
    }
    match keys_from_specs(&cmd.meta.info, argv) {
        Some(k) if !k.is_empty() => k.into_iter().map(|k| k.pos).collect(),
        _ => cmd.key_positions(argv),
    }
}

fn no_keys_reply(c: &mut Conn, cmd: &Command) {
    if cmd.meta.has_flag("no_mandatory_keys") {
        c.out.array(0);
    } else {
        c.out.error("ERR Invalid arguments specified for command");
    }
}

fn command_getkeys(c: &mut Conn, args: &[Bytes]) {
    let argv = &args[2..];
    let cmd = match getkeys_target(c.table, argv) {
        Ok(cmd) => cmd,
        Err(e) => {
            c.out.error(e);
            return;
        }
    };
    let keys = getkeys_positions(cmd, argv);
    if keys.is_empty() {
        no_keys_reply(c, cmd);
        return;
    }
    c.out.array(keys.len());
    for p in keys {
        c.out.bulk(&argv[p]);
    }
}

/// Flags of a key whose spec says `variable_flags`, as the command's own getkeys does.
fn variable_key_flags(cmd: &Command, argv: &[Bytes]) -> Option<Vec<String>> {
    let v = |xs: &[&str]| Some(xs.iter().map(|s| s.to_string()).collect());
    // Redis compares with strcasecmp on C strings: an argument ends at its first NUL.
    let c_eq = |a: &[u8], kw: &str| {
        let end = a.iter().position(|&b| b == 0).unwrap_or(a.len());
        eq_ic(&a[..end], kw)
    };
    match cmd.name {
        "set" => {
            if argv.iter().skip(3).any(|a| c_eq(a, "get")) {
                v(&["RW", "access", "update"])
            } else {
                v(&["OW", "update"])
            }
        }
        "bitfield" => {
            // Redis's bitfieldGetKeys: read-only only when every operation is a complete GET
            // or OVERFLOW; anything else (SET, INCRBY, or a syntax error, "safer to assume
            // non-RO") makes it a write.
            let mut readonly = true;
            let mut j = 2;
            while j < argv.len() {
                let rem = argv.len() - j - 1;
                let a = &argv[j];
                if c_eq(a, "get") && rem >= 2 {
                    j += 3;
                } else if c_eq(a, "overflow") && rem >= 1 {
                    j += 2;
                } else {
                    readonly = false;
                    break;
                }
            }
            if readonly {
                v(&["RO", "access"])
            } else {
                v(&["RW", "access", "update"])
            }
        }
        _ => None,
    }
}

fn command_getkeysandflags(c: &mut Conn, args: &[Bytes]) {
    let argv = &args[2..];
    let cmd = match getkeys_target(c.table, argv) {
        Ok(cmd) => cmd,
        Err(e) => {
            c.out.error(e);
            return;
        }
    };
    let keys = getkeys_positions(cmd, argv);
    if keys.is_empty() {
        no_keys_reply(c, cmd);
        return;
    }
    let specs = keys_from_specs(&cmd.meta.info, argv).unwrap_or_default();
    c.out.array(keys.len());
    for p in keys {
        let mut flags = specs
            .iter()
            .find(|k| k.pos == p)
            .map(|k| k.flags.clone())
            .unwrap_or_default();
        if flags.iter().any(|f| f == "variable_flags") {
            flags = variable_key_flags(cmd, argv).unwrap_or_else(|| {
                flags
                    .iter()
                    .filter(|f| *f != "variable_flags")
                    .cloned()
                    .collect()
            });
        }
        c.out.array(2);
        c.out.bulk(&argv[p]);
        c.out.set(flags.len());
        for f in &flags {
            c.out.simple(f);
        }
    }
}

fn command_help(c: &mut Conn, _args: &[Bytes]) {
    reply_help(
        c,
        &[
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
            "HELP",
            "    Prints this help.",
        ],
    );
}

// ------------------------------------------------------------------------------------------
// TIME, LASTSAVE, SHUTDOWN
// ------------------------------------------------------------------------------------------

fn time(c: &mut Conn, _args: &[Bytes]) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    c.out.array(2);
    c.out.bulk(now.as_secs().to_string().as_bytes());
    c.out.bulk(now.subsec_micros().to_string().as_bytes());
}

fn lastsave(c: &mut Conn, _args: &[Bytes]) {
    c.out.int((c.globals.start_unix_ms / 1000) as i64);
}

fn shutdown(c: &mut Conn, args: &[Bytes]) {
    let (mut save, mut nosave, mut abort, mut other) = (false, false, false, false);
    for a in &args[1..] {
        if eq_ic(a, "nosave") {
            nosave = true;
        } else if eq_ic(a, "save") {
            save = true;
        } else if eq_ic(a, "now") || eq_ic(a, "force") {
            other = true;
        } else if eq_ic(a, "abort") {
            abort = true;
        } else {
            c.out.error(SYNTAX);
            return;
        }
    }
    if (abort && (save || nosave || other)) || (save && nosave) {
        c.out.error(SYNTAX);
        return;
    }
    if abort {
        c.out.error("ERR No shutdown in progress.");
        return;
    }
    crate::log::info(&format!(
        "User requested shutdown (client id={} addr={})",
        c.id, c.shared.addr
    ));
    c.globals.request_shutdown();
    // As Redis: a successful SHUTDOWN closes the connection without a reply.
    c.close_after_reply = true;
}

// ------------------------------------------------------------------------------------------
// LOLWUT
// ------------------------------------------------------------------------------------------

fn lolwut(c: &mut Conn, args: &[Bytes]) {
    let mut version: Option<i64> = None;
    let mut rest = &args[1..];
    if args.len() >= 3 && eq_ic(&args[1], "version") {
        match parse_i64(&args[2]) {
            Some(v) => version = Some(v),
            None => {
                c.out.error(NOT_INT);
                return;
            }
        }
        rest = &args[3..];
    }
    let ver_line = format!("Redis ver. {}\n", super::connection::REDIS_VERSION);
    let defaults: &[i64] = match version {
        Some(5) => &[66, 8, 12],
        Some(6) => &[80, 20],
        _ => {
            c.out.verbatim(ver_line.as_bytes());
            return;
        }
    };
    let mut params = defaults.to_vec();
    for (p, a) in params.iter_mut().zip(rest.iter()) {
        match parse_i64(a) {
            Some(v) => *p = v,
            None => {
                c.out.error(NOT_INT);
                return;
            }
        }
    }
    let seed = crate::shard::now_ms() | 1;
    let mut text = if version == Some(5) {
        let cols = params[0].clamp(1, 1000) as usize;
        let per_row = params[1].clamp(1, 200) as usize;
        let per_col = params[2].clamp(1, 200) as usize;
        let mut t = lolwut5(cols, per_row, per_col, seed);
        t.push_str("\nGeorg Nees - schotter, plotter on paper, 1968. ");
        t
    } else {
        let cols = params[0].clamp(1, 1000) as usize;
        let rows = params[1].clamp(1, 1000) as usize;
        let mut t = lolwut6(cols, rows, seed);
        t.push_str(
            "\nDedicated to the 8 bit game developers of past and present.\n\
             Original 8 bit image from Plaguemon by hikikomori. ",
        );
        t
    };
    text.push_str(&ver_line);
    c.out.verbatim(text.as_bytes());
}

/// A small xorshift generator standing in for C's `rand()` in LOLWUT.
struct LwRand(u64);

impl LwRand {
    /// A value in [0, 2^31), as `rand()` returns.
    fn next(&mut self) -> i64 {
        let x = &mut self.0;
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        (*x >> 33) as i64
    }
}

/// LOLWUT 6: a city skyline in the four grays of a color terminal (Redis's lolwut6.c).
fn lolwut6(cols: usize, rows: usize, seed: u64) -> String {
    let (w, h) = (cols as i64, rows as i64);
    let mut px = vec![3u8; cols * rows];
    let mut rng = LwRand(seed);
    let get = |px: &Vec<u8>, x: i64, y: i64| -> u8 {
        if x < 0 || y < 0 || x >= w || y >= h {
            0
        } else {
            px[(y * w + x) as usize]
        }
    };
    // One skyscraper: (xoff, width, height, windows, color).
    let building = |px: &mut Vec<u8>,
                    rng: &mut LwRand,
                    xoff: i64,
                    width: i64,
                    height: i64,
                    windows: bool,
                    color: u8| {
        let starty = h - 1;
        let endy = starty - height + 1;
        let mut y = starty;
        while y >= endy {
            for x in xoff..xoff + width {
                // The roof is four pixels less wide.
                if y == endy && (x <= xoff + 1 || x >= xoff + width - 2) {
                    continue;
                }
                let mut c = color;
                if windows && x > xoff + 1 && x < xoff + width - 2 && y > endy + 1 && y < starty - 1
                {
                    let relx = x - (xoff + 1);
                    let rely = y - (endy + 1);
                    if (relx / 2) % 2 != 0 && rely % 2 != 0 {
                        loop {
                            c = 1 + (rng.next() % 2) as u8;
                            if c != color {
                                break;
                            }
                        }
                        // Adjacent pixels of one window share its color.
                        if relx % 2 != 0 {
                            c = get(px, x - 1, y);
                        }
                    }
                }
                if x >= 0 && y >= 0 && x < w && y < h {
                    px[(y * w + x) as usize] = c;
                }
            }
            y -= 1;
        }
    };
    // Background skyscrapers without windows, lighter ones behind.
    for color in [2u8, 1] {
        let mut offset = -10i64;
        while offset < w {
            offset += rng.next() % 8;
            let width = 10 + rng.next() % 9;
            let height = if color == 2 {
                h / 2 + (rng.next() % h) / 2
            } else {
                h / 2 + (rng.next() % h) / 3
            };
            building(&mut px, &mut rng, offset, width, height, false, color);
            offset += if color == 2 { width / 2 } else { width + 1 };
        }
    }
    // Foreground skyscrapers with windows.
    let mut offset = -10i64;
    while offset < w {
        offset += rng.next() % 8;
        let mut width = 5 + rng.next() % 14;
        if width % 4 != 0 {
            width += width % 3;
        }
        let height = h / 3 + (rng.next() % h) / 2;
        building(&mut px, &mut rng, offset, width, height, true, 0);
        offset += width + 5;
    }
    let mut s = String::new();
    for y in 0..h {
        for x in 0..w {
            let ce = match get(&px, x, y) {
                1 => "0;90;100m",
                2 => "0;37;47m",
                3 => "0;97;107m",
                _ => "0;30;40m",
            };
            s.push_str("\x1b[");
            s.push_str(ce);
            s.push_str(" \x1b[0m");
        }
        if y != h - 1 {
            s.push('\n');
        }
    }
    s
}

/// A 1-bit canvas (Redis's lolwut.c `lwCanvas`).
struct Canvas {
    w: i64,
    h: i64,
    px: Vec<bool>,
}

impl Canvas {
    fn set(&mut self, x: i64, y: i64) {
        if x >= 0 && y >= 0 && x < self.w && y < self.h {
            self.px[(y * self.w + x) as usize] = true;
        }
    }

    fn get(&self, x: i64, y: i64) -> bool {
        x >= 0 && y >= 0 && x < self.w && y < self.h && self.px[(y * self.w + x) as usize]
    }

    /// Bresenham, as `lwDrawLine`.
    fn line(&mut self, mut x1: i64, mut y1: i64, x2: i64, y2: i64) {
        let (dx, dy) = ((x2 - x1).abs(), (y2 - y1).abs());
        let (sx, sy) = (if x1 < x2 { 1 } else { -1 }, if y1 < y2 { 1 } else { -1 });
        let mut err = dx - dy;
        loop {
            self.set(x1, y1);
            if x1 == x2 && y1 == y2 {
                break;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    /// `lwDrawSquare`: a square of side `size` centred at (x, y), rotated by `angle`.
    fn square(&mut self, x: i64, y: i64, size: f32, angle: f32) {
        let size = (size / std::f32::consts::SQRT_2).round() as f64;
        let mut k = std::f64::consts::FRAC_PI_4 + angle as f64;
        let mut p = [(0i64, 0i64); 4];
        for q in &mut p {
            *q = (
                (k.sin() * size + x as f64).round() as i64,
                (k.cos() * size + y as f64).round() as i64,
            );
            k += std::f64::consts::FRAC_PI_2;
        }
        for j in 0..4 {
            let (a, b) = (p[j], p[(j + 1) % 4]);
            self.line(a.0, a.1, b.0, b.1);
        }
    }

    /// Braille rendering, 2x4 pixels per character (`renderCanvas`).
    fn render(&self) -> String {
        let mut s = String::new();
        let mut y = 0;
        while y < self.h {
            let mut x = 0;
            while x < self.w {
                let bits = [
                    (x, y, 0),
                    (x, y + 1, 1),
                    (x, y + 2, 2),
                    (x + 1, y, 3),
                    (x + 1, y + 1, 4),
                    (x + 1, y + 2, 5),
                    (x, y + 3, 6),
                    (x + 1, y + 3, 7),
                ];
                let byte: u32 = bits
                    .iter()
                    .filter(|(px, py, _)| self.get(*px, *py))
                    .map(|(_, _, b)| 1 << b)
                    .sum();
                s.push(char::from_u32(0x2800 + byte).unwrap_or(' '));
                x += 2;
            }
            if y != self.h - 1 {
                s.push('\n');
            }
            y += 4;
        }
        s
    }
}

/// LOLWUT 5: Georg Nees's "Schotter" (`lwDrawSchotter`).
fn lolwut5(cols: usize, per_row: usize, per_col: usize, seed: u64) -> String {
    let mut rng = LwRand(seed);
    let mut rand01 = move || rng.next() as f64 / (1u64 << 31) as f64;
    let width = cols as i64 * 2;
    let padding = if width > 4 { 2 } else { 0 };
    let side = (width - padding * 2) as f32 / per_row as f32;
    let height = (side * per_col as f32) as i64 + padding * 2;
    let mut cv = Canvas {
        w: width,
        h: height,
        px: vec![false; (width * height).max(0) as usize],
    };
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0 + padding as f32) as i64;
            let mut sy = (y as f32 * side + side / 2.0 + padding as f32) as i64;
            let mut angle = 0f32;
            if y > 1 {
                let mut r = [0f32; 3];
                for v in &mut r {
                    *v = rand01() as f32 / per_col as f32 * y as f32;
                }
                for v in &mut r {
                    if rand01() < 0.5 {
                        *v = -*v;
                    }
                }
                angle = r[0];
                sx += (r[1] * side / 3.0) as i64;
                sy += (r[2] * side / 3.0) as i64;
            }
            cv.square(sx, sy, side, angle);
        }
    }
    cv.render()
}

// ------------------------------------------------------------------------------------------
// DEBUG
// ------------------------------------------------------------------------------------------

/// C's `strtod` on the longest numeric prefix (0 when there is none), as DEBUG SLEEP parses.
fn strtod_prefix(s: &[u8]) -> f64 {
    let s = std::str::from_utf8(s).unwrap_or("");
    let t = s.trim_start();
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i == digits_start || &t[digits_start..i] == "." {
        return 0.0;
    }
    let mut end = i;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let exp_start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_start {
            end = j;
        }
    }
    t[..end].parse().unwrap_or(0.0)
}

fn debug(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        let sub = &args[1];
        let n = args.len();
        if eq_ic(sub, "help") && n == 2 {
            reply_help(c, DEBUG_HELP);
        } else if eq_ic(sub, "sleep") && n == 3 {
            let secs = strtod_prefix(&args[2]);
            if secs > 0.0 && secs.is_finite() {
                let d = Duration::from_secs_f64(secs.min(1e9));
                tokio::time::sleep(d).await;
            }
            c.out.ok();
        } else if eq_ic(sub, "object") && n == 3 {
            debug_object(c, args[2].clone()).await;
        } else if eq_ic(sub, "populate") && (3..=5).contains(&n) {
            const MSG: &str = "ERR value is out of range, must be positive";
            let Some(count) = parse_i64(&args[2]).filter(|v| *v >= 0) else {
                c.out.error(MSG);
                return;
            };
            let size = if n == 5 {
                match parse_i64(&args[4]).filter(|v| *v >= 0) {
                    Some(v) => v as usize,
                    None => {
                        c.out.error(MSG);
                        return;
                    }
                }
            } else {
                0
            };
            // Redis first sizes its hash table for `count` keys and refuses counts it cannot
            // allocate; refuse counts that could never fit in this machine's memory.
            if (count as u64).saturating_mul(std::mem::size_of::<Entry>() as u64)
                > info::memory_stats().total_system.max(1 << 30)
            {
                c.out.error("ERR OOM in dictTryExpand");
                return;
            }
            let prefix = if n >= 4 {
                args[3].clone()
            } else {
                Bytes::from_static(b"key")
            };
            debug_populate(c, count as u64, prefix, size).await;
            c.out.ok();
        } else {
            super::subcommand_syntax_error(c, &args);
        }
    })
}

const DEBUG_HELP: &[&str] = &[
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to the",
    "    current node can be created in cluster mode.",
    "SLEEP <seconds>",
    "    Delay the reply to this connection by <seconds> (other clients are not",
    "    stopped). Decimals allowed.",
    "HELP",
    "    Prints this help.",
];

/// Bytes of an RDB length prefix.
fn rdb_len_bytes(n: usize) -> usize {
    if n < 64 {
        1
    } else if n < 16384 {
        2
    } else if n <= u32::MAX as usize {
        5
    } else {
        9
    }
}

/// The RDB payload size of a string value (`rdbSavedObjectLen`), without LZF compression.
fn serialized_len(e: &Entry) -> usize {
    let str_len = |n: usize| rdb_len_bytes(n) + n;
    match e.value() {
        ValueRef::Int(i) => {
            if i8::try_from(i).is_ok() {
                2
            } else if i16::try_from(i).is_ok() {
                3
            } else if i32::try_from(i).is_ok() {
                5
            } else {
                str_len(i.to_string().len())
            }
        }
        ValueRef::Str(s) => str_len(s.len()),
        ValueRef::Obj(o) => match o {
            damselfly_core::Object::Str(v) => str_len(v.len()),
        },
    }
}

async fn debug_object(c: &mut Conn, key: Bytes) {
    let sid = c.shard_of(&key);
    let db = c.db;
    let line = run_on(c, sid, move |sh| {
        let now = crate::shard::now_ms();
        let e = sh.lookup(db, &key, now)?;
        Some(format!(
            "Value at:{:p} refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:0",
            e as *const Entry,
            super::encoding_name(e),
            serialized_len(e),
            info::lru_clock()
        ))
    })
    .await
    .flatten();
    match line {
        Some(l) => c.out.simple(&l),
        None => c.out.error("ERR no such key"),
    }
}

/// Appends the decimal form of `v` without allocating.
fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// DEBUG POPULATE's key `prefix:j`, cut at 127 bytes as Redis's `snprintf` into 128 bytes.
pub fn populate_key(buf: &mut Vec<u8>, prefix: &[u8], j: u64) {
    buf.clear();
    buf.extend_from_slice(prefix);
    buf.push(b':');
    push_u64(buf, j);
    buf.truncate(127);
}

/// DEBUG POPULATE's value: `value:j`, or with `size > 0` exactly `size` bytes of it padded
/// with NUL bytes.
pub fn populate_value(buf: &mut Vec<u8>, j: u64, size: usize) {
    buf.clear();
    buf.extend_from_slice(b"value:");
    push_u64(buf, j);
    if size > 0 {
        buf.resize(size, 0);
    }
}

/// Keys per shard per round: bounds both the index lists in flight and how long one shard
/// message keeps its shard busy.
const POPULATE_ROUND_PER_SHARD: u64 = 1 << 16;

/// DEBUG POPULATE across shards, in rounds. Each round: every shard sorts a slice of the
/// round's key numbers by owning shard (in parallel), then every shard gets one message
/// with all of its key numbers and inserts the keys that do not exist yet.
async fn debug_populate(c: &mut Conn, count: u64, prefix: Bytes, size: usize) {
    let n = c.globals.nshards() as u64;
    let db = c.db;
    let round = POPULATE_ROUND_PER_SHARD * n;
    let mut start = 0u64;
    while start < count {
        let len = (count - start).min(round);
        let p = prefix.clone();
        // Phase 1: shard s partitions [start + s*len/n, start + (s+1)*len/n).
        let parts: Vec<Vec<Vec<u32>>> = run_on_all(c, move |sh| {
            let s = sh.id as u64;
            let (lo, hi) = (s * len / n, (s + 1) * len / n);
            let mut lists = vec![Vec::new(); n as usize];
            let mut key = Vec::with_capacity(p.len() + 21);
            for off in lo..hi {
                populate_key(&mut key, &p, start + off);
                lists[crate::conn::shard_of(&key, n as usize)].push(off as u32);
            }
            lists
        })
        .await;
        // Phase 2: one message per target shard with its offsets from every partition.
        let mut per_target: Vec<Vec<Vec<u32>>> = vec![Vec::new(); n as usize];
        for part in parts {
            for (t, list) in part.into_iter().enumerate() {
                if !list.is_empty() {
                    per_target[t].push(list);
                }
            }
        }
        let per_target = std::sync::Arc::new(per_target);
        let p = prefix.clone();
        run_on_all(c, move |sh| {
            let Some(lists) = per_target.get(sh.id) else {
                return;
            };
            let now = crate::shard::now_ms();
            let (mut key, mut val) = (Vec::new(), Vec::new());
            for list in lists {
                for &off in list {
                    let j = start + off as u64;
                    populate_key(&mut key, &p, j);
                    if sh.lookup(db, &key, now).is_some() {
                        continue;
                    }
                    populate_value(&mut val, j, size);
                    sh.store(db, Entry::new(&key, NewValue::Str(&val), None), now);
                }
            }
        })
        .await;
        start += len;
    }
    info::note_peak(info::memory_stats().allocated);
}

// ------------------------------------------------------------------------------------------
// MEMORY
// ------------------------------------------------------------------------------------------

/// Bytes a key costs beyond its 32-byte entry: its share of the table's index (about 4.6
/// bytes per key at average load, see damselfly_core::table).
const INDEX_BYTES_PER_KEY: usize = 5;

/// jemalloc's size class for an allocation of `n` bytes (small and large classes: four
/// classes per doubling above 64 bytes).
fn jemalloc_size_class(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    if n <= 8 {
        return 8;
    }
    if n <= 128 {
        return n.div_ceil(16) * 16;
    }
    let lg = usize::BITS - 1 - (n - 1).leading_zeros(); // floor(log2(n-1))
    let step = 1usize << (lg - 2);
    n.div_ceil(step) * step
}

/// MEMORY USAGE's estimate for one entry.
pub fn entry_usage(e: &Entry) -> usize {
    std::mem::size_of::<Entry>() + INDEX_BYTES_PER_KEY + jemalloc_size_class(e.heap_bytes())
}

fn memory_usage(ctx: &mut ShardCtx<'_>, args: &[Bytes]) {
    let mut j = 3;
    while j < args.len() {
        if eq_ic(&args[j], "samples") && j + 1 < args.len() {
            match parse_i64(&args[j + 1]) {
                None => {
                    ctx.r.error(NOT_INT);
                    return;
                }
                Some(v) if v < 0 => {
                    ctx.r.error(SYNTAX);
                    return;
                }
                Some(_) => {}
            }
            j += 2;
        } else {
            ctx.r.error(SYNTAX);
            return;
        }
    }
    match ctx.shard.lookup_read(ctx.db, &args[2], ctx.now) {
        Some(e) => {
            let n = entry_usage(e);
            ctx.r.int(n as i64)
        }
        None => ctx.r.null(),
    }
}

struct MemShard {
    dbs: Vec<(u64, u64)>,
}

fn memory_stats(c: &mut Conn, _args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        let parts = run_on_all(c, |sh| MemShard {
            dbs: sh
                .dbs
                .iter()
                .map(|t| (t.len() as u64, t.overhead_bytes() as u64))
                .collect(),
        })
        .await;
        let ndbs = parts.iter().map(|p| p.dbs.len()).max().unwrap_or(0);
        let mut dbs = vec![(0u64, 0u64); ndbs];
        for p in &parts {
            for (i, (k, o)) in p.dbs.iter().enumerate() {
                dbs[i].0 += k;
                dbs[i].1 += o;
            }
        }
        let m = info::memory_stats();
        let used = m.allocated;
        let peak = m.peak.max(used);
        let overhead: u64 = dbs.iter().map(|d| d.1).sum::<u64>().min(used);
        let keys: u64 = dbs.iter().map(|d| d.0).sum();
        let dataset = used - overhead;
        let nonempty: Vec<(usize, (u64, u64))> = dbs
            .into_iter()
            .enumerate()
            .filter(|(_, d)| d.0 > 0)
            .collect();
        let pct = |a: u64, b: u64| {
            if b == 0 {
                0.0
            } else {
                (a as f32 * 100.0 / b as f32) as f64
            }
        };
        let ratio = |a: u64, b: u64| {
            if b == 0 {
                0.0
            } else {
                (a as f32 / b as f32) as f64
            }
        };
        let r = &mut c.out;
        r.map(27 + nonempty.len());
        let kv = |r: &mut damselfly_resp::ReplyBuilder, k: &str, v: i64| {
            r.bulk(k.as_bytes());
            r.int(v);
        };
        let kd = |r: &mut damselfly_resp::ReplyBuilder, k: &str, v: f64| {
            r.bulk(k.as_bytes());
            r.double(v);
        };
        kv(r, "peak.allocated", peak as i64);
        kv(r, "total.allocated", used as i64);
        kv(r, "startup.allocated", 0);
        kv(r, "replication.backlog", 0);
        kv(r, "clients.slaves", 0);
        kv(r, "clients.normal", 0);
        kv(r, "cluster.links", 0);
        kv(r, "aof.buffer", 0);
        kv(r, "lua.caches", 0);
        kv(r, "functions.caches", 0);
        for (i, (_, o)) in &nonempty {
            r.bulk(format!("db.{i}").as_bytes());
            r.map(3);
            kv(r, "overhead.hashtable.main", *o as i64);
            kv(r, "overhead.hashtable.expires", 0);
            kv(r, "overhead.hashtable.slot-to-keys", 0);
        }
        kv(r, "overhead.total", overhead as i64);
        kv(r, "keys.count", keys as i64);
        kv(
            r,
            "keys.bytes-per-key",
            used.checked_div(keys).unwrap_or(0) as i64,
        );
        kv(r, "dataset.bytes", dataset as i64);
        kd(r, "dataset.percentage", pct(dataset, used));
        kd(r, "peak.percentage", pct(used, peak));
        kv(r, "allocator.allocated", m.allocated as i64);
        kv(r, "allocator.active", m.active as i64);
        kv(r, "allocator.resident", m.resident as i64);
        kd(
            r,
            "allocator-fragmentation.ratio",
            ratio(m.active, m.allocated),
        );
        kv(
            r,
            "allocator-fragmentation.bytes",
            m.active as i64 - m.allocated as i64,
        );
        kd(r, "allocator-rss.ratio", ratio(m.resident, m.active));
        kv(
            r,
            "allocator-rss.bytes",
            m.resident as i64 - m.active as i64,
        );
        kd(r, "rss-overhead.ratio", ratio(m.rss, m.resident));
        kv(r, "rss-overhead.bytes", m.rss as i64 - m.resident as i64);
        kd(r, "fragmentation", ratio(m.rss, used));
        kv(r, "fragmentation.bytes", m.rss as i64 - used as i64);
    })
}

fn memory_doctor(c: &mut Conn, _args: &[Bytes]) {
    let m = info::memory_stats();
    let used = m.allocated;
    let mut text = String::new();
    if used < 5 * 1024 * 1024 {
        text.push_str("Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n");
    } else {
        let big_peak = m.peak as f64 > used as f64 * 1.5;
        let high_frag = used > 0 && m.rss as f64 / used as f64 > 1.4;
        if !big_peak && !high_frag {
            text.push_str("Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n");
        } else {
            text.push_str(
                "Sam, I detected a few issues in this Redis instance memory implants:\n\n",
            );
            if big_peak {
                text.push_str(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n");
            }
            if high_frag {
                text.push_str(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"jemalloc-5.3.0\".\n\n");
            }
            text.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
        }
    }
    c.out.verbatim(text.as_bytes());
}

fn memory_malloc_stats(c: &mut Conn, _args: &[Bytes]) {
    use tikv_jemalloc_ctl::{epoch, stats, version};
    let _ = epoch::advance();
    let v = |r: tikv_jemalloc_ctl::Result<usize>| r.map(|x| x as i64).unwrap_or(-1);
    let text = format!(
        "___ Begin jemalloc statistics ___\nVersion: \"{}\"\nAllocated: {}, active: {}, metadata: {}, resident: {}, mapped: {}, retained: {}\n--- End jemalloc statistics ---\n",
        version::read().unwrap_or("unknown").trim_end_matches(char::from(0)),
        v(stats::allocated::read()),
        v(stats::active::read()),
        v(stats::metadata::read()),
        v(stats::resident::read()),
        v(stats::mapped::read()),
        v(stats::retained::read()),
    );
    c.out.verbatim(text.as_bytes());
}

fn memory_purge(c: &mut Conn, _args: &[Bytes]) {
    c.out.ok();
}

fn memory_help(c: &mut Conn, _args: &[Bytes]) {
    reply_help(
        c,
        &[
            "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
            "HELP",
            "    Prints this help.",
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::build_table;

    fn argv(s: &str) -> Vec<Bytes> {
        s.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn populate_format() {
        let (mut k, mut v) = (Vec::new(), Vec::new());
        populate_key(&mut k, b"key", 0);
        assert_eq!(k, b"key:0");
        populate_key(&mut k, b"p", 12345);
        assert_eq!(k, b"p:12345");
        populate_key(&mut k, b"p", u64::MAX);
        assert_eq!(k, b"p:18446744073709551615");
        populate_key(&mut k, b"p", 12345);
        assert_eq!(k, b"p:12345");
        populate_key(&mut k, &[b'x'; 200], 7);
        assert_eq!(k.len(), 127);
        populate_value(&mut v, 3, 0);
        assert_eq!(v, b"value:3");
        populate_value(&mut v, 0, 10);
        assert_eq!(v, b"value:0\0\0\0");
        populate_value(&mut v, 123, 3);
        assert_eq!(v, b"val");
    }

    #[test]
    fn config_get_map() {
        use damselfly_resp::{Protocol, ReplyBuilder};
        let mut cfg = crate::config::Config::defaults();
        cfg.config_set(b"maxmemory-policy", b"allkeys-lru").unwrap();
        let get = |proto, pats: &[&[u8]]| {
            let mut r = ReplyBuilder::new(proto);
            config_get_reply(&cfg, pats, &mut r);
            String::from_utf8(r.buf).unwrap()
        };
        assert_eq!(
            get(Protocol::Resp2, &[b"maxmemory-policy"]),
            "*2\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lru\r\n"
        );
        assert_eq!(
            get(Protocol::Resp3, &[b"MAXMEMORY-POLICY"]),
            "%1\r\n$16\r\nMAXMEMORY-POLICY\r\n$11\r\nallkeys-lru\r\n"
        );
        assert_eq!(get(Protocol::Resp3, &[b"nosuch"]), "%0\r\n");
        assert_eq!(get(Protocol::Resp2, &[b"nosuch"]), "*0\r\n");
        // A glob and a duplicate name: each option once.
        let r = get(Protocol::Resp3, &[b"maxmemory*", b"maxmemory"]);
        assert!(r.starts_with("%5\r\n"), "{r}");
        assert_eq!(r.matches("$9\r\nmaxmemory\r\n").count(), 1);
        let r = get(Protocol::Resp2, &[b"databases", b"slaveof"]);
        assert_eq!(
            r,
            "*4\r\n$9\r\ndatabases\r\n$2\r\n16\r\n$7\r\nslaveof\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn strtod() {
        assert_eq!(strtod_prefix(b"0"), 0.0);
        assert_eq!(strtod_prefix(b"0.25"), 0.25);
        assert_eq!(strtod_prefix(b"1.5xyz"), 1.5);
        assert_eq!(strtod_prefix(b"x"), 0.0);
        assert_eq!(strtod_prefix(b"-1"), -1.0);
        assert_eq!(strtod_prefix(b" 2e-1"), 0.2);
        assert_eq!(strtod_prefix(b"3e"), 3.0);
        assert_eq!(strtod_prefix(b"."), 0.0);
    }

    #[test]
    fn size_classes() {
        assert_eq!(jemalloc_size_class(0), 0);
        assert_eq!(jemalloc_size_class(1), 8);
        assert_eq!(jemalloc_size_class(9), 16);
        assert_eq!(jemalloc_size_class(100), 112);
        assert_eq!(jemalloc_size_class(129), 160);
        assert_eq!(jemalloc_size_class(160), 160);
        assert_eq!(jemalloc_size_class(161), 192);
        assert_eq!(jemalloc_size_class(1000), 1024);
        assert_eq!(jemalloc_size_class(1025), 1280);
    }

    #[test]
    fn serialized_lengths() {
        let e = Entry::new(b"k", NewValue::Int(12345), None);
        assert_eq!(serialized_len(&e), 3);
        let e = Entry::new(b"k", NewValue::Int(5), None);
        assert_eq!(serialized_len(&e), 2);
        let e = Entry::new(b"k", NewValue::Str(b"hello"), None);
        assert_eq!(serialized_len(&e), 6);
        let e = Entry::new(b"k", NewValue::Str(&[b'a'; 100]), None);
        assert_eq!(serialized_len(&e), 102);
    }

    #[test]
    fn key_specs_match_redis() {
        let t = build_table();
        let ks = |line: &str| {
            let a = argv(line);
            let m = meta::lookup(std::str::from_utf8(&a[0]).unwrap()).unwrap();
            keys_from_specs(&m.info, &a).map(|v| v.iter().map(|k| k.pos).collect::<Vec<_>>())
        };
        assert_eq!(ks("get k"), Some(vec![1]));
        assert_eq!(ks("mset a 1 b 2"), Some(vec![1, 3]));
        assert_eq!(ks("zunionstore d 2 a b"), Some(vec![1, 3, 4]));
        assert_eq!(ks("zunionstore d 3 a b"), None);
        assert_eq!(ks("xread count 2 streams a b 1 2"), Some(vec![4, 5]));
        assert_eq!(ks("eval s 2 a b c"), Some(vec![3, 4]));
        assert_eq!(ks("blpop a b 0"), Some(vec![1, 2]));
        // For every command of our table without movable keys, the key specs and the legacy
        // range agree on a generic call.
        for cmd in t.iter().chain(t.iter().flat_map(|c| c.subs.values())) {
            if cmd.meta.movable_keys || cmd.keys.is_some() || !has_key_specs(&cmd.meta.info) {
                continue;
            }
            let n = if cmd.arity < 0 {
                (-cmd.arity) as usize + 2
            } else {
                cmd.arity as usize
            };
            let mut a: Vec<Bytes> = cmd
                .name
                .split('|')
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect();
            while a.len() < n {
                a.push(Bytes::from(format!("a{}", a.len())));
            }
            if !arity_ok(cmd.arity, a.len()) {
                continue;
            }
            let spec = keys_from_specs(&cmd.meta.info, &a)
                .map(|v| v.into_iter().map(|k| k.pos).collect::<Vec<_>>());
            if let Some(spec) = spec {
                assert_eq!(spec, cmd.key_positions(&a), "{}", cmd.name);
            }
        }
    }

    #[test]
    fn command_values_limit_subcommands_to_ours() {
        let t = build_table();
        let client = t.get("client").unwrap();
        let info = info_value(client);
        let nested: Vec<&str> = info.items()[9]
            .items()
            .iter()
            .map(|s| s.items()[0].as_str().unwrap())
            .collect();
        let mut ours: Vec<&str> = client.subs.values().map(|s| s.name).collect();
        ours.sort();
        assert_eq!(nested, ours);
        let docs = docs_value(client);
        let subs = docs.get("subcommands").unwrap();
        if let MetaValue::Map(p) = subs {
            assert_eq!(p.len(), ours.len());
        } else {
            panic!("subcommands is not a map");
        }
        // A plain command is Redis's entry as is.
        let get = t.get("get").unwrap();
        assert!(matches!(info_value(get), Cow::Borrowed(_)));
        assert!(find_command(&t, b"CONFIG|GET").is_some());
        assert!(find_command(&t, b"config|nosuch").is_none());
        assert!(find_command(&t, b"nosuch").is_none());
    }

    #[test]
    fn config_file_quoting() {
        assert_eq!(conf_quote("abc"), "abc");
        assert_eq!(conf_quote(""), "\"\"");
        assert_eq!(conf_quote("a b"), "\"a b\"");
        assert_eq!(conf_quote("a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn config_rewrite_round_trip() {
        let dir = std::env::temp_dir().join(format!("damselfly-rewrite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("redis.conf");
        std::fs::write(
            &path,
            "# my config\nport 7000\nmaxmemory-policy allkeys-lru\nunknown-directive x\nmaxmemory-policy volatile-lru\n",
        )
        .unwrap();
        let mut cfg = crate::config::Config::defaults();
        cfg.set("port", "7000").unwrap();
        cfg.config_set(b"maxmemory-policy", b"allkeys-lfu").unwrap();
        cfg.config_set(b"requirepass", b"a b").unwrap();
        cfg.config_set(b"save", b"900 1 300 10").unwrap();
        rewrite_config_file(path.to_str().unwrap(), &cfg).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "# my config\nport 7000\nmaxmemory-policy allkeys-lfu\nunknown-directive x\n# Generated by CONFIG REWRITE\nrequirepass \"a b\"\nsave 900 1\nsave 300 10\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn config_set_unknown_name_shown_as_c_string() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b"hz", b"10"), (b"\xff\xfe\0x", b"1")];
        let e = "ERR Unknown option or number of arguments for CONFIG SET - '\u{fffd}\u{fffd}\0x'";
        assert_eq!(
            unknown_option_error(e, &pairs).as_deref(),
            Some(&b"ERR Unknown option or number of arguments for CONFIG SET - '\xff\xfe'"[..])
        );
        let e = "ERR CONFIG SET failed (possibly related to argument 'hz') - x";
        assert_eq!(unknown_option_error(e, &pairs), None);
    }

    #[test]
    fn config_set_values_as_c_strings() {
        let v = |n: &str, x: &[u8]| config_value_as_c(n.as_bytes(), x).into_owned();
        assert_eq!(v("activerehashing", b"yes\0x"), b"yes");
        assert_eq!(v("maxmemory-policy", b"allkeys-lru\0x"), b"allkeys-lru");
        assert_eq!(v("notify-keyspace-events", b"K\0x"), b"K");
        assert_eq!(v("maxmemory", b"1mb\0x"), b"1mb");
        assert_eq!(v("save", b"3600\0x 1"), b"3600 1");
        assert_eq!(v("save", b"3600 1"), b"3600 1");
        // Integers (string2ll with the length) and free text keep every byte.
        assert_eq!(v("hz", b"10\0x"), b"10\0x");
        assert_eq!(v("masteruser", b"a\0b"), b"a\0b");
        assert_eq!(v("nosuchoption", b"a\0b"), b"a\0b");
    }

    #[test]
    fn bitfield_key_flags_as_redis() {
        let t = build_table();
        let cmd = t.get("bitfield").unwrap();
        let f = |s: &str| variable_key_flags(cmd, &argv(s)).unwrap().join(" ");
        for ro in [
            "bitfield k",
            "bitfield k GET u8 0",
            "bitfield k OVERFLOW WRAP GET u8 0 get i4 3",
            "bitfield k get\0x u8 0",
        ] {
            assert_eq!(f(ro), "RO access", "{ro:?}");
        }
        for rw in [
            "bitfield k ",
            "bitfield k GET u8",
            "bitfield k GET u8 0 OVERFLOW",
            "bitfield k GET u8 0 foo",
            "bitfield k INCRBY u8 0",
            "bitfield k SET u8 0 1",
        ] {
            assert_eq!(f(rw), "RW access update", "{rw}");
        }
        let set = t.get("set").unwrap();
        let f = |s: &str| variable_key_flags(set, &argv(s)).unwrap().join(" ");
        assert_eq!(f("set k v get\0x"), "RW access update");
        assert_eq!(f("set k v ge"), "OW update");
    }

    #[test]
    fn lolwut_schotter_shape() {
        let art = lolwut5(66, 8, 12, 42);
        // Like Redis, a last row that is not the canvas's last pixel row ends with '\n'.
        let lines: Vec<&str> = art.trim_end_matches('\n').split('\n').collect();
        assert!(lines.len() > 10);
        assert!(lines.iter().all(|l| l.chars().count() == 66));
        assert!(art
            .chars()
            .all(|ch| ch == '\n' || ('\u{2800}'..='\u{28ff}').contains(&ch)));
        let city = lolwut6(80, 20, 7);
        assert_eq!(city.split('\n').count(), 20);
        assert_eq!(city.matches("\x1b[0m").count(), 80 * 20);
        let tiny = lolwut5(1, 1, 1, 42);
        assert_eq!(tiny.chars().count(), 2); // one braille cell and the trailing newline
    }
}

/// `keys_from_specs` against a live redis-server 7.0.15's COMMAND GETKEYS (skipped when no
/// redis-server is on PATH): the evaluator must agree with Redis for every command line where
/// it returns keys, including commands other engineers have not added to the table yet.
#[cfg(test)]
mod live_tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Command as Proc, Stdio};
    use std::time::{Duration, Instant};

    fn call(s: &mut TcpStream, args: &[&str]) -> Vec<u8> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend(format!("${}\r\n{}\r\n", a.len(), a).into_bytes());
        }
        s.write_all(&req).unwrap();
        let mut buf = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if complete(&buf) {
                return buf;
            }
            assert!(Instant::now() < deadline, "no reply to {args:?}");
            let mut tmp = [0u8; 4096];
            let n = s.read(&mut tmp).unwrap();
            assert!(n > 0);
            buf.extend_from_slice(&tmp[..n]);
        }
    }

    /// An error line, or an array of bulk strings, fully received.
    fn complete(b: &[u8]) -> bool {
        let lines: Vec<&[u8]> = b.split(|&c| c == b'\n').collect();
        if b.is_empty() || !b.ends_with(b"\r\n") {
            return false;
        }
        if b[0] == b'-' {
            return true;
        }
        let n: usize = std::str::from_utf8(&lines[0][1..lines[0].len() - 1])
            .unwrap()
            .parse()
            .unwrap();
        lines.len() > 2 * n
    }

    fn keys_reply(keys: &[&str]) -> Vec<u8> {
        let mut r = format!("*{}\r\n", keys.len()).into_bytes();
        for k in keys {
            r.extend(format!("${}\r\n{}\r\n", k.len(), k).into_bytes());
        }
        r
    }

    #[test]
    fn key_specs_agree_with_redis_getkeys() {
        let Some(bin) = std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("redis-server"))
                .find(|f| f.is_file())
        }) else {
            eprintln!("redis-server not on PATH: skipping");
            return;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("damselfly-keyspecs-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Proc::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--dir", dir.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let mut s = loop {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(20));
        };
        let lines = [
            "GET k",
            "SET k v EX 10",
            "MSET a 1 b 2 c 3",
            "MGET a b c",
            "DEL a b c",
            "RENAME a b",
            "BLPOP a b c 0",
            "BRPOPLPUSH a b 0",
            "LMOVE a b LEFT RIGHT",
            "SMOVE a b m",
            "BITOP AND d a b c",
            "COPY a b",
            "LCS a b",
            "XREAD COUNT 2 STREAMS a b 0 0",
            "XREADGROUP GROUP g c COUNT 1 STREAMS a b > >",
            "ZUNIONSTORE d 2 a b WEIGHTS 1 2",
            "ZUNION 2 a b",
            "ZINTERCARD 2 a b",
            "SINTERCARD 2 a b LIMIT 1",
            "EVAL s 2 a b x",
            "FCALL f 1 a x",
            "LMPOP 2 a b LEFT",
            "BLMPOP 0 2 a b LEFT COUNT 2",
            "BZMPOP 0 2 a b MIN",
            "OBJECT ENCODING k",
            "MEMORY USAGE k",
            "XINFO STREAM s",
            "PFMERGE d a b",
            "SUNIONSTORE d a b",
            "GEOSEARCHSTORE d s FROMMEMBER m BYRADIUS 1 m",
            "XADD s * f v",
            "EXISTS a b",
            "MSETNX a 1 b 2",
            "ZRANGESTORE d s 0 -1",
            "SORT_RO s",
            "GETEX k PERSIST",
            "RPOPLPUSH a b",
            "XGROUP CREATE s g $",
            "WATCH a b",
        ];
        let mut compared = 0;
        for line in lines {
            let argv: Vec<Bytes> = line
                .split(' ')
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect();
            let m = meta::lookup(&line.split(' ').next().unwrap().to_ascii_lowercase()).unwrap();
            let m = if m.subcommands.is_empty() {
                m
            } else {
                let full = format!(
                    "{}|{}",
                    line.split(' ').next().unwrap(),
                    line.split(' ').nth(1).unwrap()
                );
                meta::lookup(&full).unwrap()
            };
            let Some(keys) = keys_from_specs(&m.info, &argv) else {
                continue;
            };
            let names: Vec<&str> = keys
                .iter()
                .map(|k| std::str::from_utf8(&argv[k.pos]).unwrap())
                .collect();
            let mut req = vec!["COMMAND", "GETKEYS"];
            req.extend(line.split(' '));
            let live = call(&mut s, &req);
            assert_eq!(
                String::from_utf8_lossy(&live),
                String::from_utf8_lossy(&keys_reply(&names)),
                "{line}"
            );
            compared += 1;
        }
        assert!(compared >= 30, "only {compared} lines compared");
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
