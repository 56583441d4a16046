//! Connection commands: PING ECHO QUIT RESET HELLO AUTH SELECT and the CLIENT family.
//!
//! Invariant: these touch only the calling connection (and the shared client registry for
//! CLIENT LIST/KILL/PAUSE); none reads or writes keys.

use super::{c_str, eq_ic, parse_i64, DB_INDEX, SYNTAX};
use crate::command::{LocalFut, TableBuilder};
use crate::conn::{Conn, ReplyMode};
use crate::globals::{ClientShared, Pause};
use bytes::Bytes;
use damselfly_resp::Protocol;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The Redis version we report: the feature level we follow (docs/compatibility.md).
pub const REDIS_VERSION: &str = "7.2.4";

pub fn register(t: &mut TableBuilder) {
    t.conn("ping", ping);
    t.conn("echo", echo);
    t.conn("quit", quit);
    t.conn("reset", reset);
    t.conn("monitor", monitor);
    t.conn("hello", hello);
    t.conn("auth", auth);
    t.conn("select", select);
    t.conn("client|id", client_id);
    t.conn("client|setname", client_setname);
    t.conn("client|getname", client_getname);
    t.conn("client|list", client_list);
    t.conn("client|info", client_info);
    t.coord("client|kill", client_kill);
    t.conn("client|no-evict", client_no_evict);
    t.conn("client|reply", client_reply);
    t.conn("client|pause", client_pause);
    t.conn("client|unpause", client_unpause);
    t.conn("client|unblock", client_unblock);
    t.conn("client|help", client_help);
    t.conn("client|tracking", client_tracking);
    t.conn("client|caching", client_caching);
    t.conn("client|getredir", client_getredir);
    t.conn("client|trackinginfo", client_trackinginfo);
    t.extra(
        "client|setinfo",
        -4,
        &["noscript", "loading", "stale"],
        client_setinfo,
    );
    t.extra(
        "client|no-touch",
        3,
        &["noscript", "loading", "stale"],
        client_no_touch,
    );
    t.extra(
        "client|capa",
        -3,
        &["noscript", "loading", "stale"],
        client_capa,
    );
}

/// CLIENT CAPA <capability>...: Redis 8's way for a client to say what it understands
/// (`redirect`: it follows -REDIRECT from a replica). Accepted, as Redis 8 accepts unknown
/// ones; a standalone master never redirects (docs/compatibility.md).
fn client_capa(c: &mut Conn, _args: &[Bytes]) {
    c.out.ok();
}

fn ping(c: &mut Conn, args: &[Bytes]) {
    // A RESP2 connection in Pub/Sub mode gets PING's answer in the shape of a message.
    if c.subs.total() != 0 && c.out.proto == Protocol::Resp2 && args.len() <= 2 {
        c.out.array(2);
        c.out.bulk(b"pong");
        c.out.bulk(args.get(1).map_or(&b""[..], |a| a.as_ref()));
        return;
    }
    match args.len() {
        1 => c.out.simple("PONG"),
        2 => c.out.bulk(&args[1]),
        _ => c.out.error(&crate::command::arity_error("ping")),
    }
}

fn echo(c: &mut Conn, args: &[Bytes]) {
    c.out.bulk(&args[1]);
}

fn quit(c: &mut Conn, _args: &[Bytes]) {
    c.out.ok();
    c.close_after_reply = true;
}

/// MONITOR: from now on every command the server runs comes to this connection as a line
/// (`crate::monitor`). A second MONITOR is ignored without a reply, as in Redis.
fn monitor(c: &mut Conn, _args: &[Bytes]) {
    if c.monitor {
        return;
    }
    let limit = crate::push::limit_of(&c.globals.config());
    c.globals.monitors.add(c.shared.pushes.clone(), limit);
    c.monitor = true;
    c.out.ok();
}

fn reset(c: &mut Conn, _args: &[Bytes]) {
    c.multi = None;
    crate::commands::transactions::unwatch(c);
    if std::mem::take(&mut c.monitor) {
        c.globals.monitors.remove(c.id);
    }
    c.globals.tracking.disable(&c.shared);
    crate::commands::pubsub::unsubscribe_all(c);
    c.tracking = crate::conn::TrackMode::default();
    c.caching = false;
    c.shared.resp3.store(false, Ordering::Relaxed);
    c.db = 0;
    c.out.proto = Protocol::Resp2;
    c.name.clear();
    c.reply_mode = ReplyMode::On;
    c.no_touch = false;
    c.no_evict = false;
    c.authenticated = c.requirepass.is_none();
    c.user = "default".into();
    c.out.simple("RESET");
}

