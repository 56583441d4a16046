//! Multi-client sessions for differential tests of pushes (CLIENT TRACKING, Pub/Sub): a
//! script of steps, each a command one client sends, run against one server; after every
//! step each client answers a PING, and what it received before the PONG is that step's
//! output for it. Run on both servers, the transcripts must be equal.
//!
//! Step lines: a command (`$NAME` stands for client NAME's id), `send A ; B ; C` (commands in
//! one write, no reply awaited: for CLIENT REPLY OFF), `sleep N` (ms; what arrives meanwhile
//! counts for the next step), `close NAME`.
//! A HELLO's reply is not compared (it names the version and the client's id). In what a
//! client received, ids after `redirect` / `tracking-redir-broken` are replaced by names, and
//! each run of consecutive messages (pushes, RESP2 `message`/`pmessage`/`smessage` arrays) is
//! sorted: the order of messages from different shards, or of several patterns matching one
//! channel, is not fixed (Redis's is its dict's hash order).

use crate::{escape, frame_end, RespConn, ServerProc};
use std::time::Duration;

/// Replaces the integer after `redirect` / `tracking-redir-broken` by the client's name.
fn name_ids(raw: &[u8], ids: &[(i64, &str)]) -> Vec<u8> {
    let mut out = raw.to_vec();
    for tag in [
        &b"$8\r\nredirect\r\n:"[..],
        b"$21\r\ntracking-redir-broken\r\n:",
    ] {
        let mut from = 0;
        while let Some(p) = out[from..].windows(tag.len()).position(|w| w == tag) {
            let start = from + p + tag.len();
            let end = start
                + out[start..]
                    .iter()
                    .position(|&b| b == b'\r')
                    .unwrap_or(out.len() - start);
            let n: i64 = std::str::from_utf8(&out[start..end])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(i64::MIN);
            if let Some((_, name)) = ids.iter().find(|(id, _)| *id == n) {
                out.splice(start..end, name.bytes());
            }
            from = start;
        }
    }
    out
}

fn is_message(v: &[u8]) -> bool {
    v.starts_with(b">")
        || v.starts_with(b"*3\r\n$7\r\nmessage\r\n")
        || v.starts_with(b"*4\r\n$8\r\npmessage\r\n")
        || v.starts_with(b"*3\r\n$8\r\nsmessage\r\n")
}

/// Splits `raw` into RESP values and sorts each run of consecutive messages.
pub fn canonical(raw: &[u8]) -> Vec<Vec<u8>> {
    let mut vals = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        match frame_end(raw, at) {
            Ok(Some(end)) => {
                vals.push(raw[at..end].to_vec());
                at = end;
            }
            _ => {
                vals.push(raw[at..].to_vec());
                break;
            }
        }
    }
    let mut i = 0;
    while i < vals.len() {
        let mut j = i;
        while j < vals.len() && is_message(&vals[j]) {
            j += 1;
        }
        if j > i {
            vals[i..j].sort();
            i = j;
        } else {
            i += 1;
        }
    }
    vals
}

/// PING's answer: `+PONG`, or in a RESP2 connection in Pub/Sub mode `["pong", ""]`.
fn is_pong(v: &[u8]) -> bool {
    v == b"+PONG\r\n" || v == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
}

