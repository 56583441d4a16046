//! LATENCY and INFO latencystats, differential: the same session runs against redis-server
//! and damselfly, and what does not depend on timing must be the same, RESP2 and RESP3.
//!
//! Compared exactly: which commands have a histogram and their call counts (failed calls
//! count, rejected ones do not; HELLO, CONFIG, LATENCY themselves count), the histogram
//! bucket of a 50 ms `DEBUG SLEEP` (label 67633), the INFO line names and percentile keys
//! (default and configured), what `latency-tracking no` stops, the monitor's events and sample
//! counts, and the GRAPH and DOCTOR texts with every number replaced by `N`. Checked beside:
//! timestamps are now, latencies reach the sleep, cumulative counts grow to the call count.

use damselfly_compat::{escape, Pair, RespConn, ServerProc};

#[derive(Debug, Clone)]
enum V {
    Int(i64),
    Str(Vec<u8>),
    Err(#[allow(dead_code)] String),
    Nil,
    Arr(Vec<V>),
    Map(Vec<(V, V)>),
}

impl V {
    fn text(&self) -> String {
        match self {
            V::Str(s) => String::from_utf8_lossy(s).into_owned(),
            other => panic!("not a string: {other:?}"),
        }
    }
    fn int(&self) -> i64 {
        match self {
            V::Int(i) => *i,
            other => panic!("not an integer: {other:?}"),
        }
    }
    fn arr(&self) -> &[V] {
        match self {
            V::Arr(a) => a,
            other => panic!("not an array: {other:?}"),
        }
    }
    /// A map, or in RESP2 the flat array it is sent as.
    fn pairs(&self) -> Vec<(V, V)> {
        match self {
            V::Map(m) => m.clone(),
            V::Arr(a) => a.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect(),
            other => panic!("not a map: {other:?}"),
        }
    }
}

fn parse(b: &[u8]) -> V {
    let (v, end) = parse_at(b, 0);
    assert_eq!(end, b.len(), "trailing bytes in {}", escape(b));
    v
}

fn parse_at(b: &[u8], p: usize) -> (V, usize) {
    let le = p + b[p..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a line");
    let line = std::str::from_utf8(&b[p + 1..le]).expect("utf-8 header");
    let next = le + 2;
    let n = || line.parse::<i64>().expect("a length");
    match b[p] {
        b'+' => (V::Str(line.as_bytes().to_vec()), next),
        b'-' => (V::Err(line.to_string()), next),
        b':' => (V::Int(n()), next),
        b'_' => (V::Nil, next),
        b'$' | b'=' if n() < 0 => (V::Nil, next),
        b'$' | b'=' => {
            let len = n() as usize;
            let mut s = b[next..next + len].to_vec();
            if b[p] == b'=' {
                s.drain(..4);
            }
            (V::Str(s), next + len + 2)
        }
        b'*' | b'~' if n() < 0 => (V::Nil, next),
        b'*' | b'~' => {
            let mut q = next;
            let mut items = Vec::new();
            for _ in 0..n() {
                let (v, e) = parse_at(b, q);
                items.push(v);
                q = e;
            }
            (V::Arr(items), q)
        }
        b'%' => {
            let mut q = next;
            let mut items = Vec::new();
            for _ in 0..n() {
                let (k, e) = parse_at(b, q);
                let (v, e) = parse_at(b, e);
                items.push((k, v));
                q = e;
            }
            (V::Map(items), q)
        }
        t => panic!("unexpected type byte {t} in {}", escape(b)),
    }
}

/// Every run of digits becomes `N`.
fn numbers_out(s: &str) -> String {
    let mut out = String::new();
    let mut in_num = false;
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            if !in_num {
                out.push('N');
            }
            in_num = true;
        } else {
            in_num = false;
            out.push(ch);
        }
    }
    out
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// LATENCY HISTOGRAM, as `name calls=N` lines sorted by name (Redis answers in its hash
/// table's order); the sleep's buckets are kept.
fn histogram_text(reply: &V) -> String {
    let mut lines = Vec::new();
    for (name, h) in reply.pairs() {
        let name = name.text();
        let fields = h.pairs();
        assert_eq!(fields[0].0.text(), "calls");
        assert_eq!(fields[1].0.text(), "histogram_usec");
        let calls = fields[0].1.int();
        let buckets = fields[1].1.pairs();
        let mut last = 0;
        for (label, count) in &buckets {
            assert!(label.int() >= 1);
            assert!(count.int() > last, "{name}: cumulative counts grow");
            last = count.int();
        }
        assert_eq!(last, calls, "{name}: the last bucket holds every call");
        let mut line = format!("{name} calls={calls}");
        if name == "debug" {
            let labels: Vec<i64> = buckets.iter().map(|(l, _)| l.int()).collect();
            line.push_str(&format!(" buckets={labels:?}"));
        }
        lines.push(line);
    }
    lines.sort();
    lines.join("\n") + "\n"
}

/// INFO latencystats as `name: p50 p99 p99.9` lines, values checked for their format.
fn latencystats_text(info: &V) -> String {
    let text = info.text();
    let mut lines = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with('#') {
            lines.push(line.to_string());
            continue;
        }
        let (name, values) = line
            .strip_prefix("latency_percentiles_usec_")
            .and_then(|l| l.split_once(':'))
            .unwrap_or_else(|| panic!("odd line {line:?}"));
        let mut keys = Vec::new();
        for kv in values.split(',').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').expect("p=v");
            let (int, frac) = v.split_once('.').expect("a point");
            assert!(int.parse::<u64>().is_ok() && frac.len() == 3, "{line}");
            if name == "debug" {
                assert!(v.parse::<f64>().unwrap_or(0.0) >= 50_000.0, "{line}");
            }
            keys.push(k.to_string());
        }
        lines.push(format!("{name}: {}", keys.join(" ")));
    }
    lines[1..].sort();
    lines.join("\n") + "\n"
}