/// Checks a user/password pair against the default user; Redis's error on failure.
fn check_auth(c: &Conn, user: &[u8], pass: &[u8]) -> Result<(), &'static str> {
    if user != b"default" {
        return Err("WRONGPASS invalid username-password pair or user is disabled.");
    }
    match &c.requirepass {
        None => Ok(()),
        Some(p) if p.as_slice() == pass => Ok(()),
        Some(_) => Err("WRONGPASS invalid username-password pair or user is disabled."),
    }
}

fn auth(c: &mut Conn, args: &[Bytes]) {
    if args.len() > 3 {
        c.out.error(SYNTAX);
        return;
    }
    let (user, pass): (&[u8], &[u8]) = if args.len() == 2 {
        (b"default", &args[1])
    } else {
        (&args[1], &args[2])
    };
    if args.len() == 2 && c.requirepass.is_none() {
        c.out.error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
        return;
    }
    match check_auth(c, user, pass) {
        Ok(()) => {
            c.authenticated = true;
            c.user = String::from_utf8_lossy(user).into_owned();
            c.out.ok();
        }
        Err(e) => c.out.error(e),
    }
}

/// Redis's rule for client names and lib names: printable ASCII without spaces.
fn valid_name(n: &[u8]) -> bool {
    n.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

fn hello(c: &mut Conn, args: &[Bytes]) {
    let mut ver = None;
    let mut i = 1;
    if args.len() >= 2 {
        match parse_i64(&args[1]) {
            Some(v) => {
                if !(2..=3).contains(&v) {
                    c.out.error("NOPROTO unsupported protocol version");
                    return;
                }
                ver = Some(v);
            }
            None => {
                c.out
                    .error("ERR Protocol version is not an integer or out of range");
                return;
            }
        }
        i = 2;
    }
    // Redis 7.0 applies the options in order: an AUTH that fails, an invalid SETNAME name or an
    // unknown option answers at once, and what came before it stays applied (a name set, a
    // successful AUTH).
    while i < args.len() {
        let more = args.len() - 1 - i;
        // strcasecmp on the argument as a C string: it ends at its first NUL.
        let opt = c_str(&args[i]);
        if eq_ic(opt, "auth") && more >= 2 {
            let (u, p) = (args[i + 1].clone(), args[i + 2].clone());
            if let Err(e) = check_auth(c, &u, &p) {
                c.out.error(e);
                return;
            }
            c.authenticated = true;
            c.user = String::from_utf8_lossy(&u).into_owned();
            i += 3;
        } else if eq_ic(opt, "setname") && more >= 1 {
            if !valid_name(&args[i + 1]) {
                c.out.error(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
                return;
            }
            c.name = args[i + 1].to_vec();
            i += 2;
        } else {
            // '%s' of the option: its bytes up to the first NUL, verbatim.
            let mut e = b"ERR Syntax error in HELLO option '".to_vec();
            e.extend_from_slice(opt);
            e.push(b'\'');
            c.out.error_bytes(&e);
            return;
        }
    }
    if c.requirepass.is_some() && !c.authenticated {
        c.out.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        return;
    }
    if let Some(v) = ver {
        c.out.proto = if v == 3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        };
        c.shared.resp3.store(v == 3, Ordering::Relaxed);
    }
    let r = &mut c.out;
    r.map(7);
    r.bulk(b"server");
    r.bulk(b"redis");
    r.bulk(b"version");
    r.bulk(REDIS_VERSION.as_bytes());
    r.bulk(b"proto");
    r.int(if r.proto == Protocol::Resp3 { 3 } else { 2 });
    r.bulk(b"id");
    r.int(c.id as i64);
    r.bulk(b"mode");
    r.bulk(if c.cluster_emulated {
        b"cluster" as &[u8]
    } else {
        b"standalone"
    });
    r.bulk(b"role");
    r.bulk(b"master");
    r.bulk(b"modules");
    r.array(0);
}

fn select(c: &mut Conn, args: &[Bytes]) {
    let idx = match super::databases::parse_int_arg(&args[1], None) {
        Ok(i) => i,
        Err(e) => {
            c.out.error(&e);
            return;
        }
    };
    if c.cluster_emulated && idx != 0 {
        c.out.error("ERR SELECT is not allowed in cluster mode");
        return;
    }
    if idx < 0 || idx as usize >= c.dbnum {
        c.out.error(DB_INDEX);
        return;
    }
    c.db = idx as usize;
    c.out.ok();
}

fn client_id(c: &mut Conn, _args: &[Bytes]) {
    c.out.int(c.id as i64);
}

fn client_setname(c: &mut Conn, args: &[Bytes]) {
    if !valid_name(&args[2]) {
        c.out
            .error("ERR Client names cannot contain spaces, newlines or special characters.");
        return;
    }
    c.name = args[2].to_vec();
    c.out.ok();
}

fn client_getname(c: &mut Conn, _args: &[Bytes]) {
    if c.name.is_empty() {
        c.out.null();
    } else {
        let n = c.name.clone();
        c.out.bulk(&n);
    }
}

/// One CLIENT LIST line, in Redis 7.2's field order.
fn client_line(cs: &ClientShared, me: Option<&Conn>) -> String {
    let info = cs.info.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let monitor = match me {
        Some(c) => c.monitor,
        None => info.monitor,
    };
    let (multi, dirty_cas) = match me {
        Some(c) => (
            crate::conn::multi_len(c),
            c.watching.as_ref().is_some_and(|w| w.flag.is_dirty()),
        ),
        None => (
            info.multi,
            info.watch.as_ref().is_some_and(|f| f.is_dirty()),
        ),
    };
    let (name, db, resp, cmd, idle, lib_name, lib_ver, no_evict, no_touch, user) = match me {
        Some(c) => (
            c.name.clone(),
            c.db,
            if c.out.proto == Protocol::Resp3 { 3 } else { 2 },
            c.last_cmd,
            0,
            c.lib_name.clone(),
            c.lib_ver.clone(),
            c.no_evict,
            c.no_touch,
            c.user.clone(),
        ),
        None => (
            info.name.clone(),
            info.db,
            info.resp,
            info.last_cmd,
            crate::shard::now_ms().saturating_sub(info.last_interaction_ms) / 1000,
            info.lib_name.clone(),
            info.lib_ver.clone(),
            info.no_evict,
            info.no_touch,
            info.user.clone(),
        ),
    };
    let mut flags = String::new();
    if monitor {
        flags.push('O');
    }
    let subs: Vec<usize> = cs.subs.iter().map(|n| n.load(Ordering::Relaxed)).collect();
    if subs.iter().any(|&n| n != 0) {
        flags.push('P');
    }
    if multi >= 0 {
        flags.push('x');
    }
    if cs.block.is_blocked() {
        flags.push('b');
    }
    let (redir, tracking_flags) = {
        let t = cs.tracking();
        let mut f = String::new();
        if t.on {
            f.push('t');
        }
        if t.broken_redir {
            f.push('R');
        }
        if t.bcast {
            f.push('B');
        }
        (if t.on { t.redirect as i64 } else { -1 }, f)
    };
    flags.push_str(&tracking_flags);
    if dirty_cas {
        flags.push('d');
    }
    if no_evict {
        flags.push('e');
    }
    if no_touch {
        flags.push('T');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir={} resp={} lib-name={} lib-ver={}",
        cs.id,
        cs.addr,
        cs.laddr,
        cs.fd,
        String::from_utf8_lossy(&name),
        cs.created.elapsed().as_secs(),
        idle,
        flags,
        db,
        subs[0],
        subs[1],
        subs[2],
        multi,
        info.qbuf,
        cmd,
        user,
        redir,
        resp,
        String::from_utf8_lossy(&lib_name),
        String::from_utf8_lossy(&lib_ver),
    )
}

/// A client's type as CLIENT LIST/KILL TYPE name it (Redis's `getClientType`: a MONITOR is
/// `normal`; no masters or replicas yet).
fn client_type(cs: &ClientShared) -> &'static str {
    if cs.in_pubsub() {
        "pubsub"
    } else {
        "normal"
    }
}

