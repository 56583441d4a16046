//! INFO: which sections a request asks for, the numbers behind them, and their text, in the
//! shape of Redis 7.0's `genRedisInfoString`.
//!
//! Shape (what clients parse): one `# Title` line per section, then `field:value` lines, all
//! ending in CRLF; sections after the first are preceded by an empty line; an unknown section
//! name contributes nothing. Field names, order and number formats are Redis 7.0.15's
//! (`used_memory_human:1.50M`, `used_cpu_sys:0.012000`, `cmdstat_get:calls=..`), plus
//! `damselfly_version` after `redis_version`. Fields for features we do not have (Lua,
//! replication links, forks, defrag...) are present with the values an idle Redis shows, so
//! monitoring tools find every field they expect.
//!
//! Section selection follows Redis 7.0: no argument or `default` gives the default sections,
//! `all` adds commandstats and latencystats, `everything` is `all` plus module sections (we
//! have none), other words name sections (case-insensitive; `modules` and `module_list` are
//! the same section).
//!
//! Numbers: per-shard counters (`ThreadStats`, key counts, table overhead) are gathered with
//! one message per shard, and only when a requested section needs them (`INFO server` stays
//! local). Memory comes from jemalloc (`stats.allocated`, `.active`, `.resident`) and
//! `/proc/self/statm`. `instantaneous_*` and `used_memory_peak` come from a sampler thread
//! started by the first INFO: every 100 ms it reads each shard's command and byte counters
//! (one message per shard) and the allocator, and keeps the last 16 samples, like Redis's
//! `trackInstantaneousMetric` over its cron.
//!
//! Invariant: rendering ([`render`]) is a pure function of [`Sections`] and [`InfoData`], so
//! tests can check the text without a server.

use crate::conn::Conn;
use crate::globals::Globals;
use crate::shard::{ShardMsg, ThreadStats};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Redis 7.0's default sections, in output order.
pub const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "module_list",
    "errorstats",
    "cluster",
    "keyspace",
];

/// The sections one INFO call asks for.
#[derive(Debug, Clone, Default)]
pub struct Sections {
    all: bool,
    names: Vec<String>,
}

impl Sections {
    /// From INFO's arguments (without the command name).
    pub fn parse(args: &[&[u8]]) -> Sections {
        let mut s = Sections::default();
        if args.is_empty() {
            s.add_defaults();
        }
        for a in args {
            let name = String::from_utf8_lossy(a).to_ascii_lowercase();
            match name.as_str() {
                "default" => s.add_defaults(),
                "all" | "everything" => s.all = true,
                _ => {
                    if !s.names.contains(&name) {
                        s.names.push(name)
                    }
                }
            }
        }
        s
    }

    fn add_defaults(&mut self) {
        for d in DEFAULT_SECTIONS {
            if !self.names.iter().any(|n| n == d) {
                self.names.push(d.to_string());
            }
        }
    }

    /// Whether section `name` is part of the output.
    pub fn wants(&self, name: &str) -> bool {
        if self.all {
            return true;
        }
        if name == "modules" {
            return self
                .names
                .iter()
                .any(|n| n == "modules" || n == "module_list");
        }
        self.names.iter().any(|n| n == name)
    }

    /// Whether the output needs numbers kept by the shards.
    pub fn needs_shards(&self) -> bool {
        [
            "memory",
            "stats",
            "commandstats",
            "errorstats",
            "latencystats",
            "keyspace",
        ]
        .iter()
        .any(|s| self.wants(s))
    }
}

/// Allocator and process memory figures, in bytes.
#[derive(Debug, Clone, Default)]
pub struct MemoryStats {
    pub allocated: u64,
    pub active: u64,
    pub resident: u64,
    pub rss: u64,
    pub peak: u64,
    pub total_system: u64,
}

/// Reads jemalloc's statistics (after advancing its epoch) and the process RSS.
pub fn memory_stats() -> MemoryStats {
    use tikv_jemalloc_ctl::{epoch, stats};
    let _ = epoch::advance();
    let allocated = stats::allocated::read().unwrap_or(0) as u64;
    let active = stats::active::read().unwrap_or(0) as u64;
    let resident = stats::resident::read().unwrap_or(0) as u64;
    let peak = note_peak(allocated);
    MemoryStats {
        allocated,
        active,
        resident,
        rss: process_rss(),
        peak,
        total_system: total_system_memory(),
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// Resident set size from `/proc/self/statm` (second field, in pages).
pub fn process_rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * page_size())
        .unwrap_or(0)
}

fn total_system_memory() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    if pages > 0 {
        pages as u64 * page_size()
    } else {
        0
    }
}

static PEAK: AtomicU64 = AtomicU64::new(0);

