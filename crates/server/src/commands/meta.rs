//! The command table's metadata, taken verbatim from Redis 7.0.15.
//!
//! Why the data comes from Redis: COMMAND, COMMAND INFO, COMMAND DOCS, COMMAND COUNT and
//! COMMAND LIST must answer byte for byte what Redis 7.0.15 answers, and that is thousands of
//! strings (summaries, argument trees, key specs, history) that nobody should retype. So
//! `scripts/gen_command_meta.py` asks a real redis-server 7.0.15 for `COMMAND INFO` and
//! `COMMAND DOCS` of every command over RESP3 and stores the raw reply bytes in
//! `meta_redis_7_0_15.resp` next to this file; this module embeds that file, parses it once
//! (on first use) and hands out [`CommandMeta`]s. The dispatcher takes each command's arity,
//! flags and key positions from the same data, so there is one source of truth, like the
//! command table Redis generates from its JSON files: what COMMAND INFO reports is what the
//! dispatcher enforces.
//!
//! Invariant: `meta_redis_7_0_15.resp` is generated, never edited by hand. To change it, rerun
//! `python3 scripts/gen_command_meta.py` (`--check` tells whether it is current).
//!
//! File format: two RESP3 values back to back: the reply to `COMMAND INFO <all top-level
//! names, sorted>` (an array of 10-element entries; subcommands are nested in the 10th
//! element) followed by the reply to `COMMAND DOCS <same names>` (a map name -> docs map;
//! a container's docs hold its subcommands' docs under the `"subcommands"` key, keyed
//! `"container|sub"`). The only liberty the script takes is ordering: Redis lists a
//! container's subcommands in the order of a randomly seeded dict (it changes at every server
//! start), and the script sorts them by name. Each element's bytes are Redis's.
//!
//! Replies: [`emit`] writes a [`MetaValue`] through the [`ReplyBuilder`], so the same data
//! serves RESP2 (maps and sets flatten to arrays, as Redis does) and RESP3. Verified byte
//! for byte against a live redis-server 7.0.15 in both protocols, for every command and
//! subcommand:
//! * `COMMAND INFO <name>` == `*1` + `emit(info)` (for a container, equal up to the order of
//!   the nested subcommands, which is random in Redis itself);
//! * `COMMAND DOCS <name>` == a map of one entry: bulk `name` -> `emit(docs)`. For a
//!   subcommand, `COMMAND DOCS client|kill` answers `{"client|kill": <docs>}` at top level,
//!   and `<docs>` is the same map that `COMMAND DOCS client` nests under
//!   `"subcommands"` -> `"client|kill"`; [`CommandMeta::docs`] of a subcommand is that map.

use std::collections::HashMap;
use std::sync::OnceLock;

use damselfly_resp::ReplyBuilder;

/// The generated data; see the module doc.
static DATA: &[u8] = include_bytes!("meta_redis_7_0_15.resp");

/// One RESP3 value of the metadata, kept with its wire type so it can be re-emitted exactly.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    /// `+...`
    Simple(String),
    /// `$...`
    Bulk(Vec<u8>),
    /// `:...`
    Int(i64),
    /// `*...`
    Array(Vec<MetaValue>),
    /// `~...`
    Set(Vec<MetaValue>),
    /// `%...`, pairs in wire order.
    Map(Vec<(MetaValue, MetaValue)>),
    /// `_` (not present in the 7.0.15 data, accepted for robustness).
    Null,
}

impl MetaValue {
    /// The text of a simple or bulk string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            MetaValue::Simple(s) => Some(s.as_bytes()),
            MetaValue::Bulk(b) => Some(b),
            _ => None,
        }
    }

    /// The text of a simple or bulk string, if UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            MetaValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The elements of an array or set; empty for anything else.
    pub fn items(&self) -> &[MetaValue] {
        match self {
            MetaValue::Array(v) | MetaValue::Set(v) => v,
            _ => &[],
        }
    }

    /// The value under string key `key` of a map.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        match self {
            MetaValue::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| k.as_bytes() == Some(key.as_bytes()))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// One command (or subcommand) as Redis 7.0.15 describes it.