/// A TYPE argument, or Redis's error for an unknown one.
fn parse_client_type(t: &[u8]) -> Result<&'static str, String> {
    for (name, ty) in [
        ("normal", "normal"),
        ("master", "master"),
        ("replica", "replica"),
        ("slave", "replica"),
        ("pubsub", "pubsub"),
    ] {
        if eq_ic(t, name) {
            return Ok(ty);
        }
    }
    Err(format!(
        "ERR Unknown client type '{}'",
        String::from_utf8_lossy(t)
    ))
}

fn client_list(c: &mut Conn, args: &[Bytes]) {
    let mut ids: Option<Vec<u64>> = None;
    let mut typ = None;
    let mut i = 2;
    while i < args.len() {
        if eq_ic(&args[i], "type") && i + 1 < args.len() {
            match parse_client_type(&args[i + 1]) {
                Ok(t) => typ = Some(t),
                Err(e) => {
                    c.out.error(&e);
                    return;
                }
            }
            i += 2;
        } else if eq_ic(&args[i], "id") && i + 1 < args.len() {
            let mut v = ids.take().unwrap_or_default();
            for a in &args[i + 1..] {
                match parse_i64(a) {
                    Some(n) if n > 0 => v.push(n as u64),
                    _ => {
                        c.out.error("ERR Invalid client ID");
                        return;
                    }
                }
            }
            ids = Some(v);
            i = args.len();
        } else {
            c.out.error(SYNTAX);
            return;
        }
    }
    let clients: Vec<Arc<ClientShared>> = c.globals.clients().values().cloned().collect();
    let mut s = String::new();
    for cs in clients {
        if let Some(ids) = &ids {
            if !ids.contains(&cs.id) {
                continue;
            }
        }
        if typ.is_some_and(|t| t != client_type(&cs)) {
            continue;
        }
        let line = if cs.id == c.id {
            client_line(&cs, Some(c))
        } else {
            client_line(&cs, None)
        };
        s.push_str(&line);
        s.push('\n');
    }
    c.out.verbatim(s.as_bytes());
}

