//! Differential tests: every case file in RESP2 and RESP3, and a randomized (proptest) stream
//! of string, bitmap and key commands, each sent to damselfly and to redis-server with the
//! replies compared byte for byte.

use std::cell::RefCell;
use std::fmt;

use damselfly_compat::{
    cases_dir, escape, is_closed_error, run_dir_or_panic, sort_reply, Pair, RespConn,
};
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

#[test]
fn case_files() {
    run_dir_or_panic(&cases_dir());
}

// ---------------------------------------------------------------------------------------------
// Randomized differential test.

/// How one generated command's replies are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Exact,
    /// Top-level elements sorted (KEYS).
    Sort,
    /// Integers may differ by 1 (TTL / EXPIRETIME, which depend on the wall clock).
    Approx,
}

#[derive(Clone)]
struct Cmd {
    args: Vec<String>,
    mode: Mode,
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line: Vec<String> = self
            .args
            .iter()
            .map(|a| {
                if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                {
                    escape(a.as_bytes())
                } else {
                    a.clone()
                }
            })
            .collect();
        f.write_str(&line.join(" "))
    }
}

fn key() -> BoxedStrategy<String> {
    prop_oneof![
        4 => Just("a"),
        3 => Just("b"),
        2 => Just("c"),
        2 => Just("{t}a"),
        2 => Just("{t}b"),
        2 => Just("n"),
    ]
    .prop_map(String::from)
    .boxed()
}

fn keys(min: usize, max: usize) -> BoxedStrategy<Vec<String>> {
    prop::collection::vec(key(), min..=max).boxed()
}