/// Forgets the peak (CONFIG RESETSTAT).
pub fn reset_peak() {
    PEAK.store(0, Ordering::Relaxed);
}

/// Records `used` as a candidate for the peak and returns the peak.
pub fn note_peak(used: u64) -> u64 {
    PEAK.fetch_max(used, Ordering::Relaxed).max(used)
}

/// Redis's `bytesToHuman`.
pub fn bytes_to_human(n: u64) -> String {
    const K: u64 = 1024;
    let d = n as f64;
    if n < K {
        format!("{n}B")
    } else if n < K * K {
        format!("{:.2}K", d / K as f64)
    } else if n < K * K * K {
        format!("{:.2}M", d / (K * K) as f64)
    } else if n < K * K * K * K {
        format!("{:.2}G", d / (K * K * K) as f64)
    } else if n < K * K * K * K * K {
        format!("{:.2}T", d / (K * K * K * K) as f64)
    } else if n < K * K * K * K * K * K {
        format!("{:.2}P", d / (K * K * K * K * K) as f64)
    } else {
        format!("{n}B")
    }
}

/// CPU time of the process, its children and the calling thread, as (sys, user) pairs of
/// (seconds, microseconds).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTimes {
    pub process: ((i64, i64), (i64, i64)),
    pub children: ((i64, i64), (i64, i64)),
    pub thread: ((i64, i64), (i64, i64)),
}

fn rusage(who: libc::c_int) -> ((i64, i64), (i64, i64)) {
    // SAFETY: getrusage writes a plain struct we own; a zeroed rusage is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return ((0, 0), (0, 0));
    }
    (
        (ru.ru_stime.tv_sec as i64, ru.ru_stime.tv_usec as i64),
        (ru.ru_utime.tv_sec as i64, ru.ru_utime.tv_usec as i64),
    )
}

pub fn cpu_times() -> CpuTimes {
    CpuTimes {
        process: rusage(libc::RUSAGE_SELF),
        children: rusage(libc::RUSAGE_CHILDREN),
        thread: rusage(libc::RUSAGE_THREAD),
    }
}

/// `uname -s -r -m`, as Redis's `os` field.
pub fn os_string() -> String {
    // SAFETY: a zeroed utsname is valid; uname fills it with NUL-terminated strings.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return std::env::consts::OS.to_string();
    }
    let field = |f: &[libc::c_char]| -> String {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!(
        "{} {} {}",
        field(&u.sysname),
        field(&u.release),
        field(&u.machine)
    )
}

/// A stable 40-hex-digit id derived from `seed` and `salt` (node id, replication id).
pub fn derived_id(seed: &str, salt: u64) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for b in seed.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    let mut out = String::with_capacity(40);
    let mut x = h | 1;
    while out.len() < 40 {
        // splitmix64
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let _ = write!(out, "{z:016x}");
    }
    out.truncate(40);
    out
}

/// Redis's LRU clock: seconds, modulo 2^24.
pub fn lru_clock() -> u64 {
    (crate::shard::now_ms() / 1000) & ((1 << 24) - 1)
}

/// Everything INFO prints.
#[derive(Debug, Clone, Default)]
pub struct InfoData {
    pub cluster: bool,
    pub os: String,
    pub pid: u32,
    pub run_id: String,
    pub port: u16,
    pub server_time_usec: u64,
    pub uptime_secs: u64,
    pub hz: i64,
    pub executable: String,
    pub config_file: String,
    pub connected_clients: usize,
    pub blocked_clients: usize,
    pub tracking_clients: usize,
    pub tracking_keys: usize,
    pub tracking_items: usize,
    pub tracking_prefixes: usize,
    /// Active channels, patterns, shard channels.
    pub pubsub: [usize; 3],
    pub clients_in_timeout_table: usize,
    pub maxclients: i64,
    pub max_input_buffer: usize,
    pub mem: MemoryStats,
    /// Table structure bytes over all shards (part of `used_memory_overhead`).
    pub overhead: u64,
    pub maxmemory: u64,
    pub maxmemory_policy: String,
    pub last_save_secs: u64,
    pub aof_enabled: bool,
    pub stats: ThreadStats,
    pub total_connections: u64,
    pub rejected_connections: u64,
    pub ops_per_sec: u64,
    pub input_kbps: f64,
    pub output_kbps: f64,
    pub master_replid: String,
    pub repl_backlog_size: u64,
    pub cpu: CpuTimes,
    /// (db index, keys, keys with a TTL), every db.
    pub keyspace: Vec<(usize, u64, u64)>,
    /// `latency-tracking` and `latency-tracking-info-percentiles`.
    pub latency_tracking: bool,
    pub latency_percentiles: Vec<f64>,
}

/// What one shard contributes.
struct ShardPart {
    stats: ThreadStats,
    dbs: Vec<(u64, u64)>,
    overhead: u64,
}