#[derive(Clone, Debug)]
pub struct CommandMeta {
    /// Lowercase; subcommands as `"client|kill"`.
    pub name: String,
    /// Redis arity: `n` means exactly n arguments (name included), `-n` at least n.
    pub arity: i64,
    /// e.g. `"write"`, `"denyoom"`, `"fast"`.
    pub flags: Vec<String>,
    /// Legacy key range as COMMAND INFO reports it: absolute argv indices, `last_key < 0`
    /// counts from the end; all 0 when the command takes no keys. See [`key_positions`].
    pub first_key: i64,
    pub last_key: i64,
    pub step: i64,
    /// e.g. `"@string"`.
    pub acl_categories: Vec<String>,
    /// The full COMMAND INFO entry (10 elements; a container's nests its subcommands').
    pub info: MetaValue,
    /// This command's value in COMMAND DOCS (a map). For a subcommand, the map its container's
    /// docs nest under `"subcommands"`, which is also what `COMMAND DOCS container|sub` gives.
    pub docs: Option<MetaValue>,
    /// Sorted by name; empty for non-containers.
    pub subcommands: Vec<CommandMeta>,
    /// The `movablekeys` flag: keys are not (only) where first/last/step say.
    pub movable_keys: bool,
}

impl CommandMeta {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Whether `argc` arguments (command name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// The subcommand `full_name` (`"container|sub"`, lowercase) of this container.
    pub fn subcommand(&self, full_name: &str) -> Option<&CommandMeta> {
        self.subcommands
            .binary_search_by(|s| s.name.as_str().cmp(full_name))
            .ok()
            .map(|i| &self.subcommands[i])
    }
}

struct Table {
    commands: Vec<CommandMeta>,
    by_name: HashMap<String, usize>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| build_table(DATA))
}

/// Top-level commands, sorted by name (`all().len()` is COMMAND COUNT).
pub fn all() -> &'static [CommandMeta] {
    &table().commands
}

/// A command by name (`"get"`) or a subcommand by `"container|sub"`. ASCII case-insensitive;
/// lowercase names take the allocation-free path.
pub fn lookup(name: &str) -> Option<&'static CommandMeta> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return lookup_lower(&name.to_ascii_lowercase());
    }
    lookup_lower(name)
}

/// [`lookup`] for a name straight from argv.
pub fn lookup_bytes(name: &[u8]) -> Option<&'static CommandMeta> {
    std::str::from_utf8(name).ok().and_then(lookup)
}

fn lookup_lower(name: &str) -> Option<&'static CommandMeta> {
    let t = table();
    match name.split_once('|') {
        None => t.by_name.get(name).map(|&i| &t.commands[i]),
        Some((container, _)) => {
            let c = &t.commands[*t.by_name.get(container)?];
            c.subcommand(name)
        }
    }
}

/// Writes `v` with the builder: Map -> `r.map(n)`, Set -> `r.set(n)`, Array -> `r.array(n)`,
/// Simple -> `r.simple`, Bulk -> `r.bulk`, Int -> `r.int`, Null -> `r.null()`. In RESP2 the
/// builder flattens maps and sets to arrays, which is what Redis sends.
pub fn emit(v: &MetaValue, r: &mut ReplyBuilder) {
    match v {
        MetaValue::Simple(s) => r.simple(s),
        MetaValue::Bulk(b) => r.bulk(b),
        MetaValue::Int(i) => r.int(*i),
        MetaValue::Null => r.null(),
        MetaValue::Array(items) => {
            r.array(items.len());
            items.iter().for_each(|x| emit(x, r));
        }
        MetaValue::Set(items) => {
            r.set(items.len());
            items.iter().for_each(|x| emit(x, r));
        }
        MetaValue::Map(pairs) => {
            r.map(pairs.len());
            for (k, x) in pairs {
                emit(k, r);
                emit(x, r);
            }
        }
    }
}