fn value() -> BoxedStrategy<String> {
    prop_oneof![
        Just("0".to_string()),
        Just("1".to_string()),
        Just("-1".to_string()),
        Just("42".to_string()),
        Just("-100".to_string()),
        Just("007".to_string()),
        Just("9223372036854775807".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("3.14".to_string()),
        Just("-2.5e3".to_string()),
        Just("10.50".to_string()),
        Just(String::new()),
        Just("hello".to_string()),
        Just("hello world".to_string()),
        Just("\u{1}\u{ff}\u{80}".to_string()),
        Just("x".repeat(44)),
        Just("y".repeat(45)),
        Just("abcdefghijklmnopqrstuvwxyz".repeat(4)),
        "[a-c]{0,6}",
    ]
    .boxed()
}

fn int_arg() -> BoxedStrategy<String> {
    prop_oneof![
        6 => (-20i64..20).prop_map(|i| i.to_string()),
        1 => Just("100".to_string()),
        1 => Just("9223372036854775807".to_string()),
        1 => Just("-9223372036854775808".to_string()),
        1 => Just("abc".to_string()),
        1 => Just("1.5".to_string()),
        1 => Just(String::new()),
    ]
    .boxed()
}

fn float_arg() -> BoxedStrategy<String> {
    prop_oneof![
        Just("0.1".to_string()),
        Just("-1.5".to_string()),
        Just("1e3".to_string()),
        Just("5".to_string()),
        Just("-0".to_string()),
        Just("3.0e-5".to_string()),
        Just("1.7976931348623157e308".to_string()),
        Just("inf".to_string()),
        Just("abc".to_string()),
        Just(" 1".to_string()),
    ]
    .boxed()
}

fn index_arg() -> BoxedStrategy<String> {
    prop_oneof![
        8 => (-12i64..40).prop_map(|i| i.to_string()),
        1 => Just("9223372036854775807".to_string()),
        1 => Just("-9223372036854775808".to_string()),
        1 => Just("x".to_string()),
    ]
    .boxed()
}

fn bit_offset() -> BoxedStrategy<String> {
    prop_oneof![
        10 => (0u32..80).prop_map(|i| i.to_string()),
        1 => Just("-1".to_string()),
        1 => Just("4294967296".to_string()),
        1 => Just("zz".to_string()),
    ]
    .boxed()
}

fn bitfield_type() -> BoxedStrategy<String> {
    prop_oneof![
        Just("u1".to_string()),
        Just("i1".to_string()),
        Just("u8".to_string()),
        Just("i8".to_string()),
        Just("u4".to_string()),
        Just("i5".to_string()),
        Just("i16".to_string()),
        Just("u63".to_string()),
        Just("i64".to_string()),
        Just("u64".to_string()),
        Just("x8".to_string()),
    ]
    .boxed()
}

fn bitfield_offset() -> BoxedStrategy<String> {
    prop_oneof![
        6 => (0u32..40).prop_map(|i| i.to_string()),
        2 => (0u32..5).prop_map(|i| format!("#{i}")),
        1 => Just("-1".to_string()),
        1 => Just("#x".to_string()),
    ]
    .boxed()
}

fn bitfield_op(read_only: bool) -> BoxedStrategy<Vec<String>> {
    let get = (bitfield_type(), bitfield_offset()).prop_map(|(t, o)| vec!["GET".to_string(), t, o]);
    if read_only {
        return get.boxed();
    }
    prop_oneof![
        3 => get,
        3 => (bitfield_type(), bitfield_offset(), int_arg()).prop_map(|(t, o, v)| vec!["SET".into(), t, o, v]),
        3 => (bitfield_type(), bitfield_offset(), int_arg()).prop_map(|(t, o, v)| vec!["INCRBY".into(), t, o, v]),
        2 => prop_oneof![Just("WRAP"), Just("SAT"), Just("FAIL"), Just("BOGUS")]
            .prop_map(|m| vec!["OVERFLOW".to_string(), m.to_string()]),
    ]
    .boxed()
}

fn tokens(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

fn set_option() -> BoxedStrategy<Vec<String>> {
    prop_oneof![
        3 => Just(tokens(&["NX"])),
        3 => Just(tokens(&["XX"])),
        3 => Just(tokens(&["GET"])),
        2 => Just(tokens(&["KEEPTTL"])),
        3 => Just(tokens(&["EX", "1000"])),
        2 => Just(tokens(&["PX", "1000000"])),
        2 => Just(tokens(&["EXAT", "4102444800"])),
        1 => Just(tokens(&["PXAT", "4102444800000"])),
        1 => Just(tokens(&["EXAT", "1"])),
        1 => Just(tokens(&["EX", "0"])),
        1 => Just(tokens(&["EX", "-5"])),
        1 => Just(tokens(&["PX", "abc"])),
        1 => Just(tokens(&["EX"])),
        1 => Just(tokens(&["BOGUS"])),
    ]
    .boxed()
}

fn getex_option() -> BoxedStrategy<Vec<String>> {
    prop_oneof![
        Just(tokens(&["PERSIST"])),
        Just(tokens(&["EX", "1000"])),
        Just(tokens(&["PX", "1000000"])),
        Just(tokens(&["EXAT", "4102444800"])),
        Just(tokens(&["PXAT", "4102444800000"])),
        Just(tokens(&["EX", "0"])),
        Just(tokens(&["EXAT", "1"])),
        Just(tokens(&["KEEPTTL"])),
        Just(tokens(&["EX", "abc"])),
    ]
    .boxed()
}

/// Flags for EXPIRE-like commands. GT and LT are only used with absolute times: comparing two
/// relative expiries of the same length depends on whether a millisecond passed in between.
fn expire_flag(absolute: bool) -> BoxedStrategy<Vec<String>> {
    let common = prop_oneof![
        6 => Just(vec![]),
        1 => Just(tokens(&["NX"])),
        1 => Just(tokens(&["XX"])),
        1 => Just(tokens(&["NX", "GT"])),
        1 => Just(tokens(&["GT", "LT"])),
        1 => Just(tokens(&["FOO"])),
    ];
    if !absolute {
        return common.boxed();
    }
    prop_oneof![
        11 => common,
        2 => Just(tokens(&["GT"])),
        2 => Just(tokens(&["LT"])),
        1 => Just(tokens(&["XX", "LT"])),
    ]
    .boxed()
}

fn range_unit() -> BoxedStrategy<Vec<String>> {
    prop_oneof![
        3 => Just(vec![]),
        2 => Just(tokens(&["BYTE"])),
        2 => Just(tokens(&["BIT"])),
        1 => Just(tokens(&["bit"])),
        1 => Just(tokens(&["WORD"])),
    ]
    .boxed()
}

fn cmd(mode: Mode, parts: Vec<Vec<String>>) -> Cmd {
    Cmd {
        args: parts.into_iter().flatten().collect(),
        mode,
    }
}

fn one(s: &str) -> Vec<String> {
    vec![s.to_string()]
}

fn string_commands() -> Vec<BoxedStrategy<Cmd>> {
    use Mode::Exact;
    vec![
        (key(), value(), prop::collection::vec(set_option(), 0..3))
            .prop_map(|(k, v, o)| cmd(Exact, vec![one("SET"), vec![k, v], o.concat()]))
            .boxed(),
        (key(), value(), prop::collection::vec(set_option(), 0..3))
            .prop_map(|(k, v, o)| cmd(Exact, vec![one("SET"), vec![k, v], o.concat()]))
            .boxed(),
        key()
            .prop_map(|k| cmd(Exact, vec![one("GET"), vec![k]]))
            .boxed(),
        key()
            .prop_map(|k| cmd(Exact, vec![one("GET"), vec![k]]))
            .boxed(),
        (key(), value())
            .prop_map(|(k, v)| cmd(Exact, vec![one("APPEND"), vec![k, v]]))
            .boxed(),
        key()
            .prop_map(|k| cmd(Exact, vec![one("INCR"), vec![k]]))
            .boxed(),
        key()
            .prop_map(|k| cmd(Exact, vec![one("DECR"), vec![k]]))
            .boxed(),
        (key(), int_arg())
            .prop_map(|(k, i)| cmd(Exact, vec![one("INCRBY"), vec![k, i]]))
            .boxed(),
        (key(), int_arg())
            .prop_map(|(k, i)| cmd(Exact, vec![one("DECRBY"), vec![k, i]]))
            .boxed(),
        (key(), float_arg())
            .prop_map(|(k, f)| cmd(Exact, vec![one("INCRBYFLOAT"), vec![k, f]]))
            .boxed(),
        key()
            .prop_map(|k| cmd(Exact, vec![one("GETDEL"), vec![k]]))
            .boxed(),
        (key(), prop::collection::vec(getex_option(), 0..2))
            .prop_map(|(k, o)| cmd(Exact, vec![one("GETEX"), vec![k], o.concat()]))
            .boxed(),
        (key(), index_arg(), index_arg())
            .prop_map(|(k, s, e)| cmd(Exact, vec![one("GETRANGE"), vec![k, s, e]]))
            .boxed(),
        (key(), index_arg(), index_arg())
            .prop_map(|(k, s, e)| cmd(Exact, vec![one("SUBSTR"), vec![k, s, e]]))
            .boxed(),
        (key(), value())
            .prop_map(|(k, v)| cmd(Exact, vec![one("GETSET"), vec![k, v]]))
            .boxed(),
        (
            key(),
            key(),
            prop_oneof![
                Just(vec![]),
                Just(tokens(&["LEN"])),
                Just(tokens(&["IDX"])),
                Just(tokens(&["IDX", "WITHMATCHLEN"])),
                Just(tokens(&["IDX", "MINMATCHLEN", "2"])),
                Just(tokens(&["LEN", "IDX"])),
            ],
        )
            .prop_map(|(a, b, o)| cmd(Exact, vec![one("LCS"), vec![a, b], o]))
            .boxed(),
        keys(1, 4)
            .prop_map(|k| cmd(Exact, vec![one("MGET"), k]))
            .boxed(),
        prop::collection::vec((key(), value()), 1..3)
            .prop_map(|kv| {
                cmd(
                    Exact,
                    vec![
                        one("MSET"),
                        kv.into_iter().flat_map(|(k, v)| [k, v]).collect(),
                    ],
                )
            })
            .boxed(),
        prop::collection::vec((key(), value()), 1..3)
            .prop_map(|kv| {
                cmd(
                    Exact,
                    vec![
                        one("MSETNX"),
                        kv.into_iter().flat_map(|(k, v)| [k, v]).collect(),
                    ],
                )
            })
            .boxed(),
        (
            key(),
            prop_oneof![Just("1000000"), Just("0"), Just("-1"), Just("x")],
            value(),
        )
            .prop_map(|(k, t, v)| cmd(Exact, vec![one("PSETEX"), vec![k, t.to_string(), v]]))
            .boxed(),
        (
            key(),
            prop_oneof![Just("1000"), Just("0"), Just("x")],
            value(),
        )
            .prop_map(|(k, t, v)| cmd(Exact, vec![one("SETEX"), vec![k, t.to_string(), v]]))
            .boxed(),
        (key(), value())
            .prop_map(|(k, v)| cmd(Exact, vec![one("SETNX"), vec![k, v]]))
            .boxed(),
        (
            key(),
            prop_oneof![
                8 => (0u32..60).prop_map(|i| i.to_string()),
                1 => Just("-1".to_string()),
                1 => Just("536870912".to_string()),
            ],
            value(),
        )
            .prop_map(|(k, o, v)| cmd(Exact, vec![one("SETRANGE"), vec![k, o, v]]))
            .boxed(),
        key()
            .prop_map(|k| cmd(Exact, vec![one("STRLEN"), vec![k]]))
            .boxed(),
    ]
}

fn bitmap_commands() -> Vec<BoxedStrategy<Cmd>> {
    use Mode::Exact;
    vec![
        (
            key(),
            bit_offset(),
            prop_oneof![4 => Just("1"), 3 => Just("0"), 1 => Just("2")],
        )
            .prop_map(|(k, o, b)| cmd(Exact, vec![one("SETBIT"), vec![k, o, b.to_string()]]))
            .boxed(),
        (key(), bit_offset())
            .prop_map(|(k, o)| cmd(Exact, vec![one("GETBIT"), vec![k, o]]))
            .boxed(),
        (
            key(),
            prop::option::of((index_arg(), index_arg(), range_unit())),
        )
            .prop_map(|(k, r)| {
                let r = r
                    .map(|(s, e, u)| [vec![s, e], u].concat())
                    .unwrap_or_default();
                cmd(Exact, vec![one("BITCOUNT"), vec![k], r])
            })
            .boxed(),
        (
            key(),
            prop_oneof![Just("0"), Just("1"), Just("3")],
            prop::option::of((index_arg(), prop::option::of((index_arg(), range_unit())))),
        )
            .prop_map(|(k, b, r)| {
                let r = match r {
                    None => vec![],
                    Some((s, None)) => vec![s],
                    Some((s, Some((e, u)))) => [vec![s, e], u].concat(),
                };
                cmd(Exact, vec![one("BITPOS"), vec![k, b.to_string()], r])
            })
            .boxed(),
        (
            prop_oneof![Just("AND"), Just("OR"), Just("XOR"), Just("and")],
            key(),
            keys(1, 3),
        )
            .prop_map(|(op, d, src)| cmd(Exact, vec![one("BITOP"), vec![op.to_string(), d], src]))
            .boxed(),
        (key(), keys(1, 2), prop::bool::weighted(0.8))
            .prop_map(|(d, src, ok)| {
                let src = if ok { vec![src[0].clone()] } else { src };
                cmd(Exact, vec![one("BITOP"), vec!["NOT".to_string(), d], src])
            })
            .boxed(),
        (key(), prop::collection::vec(bitfield_op(false), 0..4))
            .prop_map(|(k, ops)| cmd(Exact, vec![one("BITFIELD"), vec![k], ops.concat()]))
            .boxed(),
        (key(), prop::collection::vec(bitfield_op(true), 0..3))
            .prop_map(|(k, ops)| cmd(Exact, vec![one("BITFIELD_RO"), vec![k], ops.concat()]))
            .boxed(),
    ]
}

fn key_commands() -> Vec<BoxedStrategy<Cmd>> {
    use Mode::{Approx, Exact, Sort};
    vec![
        keys(1, 3)
            .prop_map(|k| cmd(Exact, vec![one("DEL"), k]))
            .boxed(),
        keys(1, 3)
            .prop_map(|k| cmd(Exact, vec![one("UNLINK"), k]))
            .boxed(),
        keys(1, 3)
            .prop_map(|k| cmd(Exact, vec![one("EXISTS"), k]))
            .boxed(),
        keys(1, 3)
            .prop_map(|k| cmd(Exact, vec![one("TOUCH"), k]))
            .boxed(),
        key()
            .prop_map(|k| cmd(Exact, vec![one("TYPE"), vec![k]]))
            .boxed(),
        (
            key(),
            prop_oneof![
                4 => Just("1000"),
                2 => Just("100"),
                1 => Just("-1"),
                1 => Just("0"),
                1 => Just("abc"),
                1 => Just("9223372036854775807")
            ],
            expire_flag(false),
        )
            .prop_map(|(k, t, f)| cmd(Exact, vec![one("EXPIRE"), vec![k, t.to_string()], f]))
            .boxed(),
        (
            key(),
            prop_oneof![3 => Just("1000000"), 1 => Just("2000000"), 1 => Just("-5")],
            expire_flag(false),
        )
            .prop_map(|(k, t, f)| cmd(Exact, vec![one("PEXPIRE"), vec![k, t.to_string()], f]))
            .boxed(),
        (
            key(),
            prop_oneof![3 => Just("4102444800"), 1 => Just("4102444000"), 1 => Just("1")],
            expire_flag(true),
        )
            .prop_map(|(k, t, f)| cmd(Exact, vec![one("EXPIREAT"), vec![k, t.to_string()], f]))
            .boxed(),
        (
            key(),
            prop_oneof![3 => Just("4102444800000"), 1 => Just("1")],
            expire_flag(true),
        )
            .prop_map(|(k, t, f)| cmd(Exact, vec![one("PEXPIREAT"), vec![k, t.to_string()], f]))
            .boxed(),
        key()
            .prop_map(|k| cmd(Approx, vec![one("TTL"), vec![k]]))
            .boxed(),
        key()
            .prop_map(|k| cmd(Approx, vec![one("TTL"), vec![k]]))
            .boxed(),
        key()
            .prop_map(|k| cmd(Approx, vec![one("EXPIRETIME"), vec![k]]))
            .boxed(),
        key()
            .prop_map(|k| cmd(Exact, vec![one("PERSIST"), vec![k]]))
            .boxed(),
        prop_oneof![
            Just("*"),
            Just("?"),
            Just("{t}*"),
            Just("[ab]"),
            Just("*a*"),
            Just("x*")
        ]
        .prop_map(|p| cmd(Sort, vec![one("KEYS"), one(p)]))
        .boxed(),
        (key(), key())
            .prop_map(|(a, b)| cmd(Exact, vec![one("RENAME"), vec![a, b]]))
            .boxed(),
        (key(), key())
            .prop_map(|(a, b)| cmd(Exact, vec![one("RENAMENX"), vec![a, b]]))
            .boxed(),
        (
            key(),
            key(),
            prop_oneof![
                Just(vec![]),
                Just(tokens(&["REPLACE"])),
                Just(tokens(&["DB", "1"])),
                Just(tokens(&["DB", "0", "REPLACE"])),
                Just(tokens(&["DB", "99"])),
            ],
        )
            .prop_map(|(a, b, o)| cmd(Exact, vec![one("COPY"), vec![a, b], o]))
            .boxed(),
        (key(), prop_oneof![Just("1"), Just("0"), Just("16")])
            .prop_map(|(k, db)| cmd(Exact, vec![one("MOVE"), vec![k, db.to_string()]]))
            .boxed(),
        key()
            .prop_map(|k| cmd(Exact, vec![one("OBJECT"), one("ENCODING"), vec![k]]))
            .boxed(),
        Just(cmd(Exact, vec![one("DBSIZE")])).boxed(),
    ]
}

fn command() -> impl Strategy<Value = Cmd> {
    let mut all = string_commands();
    all.extend(bitmap_commands());
    all.extend(key_commands());
    Union::new(all)
}

struct Conns {
    /// oracle RESP2, oracle RESP3, dut RESP2, dut RESP3
    c: [RespConn; 4],
}

struct PropState {
    pair: Pair,
    conns: Option<Conns>,
    /// Server restarts after a crash so far.
    restarts: usize,
    /// Set when a server kept dying: later sequences are not run (and count as passing, so the
    /// shrinker keeps the last failing one).
    gave_up: bool,
}

/// Restarts after a server process died before the run stops shrinking.
const MAX_RESTARTS: usize = 30;

/// `run_sequence`, plus: when a server process died, say so (with its log) and restart it, so
/// that shrinking can go on and find a minimal sequence that kills it.
fn run_sequence_checked(state: &mut PropState, seq: &[Cmd]) -> Result<(), String> {
    if state.gave_up {
        return Ok(());
    }
    let mut result = run_sequence(state, seq);
    if let Err(msg) = &mut result {
        if state.conns.is_none() {
            // An I/O error: give a dying server a moment to finish exiting.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
            while state.pair.oracle.is_running()
                && state.pair.dut.is_running()
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        for server in [&mut state.pair.oracle, &mut state.pair.dut] {
            if let Some(why) = server.exited() {
                msg.push_str(&format!("\n{why}\n"));
                state.conns = None;
                if state.restarts < MAX_RESTARTS {
                    state.restarts += 1;
                    server.restart();
                } else {
                    state.gave_up = true;
                }
            }
        }
    }
    result
}

fn open_conns(pair: &Pair) -> Result<Conns, String> {
    let open = |srv: &damselfly_compat::ServerProc, proto3: bool| -> Result<RespConn, String> {
        let mut c =
            RespConn::connect(srv.addr()).map_err(|e| format!("{}: connect: {e}", srv.label()))?;
        if proto3 {
            let r = c
                .call(&["HELLO", "3"])
                .map_err(|e| format!("{}: HELLO 3: {e}", srv.label()))?;
            if r.first() != Some(&b'%') {
                return Err(format!("{}: HELLO 3 replied {}", srv.label(), escape(&r)));
            }
        }
        Ok(c)
    };
    Ok(Conns {
        c: [
            open(&pair.oracle, false)?,
            open(&pair.oracle, true)?,
            open(&pair.dut, false)?,
            open(&pair.dut, true)?,
        ],
    })
}

fn show(r: &std::io::Result<Vec<u8>>) -> String {
    match r {
        Ok(b) => escape(b),
        Err(e) if is_closed_error(e) => "<connection closed by server>".to_string(),
        Err(e) => format!("<error: {e}>"),
    }
}

fn approx_equal(a: &[u8], b: &[u8]) -> bool {
    let int = |r: &[u8]| -> Option<i64> {
        std::str::from_utf8(r.strip_prefix(b":")?.strip_suffix(b"\r\n")?)
            .ok()?
            .parse()
            .ok()
    };
    match (int(a), int(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= 1,
        _ => a == b,
    }
}

/// Runs one sequence on both servers in both protocols; `Err` describes the first difference.
fn run_sequence(state: &mut PropState, seq: &[Cmd]) -> Result<(), String> {
    if state.conns.is_none() {
        let conns =
            open_conns(&state.pair).map_err(|e| format!("{e}\nwhile starting sequence {seq:?}"))?;
        state.conns = Some(conns);
    }
    let conns = state.conns.as_mut().unwrap();
    let dump = std::env::var("COMPAT_DUMP").is_ok_and(|v| v == "1");
    let listing = || {
        let mut s = format!("sequence ({} commands):\n", seq.len());
        for (i, c) in seq.iter().enumerate() {
            s.push_str(&format!("  {:>2}. {c:?}\n", i + 1));
        }
        s
    };
    for (pass, (oi, di)) in [("RESP2", (0, 2)), ("RESP3", (1, 3))] {
        for (i, who) in [(oi, "redis"), (di, "damselfly")] {
            match conns.c[i].call(&["FLUSHALL"]) {
                Ok(r) if r == b"+OK\r\n" => {}
                other => {
                    let msg = format!(
                        "{who}: FLUSHALL (sent before every sequence) replied {}",
                        show(&other)
                    );
                    if other.is_err() {
                        state.conns = None;
                    }
                    return Err(msg);
                }
            }
        }
        let mut history = String::new();
        for (n, c) in seq.iter().enumerate() {
            let ro = conns.c[oi].call(&c.args);
            let rd = conns.c[di].call(&c.args);
            let equal = match (&ro, &rd) {
                (Ok(a), Ok(b)) => match c.mode {
                    Mode::Exact => a == b,
                    Mode::Sort => sort_reply(a) == sort_reply(b),
                    Mode::Approx => approx_equal(a, b),
                },
                _ => false,
            };
            if !equal {
                let msg = format!(
                    "{}replies before the difference [{pass}]:\n{history}mismatch at command {} [{pass}]: {c:?}\n    redis:     {}\n    damselfly: {}\n",
                    listing(),
                    n + 1,
                    show(&ro),
                    show(&rd)
                );
                if ro.is_err() || rd.is_err() {
                    state.conns = None;
                }
                return Err(msg);
            }
            history.push_str(&format!("  {:>2}. {c:?} -> {}\n", n + 1, show(&ro)));
            if dump {
                eprintln!("[{pass}] {c:?} -> {}", show(&ro));
            }
        }
    }
    Ok(())
}

#[test]
fn randomized_string_bitmap_key_commands() {
    let cases = std::env::var("COMPAT_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        max_shrink_time: 45_000,
        ..Config::default()
    };
    let state = RefCell::new(PropState {
        pair: Pair::start(),
        conns: None,
        restarts: 0,
        gave_up: false,
    });
    let mut runner = TestRunner::new(config);
    let result = runner.run(&prop::collection::vec(command(), 1..=30), |seq| {
        run_sequence_checked(&mut state.borrow_mut(), &seq).map_err(TestCaseError::fail)
    });
    let PropState { mut pair, .. } = state.into_inner();
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, _)) => {
            let logs = pair.keep_logs();
            panic!("\nminimal failing sequence after shrinking:\n{reason}\n{logs}\n");
        }
        Err(TestError::Abort(reason)) => panic!("proptest aborted: {reason}"),
    }
}
