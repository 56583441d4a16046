//! SLOWLOG, differential: with `slowlog-log-slower-than 0` (every command logged) the same
//! session runs against redis-server and damselfly, and SLOWLOG GET must answer the same
//! bytes once each entry's timestamp, duration and client port are replaced by placeholders
//! (ids are compared relative to the newest). RESP2 and RESP3.
//!
//! What it covers: which commands are logged (a WAIT that blocked is not, in Redis 7.0), the
//! order (newest first), arguments cut at 32 and at 128 bytes, AUTH and HELLO passwords
//! redacted, the client name set by the logged command itself, `slowlog-max-len` trimming,
//! RESET (entries go, ids go on), GET's count.

use damselfly_compat::{escape, split_aggregate, Pair, RespConn, ServerProc};

/// One request per entry; each reply is read before the next is sent.
fn session() -> Vec<Vec<Vec<u8>>> {
    let mut s: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut add = |v: &[&[u8]]| s.push(v.iter().map(|a| a.to_vec()).collect());
    add(&[b"SET", b"a", b"1"]);
    add(&[b"CLIENT", b"SETNAME", b"watched"]);
    add(&[b"GET", b"a"]);
    add(&[b"MSET", b"k1", b"v1", b"k2", b"v2", b"k3", b"v3"]);
    add(&[b"AUTH", b"secret"]);
    add(&[b"AUTH", b"user", b"secret"]);
    add(&[b"HELLO", b"2", b"AUTH", b"user", b"secret"]);
    add(&[b"WAIT", b"1", b"10"]);
    add(&[b"WAIT", b"0", b"0"]);
    add(&[b"NOSUCHCOMMAND"]);
    add(&[b"GET"]);
    add(&[b"ECHO", b"bin\x00\xff\r\n"]);
    let long = vec![b'x'; 300];
    add(&[b"SET", b"long", &long]);
    let mut del: Vec<Vec<u8>> = vec![b"DEL".to_vec()];
    del.extend((0..40).map(|i| format!("key:{i}").into_bytes()));
    s.push(del);
    s
}

/// Entry fields replaced by placeholders: `[id-base, T, D, args, peer-name, client-name]`.
fn normalize(reply: &[u8], names: &[(String, &str)]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (_, entries) = split_aggregate(reply).expect("SLOWLOG GET is an array");
    let int = |u: &[u8]| -> i64 {
        std::str::from_utf8(&u[1..u.len() - 2])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an integer: {}", escape(u)))
    };
    let base = entries
        .first()
        .map(|e| int(split_aggregate(e).expect("entry").1[0]))
        .unwrap_or(0);
    let mut out = String::new();
    for e in &entries {
        let (_, f) = split_aggregate(e).expect("an entry is an array");
        assert_eq!(f.len(), 6, "{}", escape(e));
        let t = int(f[1]);
        assert!((t - now).abs() < 60, "time {t} is not now ({now})");
        assert!(int(f[2]) >= 0);
        let peer = String::from_utf8_lossy(
            &f[4][f[4].iter().position(|&b| b == b'\n').unwrap() + 1..f[4].len() - 2],
        )
        .into_owned();
        let who = names
            .iter()
            .find(|(a, _)| *a == peer)
            .map(|(_, n)| *n)
            .unwrap_or_else(|| panic!("unknown peer {peer}"));
        out.push_str(&format!(
            "[{} T D {} {} {}]\n",
            base - int(f[0]),
            escape(f[3]),
            who,
            escape(f[5])
        ));
    }
    out
}

fn run(server: &ServerProc, resp3: bool) -> (String, Vec<u8>) {
    let mut admin = server.connect();
    let mut c = server.connect();
    let names = vec![
        (admin.local_addr().to_string(), "A"),
        (c.local_addr().to_string(), "C"),
    ];
    let mut seen = Vec::new();
    let call = |conn: &mut RespConn, args: &[&[u8]]| -> Vec<u8> { conn.call(args).expect("reply") };
    if resp3 {
        call(&mut c, &[b"HELLO", b"3"]);
    }
    call(
        &mut admin,
        &[b"CONFIG", b"SET", b"slowlog-log-slower-than", b"0"],
    );
    call(&mut admin, &[b"SLOWLOG", b"RESET"]);
    for req in session() {
        let args: Vec<&[u8]> = req.iter().map(|a| a.as_slice()).collect();
        call(&mut c, &args);
    }
    let all = call(&mut c, &[b"SLOWLOG", b"GET", b"-1"]);
    let mut text = normalize(&all, &names);
    // GET's count, LEN, trimming to slowlog-max-len, RESET.
    for req in [
        &[b"SLOWLOG".as_slice(), b"GET"][..],
        &[b"SLOWLOG", b"GET", b"2"],
        &[b"SLOWLOG", b"GET", b"0"],
    ] {
        let r = call(&mut c, req);
        text.push_str(&format!(
            "count: {}\n",
            normalize(&r, &names).lines().count()
        ));
    }
    seen.extend(call(&mut c, &[b"SLOWLOG", b"LEN"]));
    call(&mut admin, &[b"CONFIG", b"SET", b"slowlog-max-len", b"3"]);
    seen.extend(call(&mut c, &[b"SLOWLOG", b"LEN"]));
    text.push_str(&normalize(&call(&mut c, &[b"SLOWLOG", b"GET"]), &names));
    call(&mut admin, &[b"SLOWLOG", b"RESET"]);
    seen.extend(call(&mut c, &[b"SLOWLOG", b"LEN"]));
    text.push_str(&normalize(&call(&mut c, &[b"SLOWLOG", b"GET"]), &names));
    call(&mut admin, &[b"CONFIG", b"SET", b"slowlog-max-len", b"128"]);
    call(
        &mut admin,
        &[b"CONFIG", b"SET", b"slowlog-log-slower-than", b"10000"],
    );
    (text, seen)
}

#[test]
fn slowlog_matches_redis() {
    let mut pair = Pair::start();
    for resp3 in [false, true] {
        let want = run(&pair.oracle, resp3);
        let got = run(&pair.dut, resp3);
        if std::env::var("COMPAT_DUMP").is_ok() {
            eprintln!("{}\n{}", got.0, escape(&got.1));
        }
        if want != got {
            let logs = pair.keep_logs();
            panic!(
                "SLOWLOG differs (RESP{}):\nredis:\n{}{}\ndamselfly:\n{}{}\n{logs}",
                if resp3 { 3 } else { 2 },
                want.0,
                escape(&want.1),
                got.0,
                escape(&got.1)
            );
        }
        assert!(
            want.0.contains("(redacted)"),
            "the session logs a redacted password"
        );
        assert!(
            want.0.contains("more arguments"),
            "the session logs a cut command"
        );
    }
}
