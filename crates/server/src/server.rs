//! Process start-up: N shard threads, each a single-threaded tokio runtime that owns one shard,
//! its inbox, its expiry timer, and the connections it accepts on its own SO_REUSEPORT
//! listener (the kernel spreads connections across threads).
//!
//! Invariant: a connection and everything it touches inline live on the thread that accepted
//! it; other threads are reached only through shard inboxes.

use crate::command::CommandTable;
use crate::config::Config;
use crate::globals::Globals;
use crate::inbox::Inbox;
use crate::log;
use crate::shard::{drain_inbox, Shard};
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Number of shard threads: `--proactor_threads`, else the CPUs this process may use
/// (`available_parallelism` honours cgroup quotas and the affinity mask).
pub fn thread_count(cfg: &Config) -> usize {
    let t = cfg.get_int("proactor_threads");
    if t > 0 {
        t as usize
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    }
}

fn bind_addrs(cfg: &Config) -> Result<(Vec<IpAddr>, bool), String> {
    let bind = cfg.get_str("bind");
    let explicit = !bind.trim().is_empty();
    if !explicit {
        return Ok((vec![IpAddr::from([0, 0, 0, 0])], false));
    }
    let mut out = Vec::new();
    for a in bind.split_whitespace() {
        let a = a.trim_start_matches('-');
        let ip = match a {
            "*" => IpAddr::from([0, 0, 0, 0]),
            "::*" => IpAddr::from([0u16; 8]),
            "localhost" => IpAddr::from([127, 0, 0, 1]),
            _ => a
                .parse()
                .map_err(|_| format!("invalid bind address '{a}'"))?,
        };
        out.push(ip);
    }
    Ok((out, true))
}

fn make_listener(addr: SocketAddr, backlog: i32) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(backlog)?;
    Ok(s.into())
}

/// Runs the server until SHUTDOWN or a signal. Returns an error message for start-up failures.
pub fn run(cfg: Config) -> Result<(), String> {
    let nthreads = thread_count(&cfg).clamp(1, 1024);
    let port = cfg.get_int("port");
    if !(0..=65535).contains(&port) {
        return Err(format!("invalid port {port}"));
    }
    let (addrs, explicit_bind) = bind_addrs(&cfg)?;
    let backlog = cfg.get_int("tcp_backlog").clamp(1, 65535) as i32;

    // Bind all listeners up front so a busy port fails start-up, not a thread.
    let mut per_thread: Vec<Vec<std::net::TcpListener>> =
        (0..nthreads).map(|_| Vec::new()).collect();
    let mut actual_port = port as u16;
    for ip in &addrs {
        for (t, slot) in per_thread.iter_mut().enumerate() {
            let addr = SocketAddr::new(*ip, actual_port);
            let l = make_listener(addr, backlog).map_err(|e| {
                format!("Could not create server TCP listening socket {addr}: bind: {e}")
            })?;
            if t == 0 && actual_port == 0 {
                actual_port = l.local_addr().map(|a| a.port()).unwrap_or(0);
            }
            slot.push(l);
        }
    }

    let mut inboxes = Vec::with_capacity(nthreads);
    for _ in 0..nthreads {
        let inbox = Inbox::new().map_err(|e| format!("cannot create a shard inbox: {e}"))?;
        inboxes.push(Arc::new(inbox));
    }
    let dbnum = cfg.get_int("dbnum").max(1) as usize;
    // Whether protected mode can apply at all (it is re-checked per connection, as CONFIG SET
    // can change protected-mode and requirepass at runtime).
    let protected = !explicit_bind;
    let inactive = cfg.inactive_options_set();
    let globals = Arc::new(Globals::new(cfg, inboxes, actual_port));
    let table: &'static CommandTable = Box::leak(Box::new(crate::commands::build_table()));

    log::info(&format!(
        "damselfly {} starting: {} shard threads, {} databases",
        env!("CARGO_PKG_VERSION"),
        nthreads,
        dbnum
    ));
    for name in inactive {
        log::warn(&format!(
            "option --{name} is accepted and stored but its feature is not active yet"
        ));
    }
    for ip in &addrs {
        log::info(&format!(
            "Listening on {}",
            SocketAddr::new(*ip, actual_port)
        ));
    }
    if protected
        && globals.config().get_bool("protected_mode")
        && globals.config().get_str("requirepass").is_empty()
    {
        log::info(
            "protected mode: no password and no --bind, so only loopback clients are accepted",
        );
    }

    let mut handles = Vec::new();
    for (t, listeners) in per_thread.into_iter().enumerate() {
        let g = globals.clone();
        let h = std::thread::Builder::new()
            .name(format!("shard-{t}"))
            .spawn(move || shard_thread(t, listeners, g, table, dbnum, protected))
            .map_err(|e| format!("cannot start thread: {e}"))?;
        handles.push(h);
    }

    // The main thread waits for a signal or SHUTDOWN.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut rx = globals.shutdown.subscribe();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term_fut = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => log::info("Received SIGINT, shutting down"),
            _ = term_fut => log::info("Received SIGTERM, shutting down"),
            _ = async { while !*rx.borrow_and_update() { if rx.changed().await.is_err() { break; } } } => log::info("SHUTDOWN requested, shutting down"),
        }
    });
    globals.request_shutdown();
    for h in handles {
        let _ = h.join();
    }
    log::info("Bye");
    Ok(())
}

