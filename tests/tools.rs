//! The tools users point at a server, run for real against damselfly (COMPAT.md, "Tools"):
//! redis-cli's `--scan`, `--bigkeys`, `--memkeys`, `--pipe`, `--latency`, `--stat`, MONITOR and
//! its interactive-style stdin mode. redis-cli comes with redis-tools, which `scripts/test.sh`
//! installs.

#[allow(dead_code)]
mod common;

use common::Server;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn redis_cli(s: &Server, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &s.port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli (redis-tools) must be installed: run scripts/test.sh");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A server on 2 threads with `key:0`..`key:999` (16-byte values) and one 5000-byte `big`.
fn filled() -> (Server, redis::Connection) {
    let s = Server::start(&["--proactor_threads", "2"]);
    let mut c = s.conn();
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(1000)
        .arg("key")
        .arg(16)
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg("b".repeat(5000))
        .query(&mut c)
        .unwrap();
    (s, c)
}

#[test]
fn scan_lists_every_key_once() {
    let (s, _c) = filled();
    let out = redis_cli(&s, &["--scan", "--pattern", "key:*"]);
    let mut keys: Vec<&str> = out.lines().collect();
    keys.sort_unstable();
    let mut want: Vec<String> = (0..1000).map(|i| format!("key:{i}")).collect();
    want.sort_unstable();
    assert_eq!(keys, want);
}

#[test]
fn bigkeys_and_memkeys_find_the_biggest_string() {
    let (s, _c) = filled();
    let out = redis_cli(&s, &["--bigkeys"]);
    assert!(
        out.contains("Biggest string found '\"big\"' has 5000 bytes"),
        "{out}"
    );
    assert!(out.contains("1001 strings with 21000 bytes"), "{out}");
    let out = redis_cli(&s, &["--memkeys"]);
    assert!(out.contains("Biggest string found '\"big\"' has"), "{out}");
    assert!(out.contains("1001 strings with"), "{out}");
}

#[test]
fn pipe_mode_loads_raw_protocol() {
    let s = Server::start(&["--proactor_threads", "2"]);
    let mut input = Vec::new();
    for i in 0..10_000 {
        let (k, v) = (format!("p:{i}"), i.to_string());
        input.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
                k.len(),
                v.len()
            )
            .as_bytes(),
        );
    }
    let mut child = Command::new("redis-cli")
        .args(["-p", &s.port.to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli (redis-tools) must be installed");
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("errors: 0, replies: 10000"), "{text}");
    let mut c = s.conn();
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 10_000);
    let v: String = redis::cmd("GET").arg("p:9999").query(&mut c).unwrap();
    assert_eq!(v, "9999");
}

#[test]
fn commands_from_stdin_answer_like_redis_cli_shows_redis() {
    let s = Server::start(&[]);
    let mut child = Command::new("redis-cli")
        .args(["-p", &s.port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli (redis-tools) must be installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SET greeting \"hello world\"\nGET greeting\nINCR n\nGET nosuch\nNOSUCH x\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "OK\nhello world\n1\n\nERR unknown command 'NOSUCH', with args beginning with: 'x' \n\n"
    );
}

#[test]
fn latency_mode_measures_pings() {
    let s = Server::start(&[]);
    // Without a terminal, --latency samples for a second and prints `min max avg samples`.
    let out = redis_cli(&s, &["--latency"]);
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(f.len(), 4, "{out}");
    let samples: u64 = f[3].parse().unwrap();
    assert!(samples > 10, "{out}");
    let min: u64 = f[0].parse().unwrap();
    let max: u64 = f[1].parse().unwrap();
    assert!(min <= max, "{out}");
}

#[test]
fn stat_mode_reads_info() {
    let (s, _c) = filled();
    // --stat writes to a terminal; `script` gives it one (bsdutils, part of every Debian).
    let mut child = Command::new("script")
        .args([
            "-qc",
            &format!("redis-cli -p {} --stat -i 0.2", s.port),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script (bsdutils)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut data_line = None;
    while Instant::now() < deadline {
        let Some(Ok(l)) = lines.next() else { break };
        // keys mem clients blocked requests connections
        if l.trim_start().starts_with("1001 ") {
            data_line = Some(l);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let l = data_line.expect("no --stat line with 1001 keys");
    let f: Vec<&str> = l.split_whitespace().collect();
    assert!(
        f[1].ends_with('M') || f[1].ends_with('K'),
        "memory column: {l}"
    );
    assert_eq!(f[2], "2", "clients column: {l}");
    assert_eq!(f[3], "0", "blocked column: {l}");
}

#[test]
fn monitor_through_redis_cli_shows_commands() {
    let s = Server::start(&["--proactor_threads", "2"]);
    let mut child = Command::new("redis-cli")
        .args(["-p", &s.port.to_string(), "monitor"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli (redis-tools) must be installed");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "OK");
    let mut c = s.conn();
    let _: () = redis::cmd("SET")
        .arg("seen")
        .arg("by monitor")
        .query(&mut c)
        .unwrap();
    // The client's handshake (CLIENT SETINFO ...) comes first.
    let mut seen = Vec::new();
    for l in lines.by_ref().take(10) {
        let l = l.unwrap();
        let done = l.ends_with("\"SET\" \"seen\" \"by monitor\"");
        seen.push(l);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.last()
            .is_some_and(|l| l.ends_with("\"SET\" \"seen\" \"by monitor\"")),
        "{seen:?}"
    );
}

#[test]
fn redis_benchmark_string_tests_run_clean() {
    // The default tests this server's commands cover (lists, sets, hashes and sorted sets
    // come with their families).
    let s = Server::start(&["--proactor_threads", "2"]);
    let out = Command::new("redis-benchmark")
        .args(["-p", &s.port.to_string(), "-q", "-n", "2000", "-c", "10"])
        .args(["-t", "ping_inline,ping_mbulk,set,get,incr,mset"])
        .output()
        .expect("redis-benchmark (redis-tools) must be installed");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("ERR") && !text.contains("rror"), "{text}");
    for t in [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "MSET (10 keys)",
    ] {
        assert!(
            // Progress lines end in CR and share a line with the result.
            text.split(['\r', '\n'])
                .flat_map(|l| l.split("   "))
                .map(str::trim)
                .any(|l| l.starts_with(&format!("{t}: ")) && l.contains("requests per second")),
            "no result for {t}: {text}"
        );
    }
}