fn client_info(c: &mut Conn, _args: &[Bytes]) {
    let cs = c.shared.clone();
    let mut line = client_line(&cs, Some(c));
    line.push('\n');
    c.out.verbatim(line.as_bytes());
}

fn client_kill(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        let clients: Vec<Arc<ClientShared>> = c.globals.clients().values().cloned().collect();
        if args.len() == 3 {
            // Old form: CLIENT KILL addr:port
            let addr = String::from_utf8_lossy(&args[2]).into_owned();
            match clients.iter().find(|cs| cs.addr == addr) {
                Some(cs) => {
                    if cs.id == c.id {
                        c.close_after_reply = true;
                    } else {
                        cs.kill();
                    }
                    c.out.ok();
                }
                None => c.out.error("ERR No such client"),
            }
            return;
        }
        if !args.len().is_multiple_of(2) {
            c.out.error(SYNTAX);
            return;
        }
        let mut id = None;
        let mut addr = None;
        let mut laddr = None;
        let mut user = None;
        let mut skipme = true;
        let mut typ = None;
        let mut i = 2;
        while i + 1 < args.len() {
            let (k, v) = (&args[i], &args[i + 1]);
            if eq_ic(k, "id") {
                match parse_i64(v) {
                    Some(n) if n > 0 => id = Some(n as u64),
                    _ => {
                        c.out.error("ERR client-id should be greater than 0");
                        return;
                    }
                }
            } else if eq_ic(k, "type") {
                match parse_client_type(v) {
                    Ok(t) => typ = Some(t),
                    Err(e) => {
                        c.out.error(&e);
                        return;
                    }
                }
            } else if eq_ic(k, "addr") {
                addr = Some(String::from_utf8_lossy(v).into_owned());
            } else if eq_ic(k, "laddr") {
                laddr = Some(String::from_utf8_lossy(v).into_owned());
            } else if eq_ic(k, "user") {
                // Only the default user exists until ACL lands.
                if v.as_ref() != b"default" {
                    c.out.error(&format!(
                        "ERR No such user '{}'",
                        String::from_utf8_lossy(v)
                    ));
                    return;
                }
                user = Some(String::from_utf8_lossy(v).into_owned());
            } else if eq_ic(k, "skipme") {
                if eq_ic(v, "yes") {
                    skipme = true;
                } else if eq_ic(v, "no") {
                    skipme = false;
                } else {
                    c.out.error(SYNTAX);
                    return;
                }
            } else {
                c.out.error(SYNTAX);
                return;
            }
            i += 2;
        }
        let mut killed = 0;
        for cs in clients {
            if typ.is_some_and(|t| t != client_type(&cs))
                || id.is_some_and(|x| x != cs.id)
                || addr.as_ref().is_some_and(|a| *a != cs.addr)
                || laddr.as_ref().is_some_and(|a| *a != cs.laddr)
            {
                continue;
            }
            if let Some(u) = &user {
                let cu = cs
                    .info
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .user
                    .clone();
                if *u != cu {
                    continue;
                }
            }
            if cs.id == c.id {
                if skipme {
                    continue;
                }
                c.close_after_reply = true;
            } else {
                cs.kill();
            }
            killed += 1;
        }
        c.out.int(killed);
    })
}

