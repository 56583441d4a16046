//! Black-box tests: the real `damselfly` binary on a free loopback port, driven through the
//! `redis` crate (what applications use) and through raw sockets (byte-exact checks).

mod common;

use common::{read_to_close, roundtrip, Server};
use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn set_get_through_a_real_client() {
    let s = Server::start(&["--proactor_threads", "2"]);
    let mut c = s.conn();
    let _: () = redis::cmd("SET")
        .arg("greeting")
        .arg("hello")
        .query(&mut c)
        .unwrap();
    let v: String = redis::cmd("GET").arg("greeting").query(&mut c).unwrap();
    assert_eq!(v, "hello");
    let missing: Option<String> = redis::cmd("GET").arg("nope").query(&mut c).unwrap();
    assert_eq!(missing, None);
    let n: i64 = redis::cmd("DEL")
        .arg("greeting")
        .arg("nope")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn thousands_of_pipelined_commands_answer_in_order() {
    let s = Server::start(&["--proactor_threads", "2"]);
    let mut raw = s.raw();
    let mut req = Vec::new();
    let mut expect = Vec::new();
    for i in 0..5000 {
        let k = format!("k{i}");
        let v = format!("{i}");
        req.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{}\r\n${}\r\n{}\r\n",
                k.len(),
                k,
                v.len(),
                v
            )
            .as_bytes(),
        );
        req.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n${}\r\n{}\r\n", k.len(), k).as_bytes());
        expect.extend_from_slice(b"+OK\r\n");
        expect.extend_from_slice(format!("${}\r\n{}\r\n", v.len(), v).as_bytes());
    }
    let got = roundtrip(&mut raw, &req, expect.len());
    assert_eq!(got.len(), expect.len());
    assert!(got == expect, "pipelined replies out of order");
}

#[test]
fn protocol_error_gets_redis_text_and_closes() {
    let s = Server::start(&[]);
    let mut raw = s.raw();
    raw.write_all(b"*1\r\n$4\r\nPING\r\n*abc\r\n").unwrap();
    let (out, closed) = read_to_close(&mut raw);
    assert_eq!(
        out,
        b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"
    );
    assert!(closed);
    let mut raw = s.raw();
    raw.write_all(b"SET \"unbalanced x\r\n").unwrap();
    let (out, closed) = read_to_close(&mut raw);
    assert_eq!(
        out,
        b"-ERR Protocol error: unbalanced quotes in request\r\n"
    );
    assert!(closed);
}

#[test]
fn inline_commands_work() {
    let s = Server::start(&[]);
    let mut raw = s.raw();
    let out = roundtrip(&mut raw, b"SET k \"a b\"\r\nGET k\r\nPING\r\n", 5 + 9 + 7);
    assert_eq!(out, b"+OK\r\n$3\r\na b\r\n+PONG\r\n");
}

#[test]
fn oversized_bulk_is_rejected() {
    let s = Server::start(&["--proto_max_bulk_len", "1mb"]);
    let mut raw = s.raw();
    raw.write_all(b"*2\r\n$3\r\nGET\r\n$2000000\r\n").unwrap();
    let (out, closed) = read_to_close(&mut raw);
    assert_eq!(out, b"-ERR Protocol error: invalid bulk length\r\n");
    assert!(closed);
}

