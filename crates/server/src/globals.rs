//! State shared by all threads: config, shard inboxes, the client registry, process counters.
//!
//! Nothing here is on the per-command data path except reads of `config_epoch` (one relaxed
//! load per batch); key data lives in shards. Connections cache the config values they need and
//! refresh them when the epoch changes.
//!
//! Invariant: the data behind these locks is never held across an `.await`.

use crate::config::Config;
use crate::shard::ShardInbox;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// Connection details other threads may read (CLIENT LIST/INFO) or act on (CLIENT KILL).
pub struct ClientShared {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub created: Instant,
    pub info: Mutex<ClientInfo>,
    pub killed: AtomicBool,
    /// The connection's socket, for CLIENT KILL to shut its read side (the connection's
    /// read then ends, so it needs no second thing to wait on). Weak: only the connection
    /// keeps the socket open.
    pub socket: std::sync::Weak<tokio::net::tcp::OwnedWriteHalf>,
    /// Whether the connection is blocked in a command, and CLIENT UNBLOCK's way to it.
    pub block: crate::blocking::BlockSlot,
    /// Output other threads produce for this connection (MONITOR lines, invalidations).
    pub pushes: Arc<crate::push::PushSink>,
    /// CLIENT TRACKING settings (read by the shards that send this client invalidations).
    pub tracking: Mutex<crate::tracking::TrackState>,
    /// The connection speaks RESP3 (set at once by HELLO and RESET: a push is encoded for it).
    pub resp3: AtomicBool,
    /// Its channel, pattern and shard channel subscriptions (CLIENT LIST `sub`/`psub`/`ssub`).
    pub subs: [AtomicUsize; 3],
}

/// Mutable, descriptive state of a client (refreshed once per batch of commands).
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub name: Vec<u8>,
    pub lib_name: Vec<u8>,
    pub lib_ver: Vec<u8>,
    pub db: usize,
    pub resp: u8,
    pub last_cmd: &'static str,
    /// Unix ms of the last batch (the batch's own clock read, not one more).
    pub last_interaction_ms: u64,
    pub no_evict: bool,
    pub no_touch: bool,
    pub qbuf: usize,
    pub user: String,
    /// In MONITOR mode (CLIENT LIST flag `O`).
    pub monitor: bool,
    /// Commands queued in MULTI, -1 outside it (CLIENT LIST `multi`, flag `x`).
    pub multi: i64,
    /// The WATCH session's flag, if any (CLIENT LIST flag `d` once a watched key changed).
    pub watch: Option<Arc<crate::watch::WatchFlag>>,
}

impl ClientShared {
    pub fn tracking(&self) -> std::sync::MutexGuard<'_, crate::tracking::TrackState> {
        self.tracking.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[inline]
    pub fn resp3(&self) -> bool {
        self.resp3.load(Ordering::Relaxed)
    }

    /// Subscribed to anything (Redis's `CLIENT_PUBSUB` flag).
    pub fn in_pubsub(&self) -> bool {
        self.subs.iter().any(|n| n.load(Ordering::Relaxed) != 0)
    }

    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        if let Some(w) = self.socket.upgrade() {
            let stream: &tokio::net::TcpStream = (*w).as_ref();
            let _ = socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Read);
        }
    }

    /// Closes the connection from any thread, also when its task is blocked writing to a
    /// client that does not read: both directions are shut, so the write fails.
    pub fn close(&self) {
        self.killed.store(true, Ordering::Relaxed);
        if let Some(w) = self.socket.upgrade() {
            let stream: &tokio::net::TcpStream = (*w).as_ref();
            let _ = socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Both);
        }
    }
}

/// State of CLIENT PAUSE.
#[derive(Clone, Copy, Debug)]
pub struct Pause {
    pub until: Instant,
    /// true: all commands; false: only writes (and may-replicate commands).
    pub all: bool,
}

pub struct Globals {
    pub config: RwLock<Config>,
    /// Bumped on every CONFIG SET, so connections refresh their cached limits.
    pub config_epoch: AtomicU64,
    pub inboxes: Vec<ShardInbox>,
    /// Serializes multi-shard transactions (see coord.rs for why this is enough for now).
    pub next_tx_id: AtomicU64,
    pub clients: Mutex<BTreeMap<u64, Arc<ClientShared>>>,
    pub next_client_id: AtomicU64,
    pub connected_clients: AtomicUsize,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub pause: Mutex<Option<Pause>>,
    /// Fast check for the per-command path: true while a pause may be in force.
    pub pause_active: AtomicBool,
    pub start: Instant,
    pub start_unix_ms: u64,
    pub port: u16,
    pub run_id: String,
    pub shutdown: tokio::sync::watch::Sender<bool>,
    pub stat_reset_epoch: AtomicU64,
    /// MONITOR connections (one relaxed load per command while there are none).
    pub monitors: crate::monitor::Monitors,
    /// Connections blocked in a command (INFO `blocked_clients`), and those of them with a
    /// deadline (`clients_in_timeout_table`).
    pub blocked_clients: AtomicUsize,
    pub blocked_with_timeout: AtomicUsize,
    pub slowlog: crate::slowlog::SlowLog,
    /// `latency-tracking` and the latency monitor (LATENCY, INFO latencystats).
    pub latency: crate::latency::Monitor,
    /// Client-side caching (CLIENT TRACKING): who tracks, BCAST prefixes.
    pub tracking: crate::tracking::Trackers,
    /// Pub/Sub subscriptions.
    pub pubsub: crate::pubsub::Registry,
    /// `notify-keyspace-events` as flags (`config::notify`), read on every key change.
    pub notify_flags: std::sync::atomic::AtomicI64,
}