fn shard_thread(
    id: usize,
    listeners: Vec<std::net::TcpListener>,
    globals: Arc<Globals>,
    table: &'static CommandTable,
    dbnum: usize,
    protected: bool,
) {
    let inbox = globals.inboxes[id].clone();
    let (parking, waking) = (inbox.clone(), inbox.clone());
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(move || parking.before_park())
        .on_thread_unpark(move || waking.after_unpark())
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log::error(&format!("shard {id}: cannot build runtime: {e}"));
            globals.request_shutdown();
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    let shard = Rc::new(RefCell::new(Shard::new(id, dbnum, globals.clone())));
    let inbox_task = inbox.clone();
    local.block_on(&rt, async move {
        // Inbox: woken by the eventfd when a sender found this thread parked (busy, the
        // connection tasks drain it after each batch).
        let s = shard.clone();
        tokio::task::spawn_local(async move {
            let watched = InboxFd(inbox_task.clone());
            // SAFETY: `InboxFd` holds the inbox that owns the eventfd, so the fd stays open
            // and the same for as long as the AsyncFd (which owns the InboxFd) lives.
            let fd = match unsafe { AsyncFd::register_with_interest(watched, Interest::READABLE) } {
                Ok(fd) => fd,
                Err(e) => {
                    log::error(&format!("shard {id}: inbox eventfd: {e}"));
                    globals_shutdown(&s);
                    return;
                }
            };
            loop {
                match fd.readable().await {
                    Ok(mut ready) => ready.clear_ready(),
                    Err(_) => return,
                }
                drain_inbox(&s, &inbox_task);
            }
        });
        // Active expiry, 10 times a second, at most 2ms per run.
        let s = shard.clone();
        tokio::task::spawn_local(async move {
            let mut iv = tokio::time::interval(Duration::from_millis(100));
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                iv.tick().await;
                s.borrow_mut().expire_tick(Duration::from_millis(2));
            }
        });
        for l in listeners {
            let listener = match tokio::net::TcpListener::from_std(l) {
                Ok(l) => l,
                Err(e) => {
                    log::error(&format!("shard {id}: listener: {e}"));
                    continue;
                }
            };
            let g = globals.clone();
            let s = shard.clone();
            tokio::task::spawn_local(async move {
                loop {
                    let (stream, peer) = match listener.accept().await {
                        Ok(x) => x,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            continue;
                        }
                    };
                    accept(stream, peer, &g, &s, id, table, protected).await;
                }
            });
        }
        let mut sd = globals.shutdown.subscribe();
        while !*sd.borrow_and_update() {
            if sd.changed().await.is_err() {
                break;
            }
        }
    });
    // Refuse new work and drop what is queued: its callers get errors, not hangs.
    drop(inbox.close());
}

/// The inbox's eventfd as the reactor sees it (the inbox owns the fd).
struct InboxFd(Arc<Inbox>);

impl std::os::fd::AsRawFd for InboxFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.eventfd()
    }
}

fn globals_shutdown(s: &crate::shard::ShardRef) {
    s.borrow().globals.request_shutdown();
}

async fn accept(
    mut stream: tokio::net::TcpStream,
    peer: SocketAddr,
    g: &Arc<Globals>,
    s: &crate::shard::ShardRef,
    id: usize,
    table: &'static CommandTable,
    protected: bool,
) {
    use tokio::io::AsyncWriteExt;
    g.total_connections.fetch_add(1, Ordering::Relaxed);
    // Protected mode as Redis: no explicit bind and no password -> loopback clients only.
    let denied = protected && !peer.ip().is_loopback() && {
        let c = g.config();
        c.get_bool("protected_mode") && c.get_str("requirepass").is_empty()
    };
    if denied {
        let _ = stream
            .write_all(crate::conn::PROTECTED_MODE_DENIED.as_bytes())
            .await;
        g.rejected_connections.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let maxclients = g.config().get_int("maxclients").max(1) as usize;
    let n = g.connected_clients.fetch_add(1, Ordering::Relaxed) + 1;
    if n > maxclients {
        g.connected_clients.fetch_sub(1, Ordering::Relaxed);
        g.rejected_connections.fetch_add(1, Ordering::Relaxed);
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        return;
    }
    let g2 = g.clone();
    let s2 = s.clone();
    tokio::task::spawn_local(crate::conn::serve(stream, g2, s2, id, table));
}