/// The argv indices of the keys by the legacy first/last/step range, like Redis's
/// `getKeysUsingLegacyRangeSpec`: `last_key < 0` counts from the end (`-1` is the last
/// argument). `argc` counts the command name. No range (first_key 0) gives no keys; so does
/// an `argc` the range does not fit (Redis returns no keys there for variadic commands and
/// leaves the arity error to the command). Commands with [`CommandMeta::movable_keys`] may
/// have keys elsewhere too (or only elsewhere); those need command-specific extraction.
pub fn key_positions(meta: &CommandMeta, argc: usize) -> Vec<usize> {
    let first = meta.first_key;
    if first <= 0 {
        return Vec::new();
    }
    let argc = argc as i64;
    let last = if meta.last_key < 0 {
        argc + meta.last_key
    } else {
        meta.last_key
    };
    let step = meta.step.max(1);
    let mut keys = Vec::new();
    let mut j = first;
    while j <= last {
        if j >= argc {
            return Vec::new();
        }
        keys.push(j as usize);
        j += step;
    }
    keys
}

// ------------------------------------------------------------------------------------------
// Building the table
// ------------------------------------------------------------------------------------------

fn build_table(data: &[u8]) -> Table {
    let mut p = Reader { buf: data, pos: 0 };
    let info = p.value();
    let docs = p.value();
    assert_eq!(
        p.pos,
        data.len(),
        "command meta: trailing bytes after two RESP3 values"
    );
    let MetaValue::Array(entries) = info else {
        panic!("command meta: COMMAND INFO reply is not an array")
    };
    let MetaValue::Map(docs) = docs else {
        panic!("command meta: COMMAND DOCS reply is not a map")
    };
    let docs: HashMap<Vec<u8>, MetaValue> = docs
        .into_iter()
        .map(|(k, v)| (k.as_bytes().expect("docs key").to_vec(), v))
        .collect();
    let mut commands: Vec<CommandMeta> = entries
        .into_iter()
        .map(|e| {
            let name = e
                .items()
                .first()
                .and_then(|n| n.as_bytes())
                .unwrap_or_default();
            let d = docs.get(name).cloned();
            command_from_info(e, d)
        })
        .collect();
    commands.sort_by(|a, b| a.name.cmp(&b.name));
    let by_name = commands
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), i))
        .collect();
    Table { commands, by_name }
}

fn strings(v: &MetaValue) -> Vec<String> {
    v.items()
        .iter()
        .map(|x| x.as_str().expect("command meta: string").to_owned())
        .collect()
}

fn command_from_info(info: MetaValue, docs: Option<MetaValue>) -> CommandMeta {
    let f = info.items();
    assert_eq!(
        f.len(),
        10,
        "command meta: COMMAND INFO entry has {} elements",
        f.len()
    );
    let int = |i: usize| f[i].as_int().expect("command meta: integer field");
    let name = f[0].as_str().expect("command meta: name").to_owned();
    let flags = strings(&f[2]);
    let sub_docs = docs.as_ref().and_then(|d| d.get("subcommands"));
    let mut subcommands: Vec<CommandMeta> = f[9]
        .items()
        .iter()
        .map(|s| {
            let sname = s
                .items()
                .first()
                .and_then(|n| n.as_bytes())
                .unwrap_or_default();
            let d = sub_docs
                .and_then(|m| m.get(std::str::from_utf8(sname).ok()?))
                .cloned();
            command_from_info(s.clone(), d)
        })
        .collect();
    subcommands.sort_by(|a, b| a.name.cmp(&b.name));
    CommandMeta {
        arity: int(1),
        movable_keys: flags.iter().any(|x| x == "movablekeys"),
        flags,
        first_key: int(3),
        last_key: int(4),
        step: int(5),
        acl_categories: strings(&f[6]),
        name,
        docs,
        subcommands,
        info,
    }
}