#[test]
fn hello_3_switches_to_resp3() {
    let s = Server::start(&[]);
    let mut raw = s.raw();
    raw.write_all(b"HELLO 3\r\n").unwrap();
    let mut buf = vec![0u8; 4096];
    let n = std::io::Read::read(&mut raw, &mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let out = roundtrip(&mut raw, b"GET missing\r\n", 3);
    assert_eq!(out, b"_\r\n");
}

#[test]
fn multi_key_writes_are_atomic_across_shards() {
    let s = Server::start(&["--proactor_threads", "4"]);
    let keys: Vec<String> = (0..8).map(|i| format!("atomic:{i}")).collect();
    let writer_keys = keys.clone();
    let client = s.client();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut c = client.get_connection().unwrap();
        let mut i = 0u64;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let mut cmd = redis::cmd("MSET");
            for k in &writer_keys {
                cmd.arg(k).arg(i);
            }
            let _: () = cmd.query(&mut c).unwrap();
            i += 1;
        }
    });
    let mut c = s.conn();
    for _ in 0..2000 {
        let vals: Vec<Option<u64>> = redis::cmd("MGET").arg(&keys).query(&mut c).unwrap();
        if vals[0].is_some() {
            assert!(
                vals.iter().all(|v| *v == vals[0]),
                "torn MSET seen by MGET: {vals:?}"
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn concurrent_multi_shard_transactions_never_tear() {
    // Several writers (MSET of one value to every key, DEL of every key) race on keys spread
    // over 4 shards; readers must see all-equal or all-missing through MGET, and single-key
    // GETs issued one after another must never go backwards (a GET waits for an MSET that
    // holds its key, so a newer value on one key implies it on the keys read after).
    let s = Server::start(&["--proactor_threads", "4"]);
    let keys: Vec<String> = (0..8).map(|i| format!("tear:{i}")).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..3u64 {
        let (client, keys, stop) = (s.client(), keys.clone(), stop.clone());
        writers.push(std::thread::spawn(move || {
            let mut c = client.get_connection().unwrap();
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if w == 2 && i.is_multiple_of(5) {
                    let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut c).unwrap();
                } else {
                    let mut cmd = redis::cmd("MSET");
                    for k in &keys {
                        cmd.arg(k).arg(i * 4 + w);
                    }
                    let _: () = cmd.query(&mut c).unwrap();
                }
                i += 1;
            }
        }));
    }
    let mut c = s.conn();
    let mut seen_values = 0;
    for _ in 0..1500 {
        let vals: Vec<Option<u64>> = redis::cmd("MGET").arg(&keys).query(&mut c).unwrap();
        assert!(
            vals.iter().all(|v| *v == vals[0]),
            "torn multi-key write seen by MGET: {vals:?}"
        );
        if vals[0].is_some() {
            seen_values += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert!(seen_values > 0, "the readers never saw a written value");

    // One writer with increasing values: a GET must never show a value older than one an
    // earlier GET of the same pass showed on another key.
    let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut c).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (client, keys, stop) = (s.client(), keys.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut c = client.get_connection().unwrap();
            let mut i = 1u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut cmd = redis::cmd("MSET");
                for k in &keys {
                    cmd.arg(k).arg(i);
                }
                let _: () = cmd.query(&mut c).unwrap();
                i += 1;
            }
        })
    };
    for _ in 0..500 {
        let mut prev = 0u64;
        for k in &keys {
            let v: Option<u64> = redis::cmd("GET").arg(k).query(&mut c).unwrap();
            let v = v.unwrap_or(0);
            assert!(
                v >= prev,
                "GET {k} saw {v} after an earlier key showed {prev}"
            );
            prev = v;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn requirepass_requires_auth() {
    let s = Server::start(&["--requirepass", "s3cret"]);
    let mut raw = s.raw();
    let out = roundtrip(&mut raw, b"GET k\r\n", 34);
    assert_eq!(out, b"-NOAUTH Authentication required.\r\n");
    let out = roundtrip(&mut raw, b"AUTH nope\r\n", 10);
    assert!(
        out.starts_with(b"-WRONGPASS"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let out = roundtrip(&mut raw, b"AUTH s3cret\r\nGET k\r\n", 10);
    assert_eq!(out, b"+OK\r\n$-1\r\n");
}

#[test]
fn dfly_environment_variables_set_flags() {
    let s = Server::start_env(&[], &[("DFLY_requirepass", "fromenv")]);
    let mut raw = s.raw();
    let out = roundtrip(&mut raw, b"AUTH fromenv\r\n", 5);
    assert_eq!(out, b"+OK\r\n");
}

#[test]
fn flagfile_sets_flags() {
    let dir = std::env::temp_dir().join(format!("damselfly-flagfile-{}", std::process::id()));
    std::fs::write(&dir, "# comment\n--requirepass=fromfile\n").unwrap();
    let s = Server::start(&["--flagfile", dir.to_str().unwrap()]);
    let mut raw = s.raw();
    let out = roundtrip(&mut raw, b"AUTH fromfile\r\n", 5);
    assert_eq!(out, b"+OK\r\n");
    let _ = std::fs::remove_file(dir);
}

#[test]
fn unknown_flag_is_a_clear_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_damselfly"))
        .arg("--no_such_flag=1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no_such_flag"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_damselfly"))
        .args(["--port", "notaport"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn dragonfly_command_lines_start() {
    // The command lines our users run for Dragonfly must start the server.
    for args in [
        vec![
            "--maxmemory",
            "512mb",
            "--proactor_threads",
            "2",
            "--cache_mode",
            "true",
        ],
        vec![
            "--snapshot_cron",
            "0 */6 * * *",
            "--dir",
            "/tmp",
            "--dbfilename",
            "dump.rdb",
        ],
        vec!["--cluster_mode=emulated", "--logtostderr"],
        vec!["--maxmemory-policy=allkeys-lru", "--dbnum", "4"],
    ] {
        let s = Server::start(&args);
        let mut c = s.conn();
        let pong: String = redis::cmd("PING").query(&mut c).unwrap();
        assert_eq!(pong, "PONG", "{args:?}");
    }
}

#[test]
fn maxclients_rejects_extra_connections() {
    let s = Server::start(&["--maxclients", "2"]);
    // Both first clients are registered once they have had a reply.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut r = s.raw();
        r.write_all(b"PING\r\n").unwrap();
        let mut buf = [0u8; 7];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"+PONG\r\n");
        held.push(r);
    }
    let mut c = s.raw();
    let (out, _) = read_to_close(&mut c);
    assert_eq!(out, b"-ERR max number of clients reached\r\n");
}

#[test]
fn idle_timeout_closes_connections() {
    let s = Server::start(&["--timeout", "1"]);
    let mut c = s.raw();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (_, closed) = read_to_close(&mut c);
    assert!(closed, "idle client was not closed");
}

#[test]
fn keys_expire_lazily_and_actively() {
    let s = Server::start(&["--proactor_threads", "2"]);
    let mut c = s.conn();
    let _: () = redis::cmd("SET")
        .arg("short")
        .arg("v")
        .arg("PX")
        .arg(50)
        .query(&mut c)
        .unwrap();
    std::thread::sleep(Duration::from_millis(120));
    let v: Option<String> = redis::cmd("GET").arg("short").query(&mut c).unwrap();
    assert_eq!(v, None);
    for i in 0..2000 {
        let _: () = redis::cmd("SET")
            .arg(format!("t{i}"))
            .arg("v")
            .arg("PX")
            .arg(30)
            .query(&mut c)
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(800));
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 0, "active expiry left keys behind");
}

#[test]
fn shutdown_command_and_sigterm_stop_cleanly() {
    let mut s = Server::start(&[]);
    let mut raw = s.raw();
    raw.write_all(b"SHUTDOWN NOSAVE\r\n").unwrap();
    assert_eq!(s.wait_exit(Duration::from_secs(5)), Some(0));

    let mut s = Server::start(&["--proactor_threads", "2"]);
    unsafe_kill(s.pid(), 15);
    assert_eq!(s.wait_exit(Duration::from_secs(5)), Some(0));
}

fn unsafe_kill(pid: u32, sig: i32) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

#[test]
fn client_setinfo_and_no_touch_like_redis_7_2() {
    let s = Server::start(&[]);
    let mut raw = s.raw();
    let out = roundtrip(
        &mut raw,
        b"CLIENT SETINFO lib-name mylib\r\nCLIENT SETINFO lib-ver 1.0\r\nCLIENT NO-TOUCH on\r\n",
        15,
    );
    assert_eq!(out, b"+OK\r\n+OK\r\n+OK\r\n");
    let out = roundtrip(&mut raw, b"CLIENT SETINFO lib-name \"a b\"\r\n", 10);
    assert_eq!(
        out,
        b"-ERR lib-name cannot contain spaces, newlines or special characters.\r\n"
    );
    let out = roundtrip(&mut raw, b"CLIENT INFO\r\n", 20);
    let text = String::from_utf8_lossy(&out).into_owned();
    let mut text = text;
    while !text.ends_with("\n\r\n") {
        let more = roundtrip(&mut raw, b"", 1);
        if more.is_empty() {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&more));
    }
    assert!(text.contains("lib-name=mylib lib-ver=1.0"), "{text}");
    assert!(text.contains("flags=T"), "{text}");
}

/// Replies that another shard writes straight to the socket (a one-command batch on a key of
/// the other shard) stay in order with replies this connection writes, also when they are too
/// big for the socket buffer and the client reads slowly (the shard then hands the rest back).
#[test]
fn replies_written_by_other_shards_stay_in_order_when_big_and_read_slowly() {
    let s = Server::start(&["--proactor_threads", "2"]);
    let mut c = s.conn();
    // Keys on both shards (whichever this connection's thread is), values of 1 KB to 6 MB.
    let sizes = [1024usize, 6 << 20, 3 << 20, 17, 5 << 20];
    let mut expect = Vec::new();
    for i in 0..12 {
        let k = format!("big:{i}");
        let v: Vec<u8> = (0..sizes[i % sizes.len()])
            .map(|j| b'a' + ((i + j) % 26) as u8)
            .collect();
        let _: () = redis::cmd("SET").arg(&k).arg(&v).query(&mut c).unwrap();
        expect.push((k, v));
    }
    let mut raw = s.raw();
    for (k, v) in &expect {
        // GET and PING in separate writes, with pauses and nothing read: each is its own
        // batch, the GET's reply fills the socket buffer, and PING's reply must wait for it.
        let get = format!("*2\r\n$3\r\nGET\r\n${}\r\n{}\r\n", k.len(), k);
        raw.write_all(get.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        raw.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let mut want = format!("${}\r\n", v.len()).into_bytes();
        want.extend_from_slice(v);
        want.extend_from_slice(b"\r\n+PONG\r\n");
        let mut got = vec![0u8; want.len()];
        raw.read_exact(&mut got).unwrap();
        assert!(got == want, "reply for {k} corrupted or out of order");
    }
    // A pipeline of GETs sent without reading anything, then read all at once.
    let mut req = Vec::new();
    let mut want = Vec::new();
    for (k, v) in expect.iter().rev() {
        req.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n${}\r\n{}\r\n", k.len(), k).as_bytes());
        want.extend_from_slice(format!("${}\r\n", v.len()).as_bytes());
        want.extend_from_slice(v);
        want.extend_from_slice(b"\r\n");
    }
    let got = roundtrip(&mut raw, &req, want.len());
    assert!(
        got == want,
        "pipelined big replies corrupted or out of order"
    );
}

/// `client-query-buffer-limit` as Redis: checked after every read, before anything runs, so a
/// request still arriving (a big argument too) cannot grow past it; deep pipelines of small
/// requests never hit it.
#[test]
fn query_buffer_limit_closes_a_client_whose_pending_request_grows_past_it() {
    let s = Server::start(&["--client-query-buffer-limit", "1mb"]);
    let header = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n";
    // 1.5 MB of a 3 MB argument: over the limit, closed without a reply (a 3 MB argument can
    // never be sent under a 1 MB limit, in Redis either).
    let mut raw = s.raw();
    raw.write_all(header).unwrap();
    let _ = raw.write_all(&vec![b'x'; 1_500_000]);
    let (out, closed) = read_to_close(&mut raw);
    assert!(
        out.is_empty(),
        "no reply expected, got {:?}",
        &out[..out.len().min(60)]
    );
    assert!(closed);
    // A 900 KB argument arriving in two parts stays under the limit and is served.
    let mut raw = s.raw();
    raw.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$900000\r\n")
        .unwrap();
    raw.write_all(&vec![b'x'; 500_000]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut rest = vec![b'x'; 400_000];
    rest.extend_from_slice(b"\r\n");
    assert_eq!(roundtrip(&mut raw, &rest, 5), b"+OK\r\n");
    // 2 MB of small pipelined requests in one go: each read is parsed and run, nothing waits.
    let one = b"*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n";
    let n = 2_000_000 / one.len();
    let req: Vec<u8> = one.iter().copied().cycle().take(one.len() * n).collect();
    let got = roundtrip(&mut raw, &req, 9 * n);
    assert_eq!(got.len(), 9 * n);
    assert!(got.chunks(9).all(|c| c == b"$3\r\nabc\r\n"));
}

/// A MULTI queue counts against `client-query-buffer-limit` too: queued commands are input
/// not yet run, so a client that keeps queueing is closed instead of growing without bound.
#[test]
fn a_multi_queue_past_the_query_buffer_limit_closes_the_client() {
    let s = Server::start(&["--client-query-buffer-limit", "1mb"]);
    let mut raw = s.raw();
    assert_eq!(roundtrip(&mut raw, b"MULTI\r\n", 5), b"+OK\r\n");
    let value = "v".repeat(10_000);
    let one = format!("SET k {value}\r\n");
    // 60 commands of 10 KB: 600 KB queued, under the limit.
    let batch: String = one.repeat(60);
    let got = roundtrip(&mut raw, batch.as_bytes(), 9 * 60);
    assert!(got.chunks(9).all(|c| c == b"+QUEUED\r\n"));
    // 60 more: past 1 MB, closed.
    raw.write_all(batch.as_bytes()).unwrap();
    let (_, closed) = read_to_close(&mut raw);
    assert!(closed, "the client must be closed");
    // Others are served, and nothing of the queue ran.
    let mut c = s.conn();
    let v: Option<String> = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v, None);
}

/// CLIENT KILL closes another connection that sits waiting for input (its socket's read side
/// is shut, so its read ends at once), and CLIENT LIST's idle= counts from its last command.
#[test]
fn client_kill_closes_an_idle_connection_on_another_thread() {
    let s = Server::start(&["--proactor_threads", "2"]);
    let mut victims = Vec::new();
    for i in 0..4 {
        let mut v = s.raw();
        let got = roundtrip(&mut v, format!("CLIENT SETNAME v{i}\r\n").as_bytes(), 5);
        assert_eq!(got, b"+OK\r\n");
        victims.push(v);
    }
    std::thread::sleep(Duration::from_millis(2100));
    let mut c = s.conn();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
    let v0 = list.lines().find(|l| l.contains("name=v0")).unwrap();
    assert!(v0.contains(" idle=2 "), "{v0}");
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("USER")
        .arg("default")
        .arg("SKIPME")
        .arg("yes")
        .query(&mut c)
        .unwrap();
    assert_eq!(killed, 4);
    for mut v in victims {
        v.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut b = [0u8; 16];
        assert_eq!(
            v.read(&mut b).unwrap_or(usize::MAX),
            0,
            "killed connection not closed"
        );
    }
}