fn run(server: &ServerProc, resp3: bool) -> String {
    let mut admin = server.connect();
    let mut c = server.connect();
    let call =
        |conn: &mut RespConn, args: &[&str]| -> V { parse(&conn.call(args).expect("reply")) };
    call(
        &mut admin,
        &["CONFIG", "SET", "latency-monitor-threshold", "40"],
    );
    call(&mut admin, &["LATENCY", "RESET"]);
    call(&mut admin, &["CONFIG", "RESETSTAT"]);
    if resp3 {
        call(&mut c, &["HELLO", "3"]);
    }
    for req in [
        &["SET", "a", "1"][..],
        &["SET", "b", "2"],
        &["GET", "a"],
        &["GET", "nosuch"],
        &["MSET", "x", "1", "y", "2"],
        &["APPEND", "s", "abc"],
        &["INCR", "s"],
        &["GET"],
        &["NOSUCHCOMMAND"],
        &["CLIENT", "ID"],
        &["DEBUG", "SLEEP", "0.05"],
    ] {
        call(&mut c, req);
    }
    let mut out = String::new();
    out += &histogram_text(&call(&mut c, &["LATENCY", "HISTOGRAM"]));
    out += "--\n";
    let some = call(
        &mut c,
        &[
            "LATENCY",
            "HISTOGRAM",
            "SET",
            "debug",
            "client",
            "nosuch",
            "get|x",
        ],
    );
    out += &histogram_text(&some);
    out += "--\n";
    // Default, configured and empty percentile lists; the default restored last.
    for percentiles in ["50 99 99.9", "0 99.99 100", ""] {
        let set = [
            "CONFIG",
            "SET",
            "latency-tracking-info-percentiles",
            percentiles,
        ];
        call(&mut admin, &set);
        out += &latencystats_text(&call(&mut c, &["INFO", "latencystats"]));
    }
    call(
        &mut admin,
        &[
            "CONFIG",
            "SET",
            "latency-tracking-info-percentiles",
            "50 99 99.9",
        ],
    );

    // The monitor saw the sleep, and only the sleep.
    let latest = call(&mut c, &["LATENCY", "LATEST"]);
    for e in latest.arr() {
        let f = e.arr();
        out += &format!("latest {}\n", f[0].text());
        assert!((f[1].int() - now()).abs() < 60, "{f:?}");
        assert!(f[2].int() >= 40 && f[3].int() >= f[2].int(), "{f:?}");
    }
    let history = call(&mut c, &["LATENCY", "HISTORY", "command"]);
    out += &format!("history samples={}\n", history.arr().len());
    out += &numbers_out(&call(&mut c, &["LATENCY", "GRAPH", "command"]).text());
    out += &numbers_out(&call(&mut c, &["LATENCY", "DOCTOR"]).text());

    // Tracking off: no new samples, no INFO lines, the histograms stay.
    call(&mut admin, &["CONFIG", "SET", "latency-tracking", "no"]);
    call(&mut c, &["SET", "a", "1"]);
    out += &histogram_text(&call(&mut c, &["LATENCY", "HISTOGRAM", "set"]));
    out += &latencystats_text(&call(&mut c, &["INFO", "latencystats"]));
    call(&mut admin, &["CONFIG", "SET", "latency-tracking", "yes"]);
    call(
        &mut admin,
        &["CONFIG", "SET", "latency-monitor-threshold", "0"],
    );
    out += &format!(
        "reset {:?}\n",
        call(&mut admin, &["LATENCY", "RESET"]).int()
    );
    out
}

#[test]
fn latency_matches_redis() {
    let mut pair = Pair::start();
    for resp3 in [false, true] {
        let want = run(&pair.oracle, resp3);
        let got = run(&pair.dut, resp3);
        if std::env::var("COMPAT_DUMP").is_ok() {
            eprintln!("{got}");
        }
        if want != got {
            let logs = pair.keep_logs();
            panic!(
                "LATENCY differs (RESP{}):\nredis:\n{want}\ndamselfly:\n{got}\n{logs}",
                if resp3 { 3 } else { 2 }
            );
        }
        assert!(want.contains("debug calls=1 buckets=[67633]"), "{want}");
        assert!(want.contains("latest command"), "{want}");
        assert!(want.contains("Dave, I have observed"), "{want}");
    }
}