/// A RESP3 reader for the generated file (trusted input: malformed data panics, and the unit
/// tests parse it).
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn line(&mut self) -> &[u8] {
        let rest = &self.buf[self.pos..];
        let n = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("command meta: unterminated line");
        self.pos += n + 2;
        &rest[..n]
    }

    fn len(&mut self) -> usize {
        let l = self.line();
        std::str::from_utf8(l)
            .ok()
            .and_then(|s| s.parse().ok())
            .expect("command meta: length")
    }

    fn value(&mut self) -> MetaValue {
        let kind = self.buf[self.pos];
        self.pos += 1;
        match kind {
            b'+' => MetaValue::Simple(
                String::from_utf8(self.line().to_vec()).expect("command meta: simple string"),
            ),
            b':' => MetaValue::Int(
                std::str::from_utf8(self.line())
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .expect("command meta: integer"),
            ),
            b'_' => {
                self.line();
                MetaValue::Null
            }
            b'$' => {
                let n = self.len();
                let b = self.buf[self.pos..self.pos + n].to_vec();
                assert_eq!(&self.buf[self.pos + n..self.pos + n + 2], b"\r\n");
                self.pos += n + 2;
                MetaValue::Bulk(b)
            }
            b'*' => {
                let n = self.len();
                MetaValue::Array((0..n).map(|_| self.value()).collect())
            }
            b'~' => {
                let n = self.len();
                MetaValue::Set((0..n).map(|_| self.value()).collect())
            }
            b'%' => {
                let n = self.len();
                MetaValue::Map((0..n).map(|_| (self.value(), self.value())).collect())
            }
            other => panic!("command meta: unexpected RESP3 type {:?}", other as char),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use damselfly_resp::Protocol;

    fn render(v: &MetaValue, proto: Protocol) -> Vec<u8> {
        let mut r = ReplyBuilder::new(proto);
        emit(v, &mut r);
        r.buf
    }

    #[test]
    fn data_parses_and_round_trips() {
        let t = table();
        assert_eq!(t.commands.len(), 240, "COMMAND COUNT of redis 7.0.15");
        let subs: usize = all().iter().map(|c| c.subcommands.len()).sum();
        assert_eq!(subs, 126);
        // Re-emitting every INFO entry in RESP3 reproduces the file's first value exactly.
        let mut r = ReplyBuilder::new(Protocol::Resp3);
        r.array(all().len());
        for c in all() {
            emit(&c.info, &mut r);
        }
        // ...and the docs of every command, as a map, reproduce the second value.
        let info_len = r.buf.len();
        r.map(all().len());
        for c in all() {
            r.bulk(c.name.as_bytes());
            emit(c.docs.as_ref().unwrap(), &mut r);
        }
        assert_eq!(&r.buf[..], DATA, "first {info_len} bytes are COMMAND INFO");
        for c in all()
            .iter()
            .chain(all().iter().flat_map(|c| c.subcommands.iter()))
        {
            assert!(c.docs.is_some(), "{} has docs", c.name);
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(
                c.first_key > 0 || (c.last_key == 0 && c.step == 0),
                "{}",
                c.name
            );
            assert!(c.first_key == 0 || c.step > 0, "{}", c.name);
        }
        assert!(all().windows(2).all(|w| w[0].name < w[1].name));
    }

    #[test]
    fn fields() {
        let get = lookup("get").unwrap();
        assert_eq!(
            (get.arity, get.first_key, get.last_key, get.step),
            (2, 1, 1, 1)
        );
        assert_eq!(get.flags, ["readonly", "fast"]);
        assert_eq!(get.acl_categories, ["@read", "@string", "@fast"]);
        assert!(!get.movable_keys);
        assert_eq!(
            get.docs.as_ref().unwrap().get("summary").unwrap().as_str(),
            Some("Get the value of a key")
        );
        let set = lookup("SET").unwrap();
        assert!(set.has_flag("write") && set.has_flag("denyoom"));
        assert!(lookup("zunionstore").unwrap().movable_keys);
        let kill = lookup("client|kill").unwrap();
        assert_eq!(kill.name, "client|kill");
        assert_eq!(kill.arity, -3);
        assert!(kill.docs.as_ref().unwrap().get("history").is_some());
        assert!(std::ptr::eq(kill, lookup_bytes(b"CLIENT|Kill").unwrap()));
        assert_eq!(lookup("client").unwrap().subcommands.len(), 16);
        assert!(lookup("client|nosuch").is_none());
        assert!(lookup("nosuch").is_none());
        assert!(lookup("get|x").is_none());
        assert!(lookup("config|get").unwrap().arity_ok(3));
        assert!(!get.arity_ok(3));
    }

    #[test]
    fn resp2_flattens() {
        let v = MetaValue::Map(vec![(
            MetaValue::Bulk(b"k".to_vec()),
            MetaValue::Set(vec![MetaValue::Simple("a".into()), MetaValue::Int(1)]),
        )]);
        assert_eq!(
            render(&v, Protocol::Resp2),
            b"*2\r\n$1\r\nk\r\n*2\r\n+a\r\n:1\r\n"
        );
        assert_eq!(
            render(&v, Protocol::Resp3),
            b"%1\r\n$1\r\nk\r\n~2\r\n+a\r\n:1\r\n"
        );
    }

    #[test]
    fn legacy_key_positions() {
        let k = |name: &str, argc| key_positions(lookup(name).unwrap(), argc);
        assert_eq!(k("mset", 5), [1, 3]); // MSET k1 v1 k2 v2
        assert_eq!(k("del", 4), [1, 2, 3]); // DEL a b c
        assert_eq!(k("get", 2), [1]); // GET k
        assert_eq!(k("ping", 1), Vec::<usize>::new());
        assert_eq!(k("rename", 3), [1, 2]);
        assert_eq!(k("blpop", 4), [1, 2]); // BLPOP a b 0: last is -2
        assert_eq!(k("object|encoding", 3), [2]);
        assert_eq!(k("mset", 1), Vec::<usize>::new()); // too few: no keys, arity error later
        assert_eq!(k("eval", 5), Vec::<usize>::new()); // movable keys only
    }
}

/// Byte-identity against a live redis-server 7.0.15 (skipped when none is on PATH): for every
/// command and subcommand, in RESP2 and RESP3, `COMMAND INFO name` must equal `*1` +
/// `emit(info)` and `COMMAND DOCS name` must equal `{name: emit(docs)}` byte for byte, except
/// that a container's nested subcommands may come in another order (Redis's order is random).
/// Also checks `key_positions` against COMMAND GETKEYS, and COMMAND COUNT / COMMAND LIST.
#[cfg(test)]
mod live_tests {
    use super::*;
    use damselfly_resp::Protocol;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// A RESP value's span in a buffer; for maps, kids alternate key, value.
    struct Node {
        start: usize,
        end: usize,
        kids: Vec<Node>,
    }

    fn line_end(b: &[u8], p: usize) -> Option<usize> {
        b[p..].windows(2).position(|w| w == b"\r\n").map(|i| p + i)
    }

    /// Parses one RESP2/RESP3 value at `p`; `None` if incomplete.
    fn parse(b: &[u8], p: usize) -> Option<Node> {
        let kind = *b.get(p)?;
        let le = line_end(b, p + 1)?;
        let n: i64 = std::str::from_utf8(&b[p + 1..le])
            .unwrap()
            .parse()
            .unwrap_or(0);
        let nxt = le + 2;
        let (end, kids) = match kind {
            b'$' | b'=' if n >= 0 => (nxt + n as usize + 2, vec![]),
            b'*' | b'~' | b'%' => {
                let count = if n < 0 {
                    0
                } else if kind == b'%' {
                    2 * n
                } else {
                    n
                };
                let mut kids = vec![];
                let mut q = nxt;
                for _ in 0..count {
                    let k = parse(b, q)?;
                    q = k.end;
                    kids.push(k);
                }
                (q, kids)
            }
            _ => (nxt, vec![]),
        };
        (end <= b.len()).then_some(Node {
            start: p,
            end,
            kids,
        })
    }

    fn hdr<'a>(b: &'a [u8], n: &Node) -> &'a [u8] {
        &b[n.start..line_end(b, n.start).unwrap() + 2]
    }

    fn bytes<'a>(b: &'a [u8], n: &Node) -> &'a [u8] {
        &b[n.start..n.end]
    }

    /// An INFO entry with its nested subcommand entries sorted.
    fn canon_info_entry(b: &[u8], n: &Node) -> Vec<u8> {
        let mut out = hdr(b, n).to_vec();
        for (i, k) in n.kids.iter().enumerate() {
            if i == 9 && !k.kids.is_empty() {
                out.extend(hdr(b, k));
                let mut subs: Vec<Vec<u8>> =
                    k.kids.iter().map(|s| canon_info_entry(b, s)).collect();
                subs.sort();
                subs.into_iter().for_each(|s| out.extend(s));
            } else {
                out.extend(bytes(b, k));
            }
        }
        out
    }

    /// A name -> docs map (or its RESP2 flat array), pairs sorted, each docs entry's
    /// "subcommands" sorted likewise.
    fn canon_docs_map(b: &[u8], n: &Node) -> Vec<u8> {
        let mut out = hdr(b, n).to_vec();
        let mut pairs: Vec<Vec<u8>> = n
            .kids
            .chunks(2)
            .map(|p| {
                let mut e = bytes(b, &p[0]).to_vec();
                e.extend(hdr(b, &p[1]));
                for kv in p[1].kids.chunks(2) {
                    e.extend(bytes(b, &kv[0]));
                    if bytes(b, &kv[0]) == b"$11\r\nsubcommands\r\n" {
                        e.extend(canon_docs_map(b, &kv[1]));
                    } else {
                        e.extend(bytes(b, &kv[1]));
                    }
                }
                e
            })
            .collect();
        pairs.sort();
        pairs.into_iter().for_each(|p| out.extend(p));
        out
    }

    struct Conn {
        s: TcpStream,
        buf: Vec<u8>,
    }

    impl Conn {
        fn call(&mut self, args: &[&str]) -> Vec<u8> {
            let mut req = format!("*{}\r\n", args.len()).into_bytes();
            for a in args {
                req.extend(format!("${}\r\n{}\r\n", a.len(), a).into_bytes());
            }
            self.s.write_all(&req).unwrap();
            loop {
                if let Some(n) = parse(&self.buf, 0) {
                    return self.buf.drain(..n.end).collect();
                }
                let mut tmp = [0u8; 65536];
                let k = self.s.read(&mut tmp).unwrap();
                assert!(k > 0, "redis-server closed the connection");
                self.buf.extend_from_slice(&tmp[..k]);
            }
        }
    }

    struct Server(Child, std::path::PathBuf);

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }

    fn start() -> Option<(Server, u16)> {
        let bin = std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("redis-server"))
                .find(|f| f.is_file())
        })?;
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("damselfly-meta-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir", dir.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server(child, dir);
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some((server, port))
    }

    #[test]
    fn byte_identical_to_redis() {
        let Some((_server, port)) = start() else {
            eprintln!("redis-server not on PATH: skipping the byte-identity check");
            return;
        };
        let connect = || Conn {
            s: TcpStream::connect(("127.0.0.1", port)).unwrap(),
            buf: Vec::new(),
        };
        let (mut c2, mut c3) = (connect(), connect());
        let hello = c3.call(&["HELLO", "3"]);
        assert!(
            hello.windows(10).any(|w| w == b"\r\n7.0.15\r\n"),
            "the oracle must be redis 7.0.15"
        );

        let mut names = Vec::new();
        for c in all() {
            names.push(c.name.as_str());
            names.extend(c.subcommands.iter().map(|s| s.name.as_str()));
        }
        for &name in &names {
            let m = lookup(name).unwrap();
            for (conn, proto) in [(&mut c2, Protocol::Resp2), (&mut c3, Protocol::Resp3)] {
                let mut r = ReplyBuilder::new(proto);
                r.array(1);
                emit(&m.info, &mut r);
                let live = conn.call(&["COMMAND", "INFO", name]);
                if live != r.buf {
                    assert!(
                        !m.subcommands.is_empty(),
                        "COMMAND INFO {name} {proto:?} differs"
                    );
                    let (l, o) = (parse(&live, 0).unwrap(), parse(&r.buf, 0).unwrap());
                    assert_eq!(
                        String::from_utf8_lossy(&canon_info_entry(&live, &l.kids[0])),
                        String::from_utf8_lossy(&canon_info_entry(&r.buf, &o.kids[0])),
                        "COMMAND INFO {name} {proto:?}"
                    );
                }

                let mut r = ReplyBuilder::new(proto);
                r.map(1);
                r.bulk(m.name.as_bytes());
                emit(m.docs.as_ref().unwrap(), &mut r);
                let live = conn.call(&["COMMAND", "DOCS", name]);
                if live != r.buf {
                    assert!(
                        !m.subcommands.is_empty(),
                        "COMMAND DOCS {name} {proto:?} differs"
                    );
                    let (l, o) = (parse(&live, 0).unwrap(), parse(&r.buf, 0).unwrap());
                    assert_eq!(
                        String::from_utf8_lossy(&canon_docs_map(&live, &l)),
                        String::from_utf8_lossy(&canon_docs_map(&r.buf, &o)),
                        "COMMAND DOCS {name} {proto:?}"
                    );
                }
            }
        }

        // A subcommand's docs are what its container nests under "subcommands".
        for c in all() {
            for s in &c.subcommands {
                let nested = c
                    .docs
                    .as_ref()
                    .unwrap()
                    .get("subcommands")
                    .unwrap()
                    .get(&s.name);
                assert_eq!(nested, s.docs.as_ref());
            }
        }

        // key_positions agrees with COMMAND GETKEYS for legacy-range commands.
        let cases: &[&[&str]] = &[
            &["mset", "k1", "v1", "k2", "v2"],
            &["del", "a", "b", "c"],
            &["get", "k"],
            &["mget", "a", "b"],
            &["blpop", "a", "b", "0"],
            &["rename", "a", "b"],
            &["smove", "s", "d", "m"],
            &["brpoplpush", "a", "b", "0"],
            &["msetnx", "a", "1", "b", "2"],
            &["sinterstore", "d", "a", "b"],
            &["bitfield", "k", "get", "u8", "0"],
            &["object", "encoding", "k"],
            &["memory", "usage", "k"],
            &["xinfo", "stream", "s"],
            &["config", "get", "x"],
        ];
        for argv in cases {
            let m = lookup(argv[0]).unwrap();
            let m = match m.subcommands.is_empty() {
                true => m,
                false => lookup(&format!("{}|{}", argv[0], argv[1])).unwrap(),
            };
            let keys = key_positions(m, argv.len());
            let mut r = ReplyBuilder::new(Protocol::Resp2);
            if keys.is_empty() {
                r.error("ERR The command has no key arguments");
            } else {
                r.array(keys.len());
                keys.iter().for_each(|&i| r.bulk(argv[i].as_bytes()));
            }
            let live = c2.call(&[&["COMMAND", "GETKEYS"], *argv].concat());
            assert_eq!(
                String::from_utf8_lossy(&live),
                String::from_utf8_lossy(&r.buf),
                "{argv:?}"
            );
        }

        // COMMAND COUNT and COMMAND LIST.
        assert_eq!(
            c2.call(&["COMMAND", "COUNT"]),
            format!(":{}\r\n", all().len()).into_bytes()
        );
        let list = c2.call(&["COMMAND", "LIST"]);
        let ln = parse(&list, 0).unwrap();
        let mut live: Vec<&[u8]> = ln.kids.iter().map(|k| bytes(&list, k)).collect();
        live.sort();
        let ours: Vec<Vec<u8>> = names
            .iter()
            .map(|n| format!("${}\r\n{}\r\n", n.len(), n).into_bytes())
            .collect();
        let mut ours: Vec<&[u8]> = ours.iter().map(|v| v.as_slice()).collect();
        ours.sort();
        assert_eq!(live, ours);
    }
}