/// Collects the numbers for the sections in `s` (shard numbers only when needed).
pub async fn gather(c: &Conn, s: &Sections) -> InfoData {
    let g = &c.globals;
    ensure_sampler(g);
    let (hz, maxclients, maxmemory, policy, backlog, aof) = {
        let cfg = g.config();
        (
            cfg.get_int("hz"),
            cfg.get_int("maxclients"),
            cfg.get_bytes("maxmemory"),
            cfg.effective_maxmemory_policy(),
            cfg.get_bytes("repl_backlog_size"),
            cfg.get_bool("appendonly"),
        )
    };
    let config_file = g.config().config_file().unwrap_or("").to_string();
    let latency_percentiles = if s.wants("latencystats") {
        g.config()
            .get_str("latency_tracking_info_percentiles")
            .split_ascii_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect()
    } else {
        Vec::new()
    };
    let mut d = InfoData {
        latency_tracking: g.latency.tracking(),
        latency_percentiles,
        cluster: c.cluster_emulated,
        os: os_string(),
        pid: std::process::id(),
        run_id: g.run_id.clone(),
        port: g.port,
        server_time_usec: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0),
        uptime_secs: g.start.elapsed().as_secs(),
        hz,
        executable: std::env::current_exe()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        config_file,
        connected_clients: g.connected_clients.load(Ordering::Relaxed),
        blocked_clients: g.blocked_clients.load(Ordering::Relaxed),
        tracking_clients: g.tracking.tracking_clients(),
        tracking_keys: g.tracking.total_keys.load(Ordering::Relaxed),
        tracking_items: g.tracking.total_items.load(Ordering::Relaxed),
        tracking_prefixes: g.tracking.total_prefixes(),
        pubsub: [
            g.pubsub.count(crate::pubsub::Kind::Channel),
            g.pubsub.count(crate::pubsub::Kind::Pattern),
            g.pubsub.count(crate::pubsub::Kind::Shard),
        ],
        clients_in_timeout_table: g.blocked_with_timeout.load(Ordering::Relaxed),
        maxclients,
        max_input_buffer: 0,
        mem: MemoryStats::default(),
        overhead: 0,
        maxmemory,
        maxmemory_policy: policy,
        last_save_secs: g.start_unix_ms / 1000,
        aof_enabled: aof,
        stats: ThreadStats::default(),
        total_connections: g.total_connections.load(Ordering::Relaxed),
        rejected_connections: g.rejected_connections.load(Ordering::Relaxed),
        ops_per_sec: 0,
        input_kbps: 0.0,
        output_kbps: 0.0,
        master_replid: derived_id(&g.run_id, 2),
        repl_backlog_size: backlog,
        cpu: CpuTimes::default(),
        keyspace: Vec::new(),
    };
    if s.wants("clients") {
        let clients: Vec<_> = g.clients().values().cloned().collect();
        d.max_input_buffer = clients
            .iter()
            .map(|cs| cs.info.lock().map(|i| i.qbuf).unwrap_or(0))
            .max()
            .unwrap_or(0);
    }
    if s.wants("cpu") {
        d.cpu = cpu_times();
    }
    if s.wants("stats") {
        let (ops, i, o) = sampler_rates();
        d.ops_per_sec = ops;
        d.input_kbps = i;
        d.output_kbps = o;
    }
    if s.needs_shards() {
        let want_overhead = s.wants("memory");
        let want_histograms = s.wants("latencystats");
        let parts = crate::coord::run_on_all(c, move |sh| ShardPart {
            stats: sh.stats.snapshot(want_histograms),
            dbs: sh
                .dbs
                .iter()
                .map(|t| (t.len() as u64, t.expires() as u64))
                .collect(),
            overhead: if want_overhead {
                sh.dbs.iter().map(|t| t.overhead_bytes() as u64).sum()
            } else {
                0
            },
        })
        .await;
        let ndbs = parts.iter().map(|p| p.dbs.len()).max().unwrap_or(0);
        let mut ks = vec![(0u64, 0u64); ndbs];
        for p in &parts {
            d.stats.merge(&p.stats);
            d.overhead += p.overhead;
            for (i, (k, e)) in p.dbs.iter().enumerate() {
                ks[i].0 += k;
                ks[i].1 += e;
            }
        }
        d.keyspace = ks
            .into_iter()
            .enumerate()
            .map(|(i, (k, e))| (i, k, e))
            .collect();
    }
    if s.wants("memory") {
        d.mem = memory_stats();
    }
    d
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The INFO text for `s`.
pub fn render(s: &Sections, d: &InfoData) -> String {
    let mut out = String::new();
    let mut section = |name: &str, title: &str, body: &dyn Fn(&mut String)| {
        if !s.wants(name) {
            return;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        out.push_str("# ");
        out.push_str(title);
        out.push_str("\r\n");
        body(&mut out);
    };
    // `field:value\r\n`
    fn f(o: &mut String, k: &str, v: impl std::fmt::Display) {
        let _ = write!(o, "{k}:{v}\r\n");
    }

    section("server", "Server", &|o| {
        f(
            o,
            "redis_version",
            crate::commands::connection::REDIS_VERSION,
        );
        f(o, "damselfly_version", env!("CARGO_PKG_VERSION"));
        f(o, "redis_git_sha1", "00000000");
        f(o, "redis_git_dirty", 0);
        f(
            o,
            "redis_build_id",
            &derived_id(env!("CARGO_PKG_VERSION"), 1)[..16],
        );
        f(
            o,
            "redis_mode",
            if d.cluster { "cluster" } else { "standalone" },
        );
        f(o, "os", &d.os);
        f(o, "arch_bits", usize::BITS);
        f(o, "monotonic_clock", "POSIX clock_gettime");
        f(o, "multiplexing_api", "epoll");
        f(o, "atomicvar_api", "c11-builtin");
        f(o, "gcc_version", "0.0.0");
        f(o, "process_id", d.pid);
        f(o, "process_supervised", "no");
        f(o, "run_id", &d.run_id);
        f(o, "tcp_port", d.port);
        f(o, "server_time_usec", d.server_time_usec);
        f(o, "uptime_in_seconds", d.uptime_secs);
        f(o, "uptime_in_days", d.uptime_secs / 86400);
        f(o, "hz", d.hz);
        f(o, "configured_hz", d.hz);
        f(o, "lru_clock", lru_clock());
        f(o, "executable", &d.executable);
        f(o, "config_file", &d.config_file);
        f(o, "io_threads_active", 0);
    });
    section("clients", "Clients", &|o| {
        f(o, "connected_clients", d.connected_clients);
        f(o, "cluster_connections", 0);
        f(o, "maxclients", d.maxclients);
        f(o, "client_recent_max_input_buffer", d.max_input_buffer);
        f(o, "client_recent_max_output_buffer", 0);
        f(o, "blocked_clients", d.blocked_clients);
        f(o, "tracking_clients", d.tracking_clients);
        f(o, "clients_in_timeout_table", d.clients_in_timeout_table);
    });
    section("memory", "Memory", &|o| {
        let m = &d.mem;
        let used = m.allocated;
        let peak = m.peak.max(used);
        let overhead = d.overhead.min(used);
        let dataset = used - overhead;
        f(o, "used_memory", used);
        f(o, "used_memory_human", bytes_to_human(used));
        f(o, "used_memory_rss", m.rss);
        f(o, "used_memory_rss_human", bytes_to_human(m.rss));
        f(o, "used_memory_peak", peak);
        f(o, "used_memory_peak_human", bytes_to_human(peak));
        f(
            o,
            "used_memory_peak_perc",
            format!("{:.2}%", ratio(used, peak) * 100.0),
        );
        f(o, "used_memory_overhead", overhead);
        f(o, "used_memory_startup", 0);
        f(o, "used_memory_dataset", dataset);
        f(
            o,
            "used_memory_dataset_perc",
            format!("{:.2}%", ratio(dataset, used) * 100.0),
        );
        f(o, "allocator_allocated", m.allocated);
        f(o, "allocator_active", m.active);
        f(o, "allocator_resident", m.resident);
        f(o, "total_system_memory", m.total_system);
        f(
            o,
            "total_system_memory_human",
            bytes_to_human(m.total_system),
        );
        f(o, "used_memory_lua", 0);
        f(o, "used_memory_vm_eval", 0);
        f(o, "used_memory_lua_human", "0B");
        f(o, "used_memory_scripts_eval", 0);
        f(o, "number_of_cached_scripts", 0);
        f(o, "number_of_functions", 0);
        f(o, "number_of_libraries", 0);
        f(o, "used_memory_vm_functions", 0);
        f(o, "used_memory_vm_total", 0);
        f(o, "used_memory_vm_total_human", "0B");
        f(o, "used_memory_functions", 0);
        f(o, "used_memory_scripts", 0);
        f(o, "used_memory_scripts_human", "0B");
        f(o, "maxmemory", d.maxmemory);
        f(o, "maxmemory_human", bytes_to_human(d.maxmemory));
        f(o, "maxmemory_policy", &d.maxmemory_policy);
        f(
            o,
            "allocator_frag_ratio",
            format!("{:.2}", ratio(m.active, m.allocated)),
        );
        f(
            o,
            "allocator_frag_bytes",
            m.active as i64 - m.allocated as i64,
        );
        f(
            o,
            "allocator_rss_ratio",
            format!("{:.2}", ratio(m.resident, m.active)),
        );
        f(
            o,
            "allocator_rss_bytes",
            m.resident as i64 - m.active as i64,
        );
        f(
            o,
            "rss_overhead_ratio",
            format!("{:.2}", ratio(m.rss, m.resident)),
        );
        f(o, "rss_overhead_bytes", m.rss as i64 - m.resident as i64);
        f(
            o,
            "mem_fragmentation_ratio",
            format!("{:.2}", ratio(m.rss, used)),
        );
        f(o, "mem_fragmentation_bytes", m.rss as i64 - used as i64);
        for k in [
            "mem_not_counted_for_evict",
            "mem_replication_backlog",
            "mem_total_replication_buffers",
            "mem_clients_slaves",
            "mem_clients_normal",
            "mem_cluster_links",
            "mem_aof_buffer",
        ] {
            f(o, k, 0);
        }
        f(o, "mem_allocator", "jemalloc-5.3.0");
        f(o, "active_defrag_running", 0);
        f(o, "lazyfree_pending_objects", 0);
        f(o, "lazyfreed_objects", 0);
    });
    section("persistence", "Persistence", &|o| {
        f(o, "loading", 0);
        f(o, "async_loading", 0);
        f(o, "current_cow_peak", 0);
        f(o, "current_cow_size", 0);
        f(o, "current_cow_size_age", 0);
        f(o, "current_fork_perc", "0.00");
        f(o, "current_save_keys_processed", 0);
        f(o, "current_save_keys_total", 0);
        f(o, "rdb_changes_since_last_save", 0);
        f(o, "rdb_bgsave_in_progress", 0);
        f(o, "rdb_last_save_time", d.last_save_secs);
        f(o, "rdb_last_bgsave_status", "ok");
        f(o, "rdb_last_bgsave_time_sec", -1);
        f(o, "rdb_current_bgsave_time_sec", -1);
        f(o, "rdb_saves", 0);
        f(o, "rdb_last_cow_size", 0);
        f(o, "rdb_last_load_keys_expired", 0);
        f(o, "rdb_last_load_keys_loaded", 0);
        f(o, "aof_enabled", d.aof_enabled as u8);
        f(o, "aof_rewrite_in_progress", 0);
        f(o, "aof_rewrite_scheduled", 0);
        f(o, "aof_last_rewrite_time_sec", -1);
        f(o, "aof_current_rewrite_time_sec", -1);
        f(o, "aof_last_bgrewrite_status", "ok");
        f(o, "aof_rewrites", 0);
        f(o, "aof_rewrites_consecutive_failures", 0);
        f(o, "aof_last_write_status", "ok");
        f(o, "aof_last_cow_size", 0);
        f(o, "module_fork_in_progress", 0);
        f(o, "module_fork_last_cow_size", 0);
    });
    section("stats", "Stats", &|o| {
        let st = &d.stats;
        let errors: u64 = st.errorstats.values().sum();
        f(o, "total_connections_received", d.total_connections);
        f(o, "total_commands_processed", st.total_commands);
        f(o, "instantaneous_ops_per_sec", d.ops_per_sec);
        f(o, "total_net_input_bytes", st.net_input_bytes);
        f(o, "total_net_output_bytes", st.net_output_bytes);
        f(o, "total_net_repl_input_bytes", 0);
        f(o, "total_net_repl_output_bytes", 0);
        f(
            o,
            "instantaneous_input_kbps",
            format!("{:.2}", d.input_kbps),
        );
        f(
            o,
            "instantaneous_output_kbps",
            format!("{:.2}", d.output_kbps),
        );
        f(o, "instantaneous_input_repl_kbps", "0.00");
        f(o, "instantaneous_output_repl_kbps", "0.00");
        f(o, "rejected_connections", d.rejected_connections);
        f(o, "sync_full", 0);
        f(o, "sync_partial_ok", 0);
        f(o, "sync_partial_err", 0);
        f(o, "expired_keys", st.expired_keys);
        f(o, "expired_stale_perc", "0.00");
        f(o, "expired_time_cap_reached_count", 0);
        f(o, "expire_cycle_cpu_milliseconds", 0);
        f(o, "evicted_keys", st.evicted_keys);
        f(o, "evicted_clients", 0);
        f(o, "total_eviction_exceeded_time", 0);
        f(o, "current_eviction_exceeded_time", 0);
        f(o, "keyspace_hits", st.keyspace_hits);
        f(o, "keyspace_misses", st.keyspace_misses);
        f(o, "pubsub_channels", d.pubsub[0]);
        f(o, "pubsub_patterns", d.pubsub[1]);
        f(o, "pubsubshard_channels", d.pubsub[2]);
        for k in [
            "latest_fork_usec",
            "total_forks",
            "migrate_cached_sockets",
            "slave_expires_tracked_keys",
            "active_defrag_hits",
            "active_defrag_misses",
            "active_defrag_key_hits",
            "active_defrag_key_misses",
            "total_active_defrag_time",
            "current_active_defrag_time",
        ] {
            f(o, k, 0);
        }
        f(o, "tracking_total_keys", d.tracking_keys);
        f(o, "tracking_total_items", d.tracking_items);
        f(o, "tracking_total_prefixes", d.tracking_prefixes);
        f(o, "unexpected_error_replies", 0);
        f(o, "total_error_replies", errors);
        f(o, "dump_payload_sanitizations", 0);
        f(o, "total_reads_processed", 0);
        f(o, "total_writes_processed", 0);
        f(o, "io_threaded_reads_processed", 0);
        f(o, "io_threaded_writes_processed", 0);
        f(o, "reply_buffer_shrinks", 0);
        f(o, "reply_buffer_expands", 0);
    });
    section("replication", "Replication", &|o| {
        f(o, "role", "master");
        f(o, "connected_slaves", 0);
        f(o, "master_failover_state", "no-failover");
        f(o, "master_replid", &d.master_replid);
        f(o, "master_replid2", "0".repeat(40));
        f(o, "master_repl_offset", 0);
        f(o, "second_repl_offset", -1);
        f(o, "repl_backlog_active", 0);
        f(o, "repl_backlog_size", d.repl_backlog_size);
        f(o, "repl_backlog_first_byte_offset", 0);
        f(o, "repl_backlog_histlen", 0);
    });
    section("cpu", "CPU", &|o| {
        let t = |(s, us): (i64, i64)| format!("{s}.{us:06}");
        let c = &d.cpu;
        f(o, "used_cpu_sys", t(c.process.0));
        f(o, "used_cpu_user", t(c.process.1));
        f(o, "used_cpu_sys_children", t(c.children.0));
        f(o, "used_cpu_user_children", t(c.children.1));
        f(o, "used_cpu_sys_main_thread", t(c.thread.0));
        f(o, "used_cpu_user_main_thread", t(c.thread.1));
    });
    section("modules", "Modules", &|_| {});
    section("commandstats", "Commandstats", &|o| {
        let mut names: Vec<&&'static str> = d.stats.cmdstats.keys().collect();
        names.sort();
        for n in names {
            let c = &d.stats.cmdstats[*n];
            if c.calls == 0 && c.failed == 0 && c.rejected == 0 {
                continue;
            }
            let per = if c.calls == 0 {
                0.0
            } else {
                c.usec as f64 / c.calls as f64
            };
            let _ = write!(
                o,
                "cmdstat_{}:calls={},usec={},usec_per_call={:.2},rejected_calls={},failed_calls={}\r\n",
                n, c.calls, c.usec, per, c.rejected, c.failed
            );
        }
    });
    section("errorstats", "Errorstats", &|o| {
        let mut names: Vec<&String> = d.stats.errorstats.keys().collect();
        names.sort();
        for n in names {
            let _ = write!(o, "errorstat_{}:count={}\r\n", n, d.stats.errorstats[n]);
        }
    });
    section("latencystats", "Latencystats", &|o| {
        if !d.latency_tracking {
            return;
        }
        let mut names: Vec<&&'static str> = d.stats.cmdstats.keys().collect();
        names.sort();
        for n in names {
            let h = &d.stats.cmdstats[*n].hist;
            if h.total() == 0 {
                continue;
            }
            let _ = write!(o, "latency_percentiles_usec_{n}:");
            for (j, &p) in d.latency_percentiles.iter().enumerate() {
                if j > 0 {
                    o.push(',');
                }
                let usec = h.value_at_percentile(p) as f64 / 1000.0;
                let _ = write!(o, "p{}={usec:.3}", crate::config::format_percentile(p));
            }
            o.push_str("\r\n");
        }
    });
    section("cluster", "Cluster", &|o| {
        f(o, "cluster_enabled", d.cluster as u8);
    });
    section("keyspace", "Keyspace", &|o| {
        for &(db, keys, expires) in &d.keyspace {
            if keys > 0 {
                let _ = write!(o, "db{db}:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
        }
    });
    out
}

// ------------------------------------------------------------------------------------------
// The sampler behind instantaneous_* and used_memory_peak
// ------------------------------------------------------------------------------------------

/// Samples kept: 16 x 100 ms, as Redis's STATS_METRIC_SAMPLES.
const SAMPLES: usize = 16;
const SAMPLE_PERIOD: Duration = Duration::from_millis(100);

#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    commands: u64,
    input: u64,
    output: u64,
}

static SAMPLER: OnceLock<Mutex<VecDeque<Sample>>> = OnceLock::new();

fn samples() -> &'static Mutex<VecDeque<Sample>> {
    SAMPLER.get_or_init(|| Mutex::new(VecDeque::with_capacity(SAMPLES + 1)))
}

/// Forgets the samples (CONFIG RESETSTAT: counters restart from zero).
pub fn reset_samples() {
    samples().lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// (ops/sec, input KB/s, output KB/s) over the sampled window.
fn sampler_rates() -> (u64, f64, f64) {
    let s = samples().lock().unwrap_or_else(|e| e.into_inner());
    let (Some(first), Some(last)) = (s.front(), s.back()) else {
        return (0, 0.0, 0.0);
    };
    let dt = last.at.duration_since(first.at).as_secs_f64();
    if dt <= 0.0 {
        return (0, 0.0, 0.0);
    }
    let per = |a: u64, b: u64| b.saturating_sub(a) as f64 / dt;
    (
        per(first.commands, last.commands).round() as u64,
        per(first.input, last.input) / 1024.0,
        per(first.output, last.output) / 1024.0,
    )
}

/// Starts the sampler thread once per process.
fn ensure_sampler(g: &Arc<Globals>) {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let g = g.clone();
        let _ = std::thread::Builder::new()
            .name("info-sampler".into())
            .spawn(move || sampler_loop(g));
    });
}