fn on_off(c: &mut Conn, arg: &[u8]) -> Option<bool> {
    if eq_ic(arg, "on") {
        Some(true)
    } else if eq_ic(arg, "off") {
        Some(false)
    } else {
        c.out.error(SYNTAX);
        None
    }
}

fn client_no_evict(c: &mut Conn, args: &[Bytes]) {
    if let Some(v) = on_off(c, &args[2]) {
        c.no_evict = v;
        c.out.ok();
    }
}

fn client_no_touch(c: &mut Conn, args: &[Bytes]) {
    if let Some(v) = on_off(c, &args[2]) {
        c.no_touch = v;
        c.out.ok();
    }
}

fn client_reply(c: &mut Conn, args: &[Bytes]) {
    let a = &args[2];
    if eq_ic(a, "on") {
        c.reply_mode = ReplyMode::On;
        c.out.ok();
    } else if eq_ic(a, "off") {
        c.reply_mode = ReplyMode::Off;
    } else if eq_ic(a, "skip") {
        if c.reply_mode == ReplyMode::On {
            c.reply_mode = ReplyMode::Skip;
        }
    } else {
        c.out.error(SYNTAX);
    }
}

fn client_setinfo(c: &mut Conn, args: &[Bytes]) {
    if args.len() != 4 {
        c.out.error(&crate::command::arity_error("client|setinfo"));
        return;
    }
    let attr = &args[2];
    let val = &args[3];
    let which = if eq_ic(attr, "lib-name") {
        "lib-name"
    } else if eq_ic(attr, "lib-ver") {
        "lib-ver"
    } else {
        c.out.error(&format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(attr)
        ));
        return;
    };
    if !valid_name(val) {
        c.out.error(&format!(
            "ERR {which} cannot contain spaces, newlines or special characters."
        ));
        return;
    }
    if which == "lib-name" {
        c.lib_name = val.to_vec();
    } else {
        c.lib_ver = val.to_vec();
    }
    c.out.ok();
}

fn client_pause(c: &mut Conn, args: &[Bytes]) {
    let Some(ms) = super::timeout_ms(c, &args[2]) else {
        return;
    };
    let mut all = true;
    if args.len() == 4 {
        if eq_ic(&args[3], "write") {
            all = false;
        } else if !eq_ic(&args[3], "all") {
            c.out.error("ERR CLIENT PAUSE mode must be WRITE or ALL");
            return;
        }
    } else if args.len() > 4 {
        c.out.error(SYNTAX);
        return;
    }
    let until = Instant::now() + Duration::from_millis(ms);
    // A new pause never shortens a running one of the same or stronger kind.
    let cur = c.globals.pause_state();
    let next = match cur {
        Some(p) => Pause {
            until: p.until.max(until),
            all: p.all || all,
        },
        None => Pause { until, all },
    };
    c.globals.set_pause(Some(next));
    c.out.ok();
}