impl Globals {
    pub fn new(config: Config, inboxes: Vec<ShardInbox>, port: u16) -> Globals {
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let seed = crate::shard::now_ms() ^ (std::process::id() as u64) << 20;
        let mut x = seed | 1;
        let run_id: String = (0..40)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from_digit((x % 16) as u32, 16).unwrap_or('0')
            })
            .collect();
        let slowlog = crate::slowlog::SlowLog::new(
            config.get_int("slowlog_log_slower_than"),
            config.get_int("slowlog_max_len").max(0) as usize,
        );
        let tracking = crate::tracking::Trackers::new(
            config.get_int("tracking_table_max_keys").max(0) as usize,
        );
        let latency = crate::latency::Monitor::new(
            config.get_int("latency_monitor_threshold").max(0) as u64,
            config.get_bool("latency_tracking"),
        );
        Globals {
            slowlog,
            latency,
            tracking,
            pubsub: crate::pubsub::Registry::default(),
            notify_flags: std::sync::atomic::AtomicI64::new(
                config.get_int("notify_keyspace_events"),
            ),
            config: RwLock::new(config),
            config_epoch: AtomicU64::new(1),
            inboxes,
            next_tx_id: AtomicU64::new(1),
            clients: Mutex::new(BTreeMap::new()),
            next_client_id: AtomicU64::new(1),
            connected_clients: AtomicUsize::new(0),
            total_connections: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            pause: Mutex::new(None),
            pause_active: AtomicBool::new(false),
            start: Instant::now(),
            start_unix_ms: crate::shard::now_ms(),
            port,
            run_id,
            shutdown,
            stat_reset_epoch: AtomicU64::new(0),
            monitors: crate::monitor::Monitors::default(),
            blocked_clients: AtomicUsize::new(0),
            blocked_with_timeout: AtomicUsize::new(0),
        }
    }

    pub fn nshards(&self) -> usize {
        self.inboxes.len()
    }

    /// Reads the config (poisoning is not possible to trigger from a client; recover anyway).
    pub fn config(&self) -> std::sync::RwLockReadGuard<'_, Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config_mut(&self) -> std::sync::RwLockWriteGuard<'_, Config> {
        self.config_epoch.fetch_add(1, Ordering::Relaxed);
        self.config.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn clients(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ClientShared>>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies options that live outside the config (after a CONFIG SET).
    pub fn apply_config(&self) {
        let c = self.config();
        self.slowlog.configure(
            c.get_int("slowlog_log_slower_than"),
            c.get_int("slowlog_max_len").max(0) as usize,
        );
        self.latency.configure(
            c.get_int("latency_monitor_threshold").max(0) as u64,
            c.get_bool("latency_tracking"),
        );
        self.tracking
            .set_max_keys(c.get_int("tracking_table_max_keys").max(0) as usize);
        self.notify_flags
            .store(c.get_int("notify_keyspace_events"), Ordering::Relaxed);
    }

    /// Logs a command of client `client_id` that took `usec` in the slow log (the caller found
    /// it slow: `slowlog.is_slow`), with the address and name the client last published: what
    /// a shard running another thread's command knows of it.
    pub fn log_slow(&self, client_id: u64, name: &str, args: &[bytes::Bytes], usec: u64) {
        let (peer, cname) = match self.clients().get(&client_id) {
            Some(cs) => (
                cs.addr.clone(),
                cs.info
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .name
                    .clone(),
            ),
            None => (String::new(), Vec::new()),
        };
        self.slowlog.push(name, args, usec, peer, cname);
    }

    pub fn pause_state(&self) -> Option<Pause> {
        if !self.pause_active.load(Ordering::Relaxed) {
            return None;
        }
        let g = self.pause.lock().unwrap_or_else(|e| e.into_inner());
        match *g {
            Some(p) if p.until > Instant::now() => Some(p),
            _ => None,
        }
    }

    pub fn set_pause(&self, p: Option<Pause>) {
        self.pause_active.store(p.is_some(), Ordering::Relaxed);
        *self.pause.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }

    pub fn request_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}