fn sampler_loop(g: Arc<Globals>) {
    let shutdown = g.shutdown.subscribe();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel::<(u64, u64, u64)>();
        let mut sent = 0;
        for inbox in &g.inboxes {
            let tx = tx.clone();
            let job: crate::shard::ShardFn = Box::new(move |sh| {
                let st = &sh.stats;
                let _ = tx.send((st.total_commands, st.net_input_bytes, st.net_output_bytes));
            });
            if inbox.send(ShardMsg::Run(job)).is_err() {
                return;
            }
            sent += 1;
        }
        drop(tx);
        let mut sample = Sample {
            at: Instant::now(),
            commands: 0,
            input: 0,
            output: 0,
        };
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(2);
        while got < sent {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((c, i, o)) => {
                    sample.commands += c;
                    sample.input += i;
                    sample.output += o;
                    got += 1;
                }
                Err(_) => break,
            }
        }
        if got == sent {
            let mut s = samples().lock().unwrap_or_else(|e| e.into_inner());
            // Counters went down: a CONFIG RESETSTAT happened since the last sample.
            if s.back().is_some_and(|b| b.commands > sample.commands) {
                s.clear();
            }
            s.push_back(sample);
            while s.len() > SAMPLES {
                s.pop_front();
            }
        }
        {
            use tikv_jemalloc_ctl::{epoch, stats};
            let _ = epoch::advance();
            note_peak(stats::allocated::read().unwrap_or(0) as u64);
        }
        std::thread::sleep(SAMPLE_PERIOD);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::CmdStat;

    fn headers(text: &str) -> Vec<&str> {
        text.split("\r\n").filter(|l| l.starts_with("# ")).collect()
    }

    fn sample() -> InfoData {
        let mut d = InfoData {
            os: "Linux 6.1.0 x86_64".into(),
            run_id: "a".repeat(40),
            port: 6379,
            uptime_secs: 200_000,
            hz: 10,
            maxclients: 10000,
            maxmemory_policy: "noeviction".into(),
            master_replid: "b".repeat(40),
            repl_backlog_size: 1048576,
            keyspace: vec![(0, 3, 1), (1, 0, 0), (2, 5, 0)],
            ..Default::default()
        };
        d.mem.allocated = 1536 * 1024;
        d.mem.rss = 3 * 1024 * 1024;
        d.stats.cmdstats.insert(
            "get",
            CmdStat {
                calls: 3,
                usec: 10,
                rejected: 0,
                failed: 1,
                ..Default::default()
            },
        );
        d.stats.cmdstats.insert("set", CmdStat::default());
        d.stats.cmdstats.insert(
            "config|get",
            CmdStat {
                calls: 0,
                usec: 0,
                rejected: 2,
                failed: 0,
                ..Default::default()
            },
        );
        d.stats.errorstats.insert("WRONGTYPE".into(), 1);
        d.stats.errorstats.insert("ERR".into(), 2);
        d
    }

    #[test]
    fn section_selection_as_redis_7_0() {
        let d = sample();
        let r = |args: &[&str]| {
            let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
            render(&Sections::parse(&a), &d)
        };
        let default = [
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Errorstats",
            "# Cluster",
            "# Keyspace",
        ];
        assert_eq!(headers(&r(&[])), default);
        assert_eq!(headers(&r(&["default"])), default);
        assert_eq!(headers(&r(&["DEFAULT", "cpu"])), default);
        let all = [
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Commandstats",
            "# Errorstats",
            "# Latencystats",
            "# Cluster",
            "# Keyspace",
        ];
        assert_eq!(headers(&r(&["all"])), all);
        assert_eq!(headers(&r(&["everything"])), all);
        assert_eq!(
            headers(&r(&["keyspace", "CPU", "cpu"])),
            ["# CPU", "# Keyspace"]
        );
        assert_eq!(headers(&r(&["module_list"])), ["# Modules"]);
        assert_eq!(r(&["modules"]), "# Modules\r\n");
        assert_eq!(r(&["nosuch"]), "");
        assert!(!Sections::parse(&[b"server"]).needs_shards());
        assert!(Sections::parse(&[b"keyspace"]).needs_shards());
        assert!(Sections::parse(&[]).needs_shards());
    }

    #[test]
    fn latencystats_lines() {
        let mut d = sample();
        let r = |d: &InfoData| render(&Sections::parse(&[b"latencystats"]), d);
        d.latency_percentiles = vec![50.0, 99.0, 99.9];
        // No histograms yet (and tracking off): the header alone.
        assert_eq!(r(&d), "# Latencystats\r\n");
        if let Some(get) = d.stats.cmdstats.get_mut("get") {
            get.hist.record_usec(11);
        }
        assert_eq!(r(&d), "# Latencystats\r\n");
        d.latency_tracking = true;
        assert_eq!(
            r(&d),
            "# Latencystats\r\nlatency_percentiles_usec_get:p50=11.007,p99=11.007,p99.9=11.007\r\n"
        );
        d.latency_percentiles = vec![0.0, 100.0];
        assert!(r(&d).ends_with("usec_get:p0=10.944,p100=11.007\r\n"));
        d.latency_percentiles.clear();
        assert!(r(&d).ends_with("usec_get:\r\n"));
    }

    #[test]
    fn shape_and_formats() {
        let d = sample();
        let text = render(&Sections::parse(&[b"all"]), &d);
        // CRLF lines only; sections separated by one empty line; ends with CRLF.
        assert!(text.ends_with("\r\n") && !text.ends_with("\r\n\r\n"));
        assert!(!text.replace("\r\n", "").contains('\n'));
        assert!(text.contains("\r\n\r\n# Clients\r\n"));
        for line in text
            .split("\r\n")
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            assert!(line.contains(':'), "{line}");
        }
        let has = |l: &str| text.split("\r\n").any(|x| x == l);
        assert!(has("redis_version:7.2.4"));
        assert!(has(&format!(
            "damselfly_version:{}",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(has("redis_mode:standalone"));
        assert!(has("uptime_in_days:2"));
        assert!(has("used_memory:1572864"));
        assert!(has("used_memory_human:1.50M"));
        assert!(has("used_memory_rss_human:3.00M"));
        assert!(has("mem_fragmentation_ratio:2.00"));
        assert!(has("maxmemory_human:0B"));
        assert!(has("mem_allocator:jemalloc-5.3.0"));
        assert!(has("role:master"));
        assert!(has("master_repl_offset:0"));
        assert!(has("loading:0"));
        assert!(has("total_error_replies:3"));
        assert!(has(
            "cmdstat_get:calls=3,usec=10,usec_per_call=3.33,rejected_calls=0,failed_calls=1"
        ));
        assert!(has(
            "cmdstat_config|get:calls=0,usec=0,usec_per_call=0.00,rejected_calls=2,failed_calls=0"
        ));
        assert!(!text.contains("cmdstat_set:"));
        assert!(text
            .contains("# Errorstats\r\nerrorstat_ERR:count=2\r\nerrorstat_WRONGTYPE:count=1\r\n"));
        assert!(text.ends_with(
            "# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0\r\ndb2:keys=5,expires=0,avg_ttl=0\r\n"
        ));
        assert!(has("cluster_enabled:0"));
        let mut c = d.clone();
        c.cluster = true;
        let t = render(&Sections::parse(&[b"cluster", b"server"]), &c);
        assert!(t.contains("redis_mode:cluster\r\n"));
        assert!(t.ends_with("\r\n\r\n# Cluster\r\ncluster_enabled:1\r\n"));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(bytes_to_human(0), "0B");
        assert_eq!(bytes_to_human(1023), "1023B");
        assert_eq!(bytes_to_human(1024), "1.00K");
        assert_eq!(bytes_to_human(916504), "895.02K");
        assert_eq!(bytes_to_human(6860800), "6.54M");
        assert_eq!(bytes_to_human(25276510208), "23.54G");
        assert_eq!(bytes_to_human(1 << 40), "1.00T");
    }

    #[test]
    fn derived_ids_are_stable_hex() {
        let a = derived_id("abc", 1);
        assert_eq!(a.len(), 40);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(a, derived_id("abc", 1));
        assert_ne!(a, derived_id("abc", 2));
        assert_ne!(a, derived_id("abd", 1));
    }
}