fn client_unpause(c: &mut Conn, _args: &[Bytes]) {
    c.globals.set_pause(None);
    c.out.ok();
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 when the client was blocked and is released.
fn client_unblock(c: &mut Conn, args: &[Bytes]) {
    let how = match args.len() {
        3 => crate::blocking::Unblock::Timeout,
        4 if eq_ic(&args[3], "timeout") => crate::blocking::Unblock::Timeout,
        4 if eq_ic(&args[3], "error") => crate::blocking::Unblock::Error,
        4 => {
            c.out
                .error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
            return;
        }
        _ => {
            super::subcommand_syntax_error(c, args);
            return;
        }
    };
    let Some(id) = parse_i64(&args[2]) else {
        c.out.error(super::NOT_INT);
        return;
    };
    let target = c.globals.clients().get(&(id as u64)).cloned();
    let released = id >= 0 && target.is_some_and(|t| t.block.unblock(how));
    c.out.int(released as i64);
}

fn client_help(c: &mut Conn, _args: &[Bytes]) {
    const LINES: &[&str] = &[
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CACHING (YES|NO)",
        "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
        "GETREDIR",
        "    Return the client ID we are redirecting to when tracking is enabled.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are:",
        "    * ADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made from the specified address",
        "    * LADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made to specified local address",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Kill connections by type.",
        "    * USER <username>",
        "      Kill connections authenticated by <username>.",
        "    * SKIPME (YES|NO)",
        "      Skip killing current connection (default: yes).",
        "    * ID <client-id>",
        "      Kill connections by client id.",
        "LIST [options ...]",
        "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Return clients of specified type.",
        "UNPAUSE",
        "    Stop the current client pause, resuming traffic.",
        "PAUSE <timeout> [WRITE|ALL]",
        "    Suspend all, or just write, clients for <timeout> milliseconds.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]",
        "    Unblock the specified blocked client.",
        "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
        "         [OPTIN] [OPTOUT] [NOLOOP]",
        "    Control server assisted client side caching.",
        "TRACKINGINFO",
        "    Report tracking status for the current connection.",
        "GETNAME",
        "    Return the name of the current connection.",
        "NO-EVICT (ON|OFF)",
        "    Protect current client connection from eviction.",
        "HELP",
        "    Print this help.",
    ];
    super::reply_help(c, LINES);
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p]... [OPTIN] [OPTOUT] [NOLOOP]
/// (`crate::tracking`): options are parsed first (for OFF too), then checked against the
/// client's current mode, as Redis does.
fn client_tracking(c: &mut Conn, args: &[Bytes]) {
    let opts = {
        let clients = c.globals.clients();
        crate::tracking::parse_options(args, |id| clients.contains_key(&id))
    };
    let opts = match opts {
        Ok(o) => o,
        Err(e) => {
            c.out.error(&e);
            return;
        }
    };
    let mode = c_str(&args[2]);
    if mode.eq_ignore_ascii_case(b"on") {
        let checked = crate::tracking::check_enable(&c.shared.tracking(), &opts);
        if let Err(e) = checked {
            c.out.error_bytes(&e);
            return;
        }
        c.globals.tracking.enable(&c.shared, &opts);
        c.tracking = crate::conn::TrackMode {
            on: true,
            bcast: opts.bcast,
            optin: opts.optin,
            optout: opts.optout,
        };
    } else if mode.eq_ignore_ascii_case(b"off") {
        c.globals.tracking.disable(&c.shared);
        c.tracking = crate::conn::TrackMode::default();
    } else {
        c.out.error(SYNTAX);
        return;
    }
    c.out.ok();
}

/// CLIENT CACHING YES|NO: whether the next command's keys are remembered, against the
/// OPTIN/OPTOUT default.
fn client_caching(c: &mut Conn, args: &[Bytes]) {
    let t = c.tracking;
    if !t.on {
        c.out.error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
        return;
    }
    let opt = c_str(&args[2]);
    if opt.eq_ignore_ascii_case(b"yes") {
        if !t.optin {
            c.out.error(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            );
            return;
        }
    } else if opt.eq_ignore_ascii_case(b"no") {
        if !t.optout {
            c.out.error(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            );
            return;
        }
    } else {
        c.out.error(SYNTAX);
        return;
    }
    c.caching = true;
    c.out.ok();
}

fn client_getredir(c: &mut Conn, _args: &[Bytes]) {
    let t = c.shared.tracking();
    let v = if t.on { t.redirect as i64 } else { -1 };
    drop(t);
    c.out.int(v);
}

fn client_trackinginfo(c: &mut Conn, _args: &[Bytes]) {
    let t = c.shared.tracking().clone();
    let mut flags: Vec<&str> = vec![if t.on { "on" } else { "off" }];
    if t.bcast {
        flags.push("bcast");
    }
    if t.optin {
        flags.push("optin");
        if c.caching {
            flags.push("caching-yes");
        }
    }
    if t.optout {
        flags.push("optout");
        if c.caching {
            flags.push("caching-no");
        }
    }
    if t.noloop {
        flags.push("noloop");
    }
    if t.broken_redir {
        flags.push("broken_redirect");
    }
    let r = &mut c.out;
    r.map(3);
    r.bulk(b"flags");
    r.set(flags.len());
    for f in flags {
        r.bulk(f.as_bytes());
    }
    r.bulk(b"redirect");
    r.int(if t.on { t.redirect as i64 } else { -1 });
    r.bulk(b"prefixes");
    r.array(t.prefixes.len());
    for p in &t.prefixes {
        r.bulk(p);
    }
}

#[allow(dead_code)]
fn connected(c: &Conn) -> usize {
    c.globals.connected_clients.load(Ordering::Relaxed)
}