/// Runs `steps` on `server` with `clients` (name, speaks RESP3); returns the transcript.
pub fn run_session(
    server: &ServerProc,
    clients: &[(&str, bool)],
    steps: &[(&str, &str)],
) -> Vec<String> {
    let mut conns: Vec<Option<RespConn>> = clients.iter().map(|_| Some(server.connect())).collect();
    let mut ids = Vec::new();
    for (i, (name, resp3)) in clients.iter().enumerate() {
        let c = conns[i].as_mut().expect("open");
        if *resp3 {
            c.call(&["HELLO", "3"]).expect("HELLO 3");
        }
        let id = c.call(&["CLIENT", "ID"]).expect("CLIENT ID");
        let id: i64 = String::from_utf8_lossy(&id[1..id.len() - 2])
            .parse()
            .expect("an id");
        ids.push((id, *name));
    }
    let idx = |n: &str| {
        clients
            .iter()
            .position(|(x, _)| *x == n)
            .unwrap_or_else(|| panic!("no client {n}"))
    };
    let mut transcript = Vec::new();
    for &(who, line) in steps {
        let mut first = Vec::new();
        if let Some(ms) = line.strip_prefix("sleep ") {
            // Not a step of its own: what arrives meanwhile (an active expiry, say) counts
            // for the next step, so a race between lazy and active expiry cannot move it.
            std::thread::sleep(Duration::from_millis(ms.parse().expect("ms")));
            continue;
        } else if let Some(victim) = line.strip_prefix("close ") {
            if let Some(c) = conns[idx(victim)].take() {
                c.shutdown();
            }
            std::thread::sleep(Duration::from_millis(100));
        } else {
            // Shown as written: the ids differ between the servers.
            let mut sent = line.to_string();
            for (id, name) in &ids {
                sent = sent.replace(&format!("${name}"), &id.to_string());
            }
            let c = conns[idx(who)].as_mut().expect("open");
            if let Some(cmds) = sent.strip_prefix("send ") {
                // Several commands in one write, no reply awaited (CLIENT REPLY OFF ...):
                // everything they caused is read with the PING below.
                for cmd in cmds.split(" ; ") {
                    let args = damselfly_resp::split_args(cmd.as_bytes()).expect("args");
                    c.send(&args).expect("send");
                }
                first = Vec::new();
            } else {
                let args = damselfly_resp::split_args(sent.as_bytes()).expect("args");
                // The reply is read before anything else is sent: Redis sends some messages
                // (BCAST invalidations) once per event-loop iteration, so a PING read together
                // with the command would put them after that PING's reply.
                let reply = c.call(&args).expect("call");
                if !line.starts_with("HELLO") {
                    first = reply;
                }
            }
        }
        // The sender first: its PONG says the step ran everywhere it had to.
        let sender = idx(who);
        let mut order: Vec<usize> = vec![sender];
        order.extend((0..clients.len()).filter(|&i| i != sender));
        let mut step = vec![None; clients.len()];
        for i in order {
            let Some(c) = conns[i].as_mut() else { continue };
            c.send(&["PING"]).expect("send PING");
            let mut got = if i == sender {
                std::mem::take(&mut first)
            } else {
                Vec::new()
            };
            loop {
                let v = c.read_reply().expect("read");
                if is_pong(&v) {
                    break;
                }
                got.extend(v);
            }
            if got.is_empty() {
                continue;
            }
            let vals = canonical(&name_ids(&got, &ids));
            let shown: Vec<String> = vals.iter().map(|v| escape(v)).collect();
            step[i] = Some(format!(
                "{who}: {line} -> {}: {}",
                clients[i].0,
                shown.join(" ")
            ));
        }
        transcript.extend(step.into_iter().flatten());
    }
    transcript
}

/// Runs `steps` on both servers of `pair` and panics at the first step that differs.
pub fn assert_same_session(
    pair: &mut crate::Pair,
    clients: &[(&str, bool)],
    steps: &[(&str, &str)],
) -> Vec<String> {
    let want = run_session(&pair.oracle, clients, steps);
    let got = run_session(&pair.dut, clients, steps);
    if std::env::var("COMPAT_DUMP").is_ok() {
        for l in &got {
            eprintln!("{l}");
        }
    }
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        if w != g {
            let logs = pair.keep_logs();
            panic!("step {i} differs:\nredis:     {w}\ndamselfly: {g}\n{logs}");
        }
    }
    assert_eq!(
        want.len(),
        got.len(),
        "redis: {want:#?}\ndamselfly: {got:#?}"
    );
    want
}
