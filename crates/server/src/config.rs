//! The option registry: one table of options feeds the command line, the
//! environment, `--flagfile`, redis.conf files, CONFIG GET / CONFIG SET,
//! INFO and `--help`.
//!
//! # Invariant
//!
//! **Every option is declared exactly once, in [`OPTIONS`]; nothing else
//! defines options.** Parsers, CONFIG GET/SET, INFO and the help text all
//! read that table. To add an option, add one row (its Dragonfly-style
//! `name`, its Redis name if Redis has one, aliases, type, default,
//! mutability, whether it is implemented, and help), then read it with
//! [`Config::get_str`] & co. A test checks that no two rows share a name.
//!
//! # Names
//!
//! * `name` is the Dragonfly-style snake_case name (`proactor_threads`,
//!   `maxmemory_policy`); `redis_name` is Redis's (`maxmemory-policy`);
//!   `aliases` are further names (Redis's old names such as `slaveof`,
//!   `hash-max-ziplist-entries`, `lua-time-limit`).
//! * Everywhere a name is looked up (flags, environment, config files,
//!   CONFIG GET without glob characters, CONFIG SET, the getters) it is
//!   case-insensitive and `-` and `_` are interchangeable.
//! * The CONFIG name of an option is its Redis name, or its Dragonfly name
//!   when Redis has no such option. CONFIG GET globs are matched (Redis
//!   glob, case-insensitive, [`glob_match`]) against CONFIG names and
//!   aliases, exactly as Redis 7.0 lists both `replicaof` and `slaveof`.
//!
//! # Command line (`Config::from_args`)
//!
//! Arguments are processed in order; a later setting overrides an earlier
//! one (except `save`, see below). Environment variables are applied
//! first, so the command line wins over the environment.
//!
//! * `--flag=value`, `--flag value`, `-flag=value`, `-flag value`.
//!   A non-boolean flag without `=` always takes the next argument as its
//!   value, even if it starts with `-` (`--slowlog-log-slower-than -1`).
//! * Booleans: `--flag` (true), `--noflag` (false),
//!   `--flag=true|false|yes|no|1|0` (any case), and `--flag true`: the next
//!   argument is consumed only if it is one of true/false/yes/no/1/0
//!   (so `--cache_mode true` and Redis-style `--appendonly no` work).
//! * Redis names work as flags (`--maxmemory-policy allkeys-lru`,
//!   `--save ""`, `--appendonly no`, `--databases 16`). Options that take
//!   several words in Redis (`save`, `bind`, `replicaof`,
//!   `client-output-buffer-limit`, ...) also consume the following
//!   arguments up to the next flag: `--save 900 1 300 10`,
//!   `--bind 127.0.0.1 ::1`, `--replicaof host 6379`. A bare `--save`
//!   means `--save ""`.
//! * `--flagfile=path` (or `--flagfile path`, or `DFLY_flagfile`): one
//!   `--flag=value` per line; blank lines and lines starting with `#` are
//!   ignored; a line `--flag value` is accepted too. Flag files may include
//!   further flag files (up to 16 deep).
//! * A positional argument naming an existing file is read as a redis.conf:
//!   one `name value...` directive per line, `#` comments, values quoted
//!   like Redis (`save ""`, `"a b"`, `'x'`, `"\x41"`). `include path` is
//!   supported (up to 16 deep). Redis directives that configure things
//!   other than options (`rename-command`, `user`, `loadmodule`,
//!   `sentinel`) are rejected with a clear error; the deprecated
//!   `list-max-ziplist-entries`, `list-max-ziplist-value` and
//!   `lua-replicate-commands` are ignored, as Redis 7.0 does.
//! * `--` ends flag parsing; later arguments are config files.
//! * Environment: `DFLY_<flag>=value` for any flag (`DFLY_requirepass`,
//!   `DFLY_proactor_threads`, `DFLY_maxmemory_policy`); `DFLY_PASSWORD`
//!   sets `requirepass` (an explicit `DFLY_requirepass` wins). Unknown
//!   `DFLY_` variables are an error, except `DFLY_DEV_ENV`.
//! * `save` accumulates like in Redis: within one startup, the first
//!   explicit `save` replaces the default and later ones (more `save` lines
//!   in a redis.conf, more `--save` flags) append save points; `save ""`
//!   clears them.
//! * `--help` (`-h`, `-help`, `--helpfull`) gives [`ConfigError::Help`],
//!   `--version` (`-version`, a bare `-v`) gives [`ConfigError::Version`].
//! * Unknown flag: `unknown command line flag 'foo'`. A bad value names the
//!   flag and what it expects, e.g. `invalid value 'x' for --port: expected
//!   an integer in [0, 65535]`.
//!
//! # Values and units
//!
//! * Memory sizes on the command line, in the environment and in flag files
//!   use Dragonfly's 1024-based units: a number (fractions allowed) with an
//!   optional unit `b`, `k`/`kb`/`kib`, `m`/`mb`/`mib`, `g`/`gb`/`gib`,
//!   `t`/`tb`/`tib`, `p`/`pb`/`pib`, any case: `512mb`, `1g`, `2GB`,
//!   `1.5gb`, `100kib`, `1024` (rounded to the nearest byte).
//! * In redis.conf files and CONFIG SET, memory sizes use Redis's
//!   `memtoull`: an integer with an optional unit where `k`=1000,
//!   `kb`=1024, `m`=10^6, `mb`=1024^2, `g`=10^9, `gb`=1024^3 (no fractions,
//!   no `kib`). CONFIG GET reports sizes in bytes.
//! * Integers in redis.conf and CONFIG SET are parsed like Redis
//!   (`string2ll`: no `+`, no leading zeros, no spaces); the command line
//!   also accepts a leading `+`.
//! * CONFIG GET shows booleans as `yes`/`no` for options with a Redis name
//!   and `true`/`false` for Dragonfly-only options. CONFIG SET of a
//!   Redis-named boolean accepts only `yes`/`no` (as Redis); Dragonfly-only
//!   booleans also accept true/false/1/0.
//!
//! # Defaults that differ from Redis 7.0
//!
//! * `save` is empty: Damselfly does not snapshot by default (Redis's
//!   default is `3600 1 300 100 60 10000`).
//! * `bind` is empty, meaning all interfaces (Dragonfly's default; Redis
//!   reports `* -::*`).
//! * `port` and `bind` are immutable at runtime (Redis can rebind).
//! * `dir` is empty and CONFIG GET reports the current working directory
//!   as an absolute path, as Redis does after `chdir`. CONFIG SET of `dir`
//!   and `dbfilename` is refused unless `enable-protected-configs` is
//!   `yes` (Redis 7.0 semantics); a successful CONFIG SET dir checks the
//!   directory and stores its absolute path but does not `chdir`.
//! * `max_multi_bulk_len` defaults to 2147483647 (Redis's only limit is
//!   INT_MAX; Dragonfly's default of 65536 would reject large MSET/DEL).
//! * `set-max-listpack-entries` (a Redis 7.2 option) is registered too.
//! * `hz` is clamped to 1..500 like Redis.
//! * With `cache_mode` on and `maxmemory-policy` left at `noeviction`,
//!   INFO and CONFIG GET report `allkeys-lru`
//!   ([`Config::effective_maxmemory_policy`]).
//!
//! # CONFIG SET
//!
//! [`Config::config_set`] / [`Config::config_set_multi`] reproduce Redis
//! 7.0's checks and error texts (returned without the leading `-`):
//! unknown names, immutable and protected options, duplicate parameters
//! (first error in argument order wins), then value parsing; a failed
//! multi-set changes nothing. Options that are accepted but not implemented
//! (`active: false`) store the value and report it back.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use damselfly_core::glob::glob_match;

/// The type of an option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptType {
    /// yes/no, true/false.
    Bool,
    /// A signed integer in `[min, max]`.
    Int { min: i64, max: i64 },
    /// A size in bytes in `[min, max]` (see the module doc for units).
    Memory { min: u64, max: u64 },
    /// Free text.
    Str,
    /// One of the listed words (case-insensitive; stored as listed).
    Enum(&'static [&'static str]),
    /// A floating-point number.
    Float,
    /// Space-separated words from the list; the first word is the
    /// "nothing set" value (Redis's `shutdown-on-sigint`).
    EnumFlags(&'static [&'static str]),
    /// Redis `save`: `""` or pairs of `<seconds> <changes>`.
    Save,
    /// Redis `notify-keyspace-events` class letters, stored as a bit mask
    /// (see [`notify`]); `get_int` returns the mask.
    KeyspaceEvents,
    /// Redis `client-output-buffer-limit` (`<class> <hard> <soft> <secs>`...).
    ClientOutputBufferLimit,
    /// A memory size or a percentage (`10%`), Redis `maxmemory-clients`.
    MemoryOrPercent,
    /// Space-separated percentiles in [0, 100]
    /// (`latency-tracking-info-percentiles`).
    Percentiles,
    /// Three integers in [-2000, 2000] (`oom-score-adj-values`).
    OomScoreAdjValues,
}

/// One option in the registry.
#[derive(Debug, Clone, Copy)]
pub struct OptDef {
    /// Dragonfly-style snake_case name, e.g. `proactor_threads`.
    pub name: &'static str,
    /// Redis's name, e.g. `maxmemory-policy`; `None` for Dragonfly-only
    /// options.
    pub redis_name: Option<&'static str>,
    /// More accepted names (Redis aliases such as `slaveof`); they are also
    /// listed by CONFIG GET globs, like in Redis.
    pub aliases: &'static [&'static str],
    pub ty: OptType,
    /// The default, written as CONFIG GET shows it.
    pub default: &'static str,
    /// Settable with CONFIG SET.
    pub mutable: bool,
    /// Implemented now. Inactive options are accepted, stored and reported
    /// but have no effect (see [`Config::inactive_options_set`]).
    pub active: bool,
    /// Redis "protected" option (`dir`, `dbfilename`): CONFIG SET needs
    /// `enable-protected-configs`.
    pub protected: bool,
    /// Takes several words (`save 900 1 300 10`, `bind a b`): on the command
    /// line it also consumes the following non-flag arguments, and in a
    /// redis.conf all arguments are joined with spaces.
    pub multi_arg: bool,
    pub help: &'static str,
}

impl OptDef {
    /// The name CONFIG GET/SET use: the Redis name, else the Dragonfly name.
    pub fn config_name(&self) -> &'static str {
        self.redis_name.unwrap_or(self.name)
    }

    const fn immutable(mut self) -> Self {
        self.mutable = false;
        self
    }
    const fn active(mut self) -> Self {
        self.active = true;
        self
    }
    const fn protected(mut self) -> Self {
        self.protected = true;
        self
    }
    const fn multi_arg(mut self) -> Self {
        self.multi_arg = true;
        self
    }
    const fn aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }
}

/// A Dragonfly-only option (no Redis name): mutable, inactive until marked.
const fn dfly(
    name: &'static str,
    ty: OptType,
    default: &'static str,
    help: &'static str,
) -> OptDef {
    OptDef {
        name,
        redis_name: None,
        aliases: &[],
        ty,
        default,
        mutable: true,
        active: false,
        protected: false,
        multi_arg: false,
        help,
    }
}

/// An option Redis has: mutable, inactive until marked.
const fn redis(
    name: &'static str,
    redis_name: &'static str,
    ty: OptType,
    default: &'static str,
    help: &'static str,
) -> OptDef {
    OptDef {
        name,
        redis_name: Some(redis_name),
        aliases: &[],
        ty,
        default,
        mutable: true,
        active: false,
        protected: false,
        multi_arg: false,
        help,
    }
}

const I32_MAX: i64 = i32::MAX as i64;
const I32_MIN: i64 = i32::MIN as i64;
const U32_MAX: i64 = u32::MAX as i64;
const MB: u64 = 1024 * 1024;

use OptType as T;

/// The registry. See the module documentation for the invariant.
///
/// Defaults and CONFIG GET formats of Redis-named options are Redis 7.0.15's
/// (checked against `CONFIG GET *`), except where the module doc says
/// otherwise.
pub static OPTIONS: &[OptDef] = &[
    redis("port", "port", T::Int { min: 0, max: 65535 }, "6379", "TCP port to listen on").immutable().active(),
    redis("bind", "bind", T::Str, "", "Addresses to listen on, separated by spaces (a leading '-' marks an optional address, as in Redis); empty means all interfaces").immutable().multi_arg().active(),
    redis("requirepass", "requirepass", T::Str, "", "Password of the default user (AUTH <password>); empty means no password. DFLY_PASSWORD sets it too").active(),
    redis("maxclients", "maxclients", T::Int { min: 1, max: U32_MAX }, "10000", "Maximum number of simultaneously connected clients").active(),
    redis("timeout", "timeout", T::Int { min: 0, max: I32_MAX }, "0", "Close a client connection after it has been idle this many seconds (0 = never)").active(),
    redis("tcp_keepalive", "tcp-keepalive", T::Int { min: 0, max: I32_MAX }, "300", "TCP keepalive interval in seconds for client connections (0 = off)").active(),
    redis("tcp_backlog", "tcp-backlog", T::Int { min: 0, max: I32_MAX }, "511", "Backlog of the listening socket").immutable().active(),
    redis("proto_max_bulk_len", "proto-max-bulk-len", T::Memory { min: MB, max: I64_MAX_U }, "536870912", "Largest bulk string a client may send, in bytes").active(),
    dfly("max_multi_bulk_len", T::Int { min: 1, max: I32_MAX }, "2147483647", "Largest number of elements in a request (Dragonfly's default is 65536; Damselfly follows Redis, whose only limit is INT_MAX, with client_query_buffer_limit bounding memory)").immutable().active(),
    redis("client_query_buffer_limit", "client-query-buffer-limit", T::Memory { min: MB, max: I64_MAX_U }, "1073741824", "Largest query buffer a client may accumulate, in bytes").active(),
    dfly("proactor_threads", T::Int { min: 0, max: 1024 }, "0", "Number of I/O threads (0 = one per CPU)").immutable().active(),
    dfly("num_shards", T::Int { min: 0, max: 1024 }, "0", "Number of keyspace shards (0 = one per I/O thread)").immutable().active(),
    redis("dbnum", "databases", T::Int { min: 1, max: 1024 }, "16", "Number of logical databases").immutable().active(),
    dfly("cluster_mode", T::Enum(&["", "emulated", "yes"]), "", "Cluster mode: '' (off), 'emulated' (a one-node cluster) or 'yes' (real multi-node cluster, not implemented)").immutable().active(),
    redis("maxmemory", "maxmemory", T::Memory { min: 0, max: u64::MAX }, "0", "Memory limit for the dataset in bytes (0 = no limit)"),
    redis("maxmemory_policy", "maxmemory-policy", T::Enum(&["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction"]), "noeviction", "What to evict when maxmemory is reached"),
    dfly("cache_mode", T::Bool, "false", "Cache mode: evict keys when near maxmemory; reported maxmemory-policy becomes allkeys-lru unless another policy is set"),
    redis("maxmemory_samples", "maxmemory-samples", T::Int { min: 1, max: I32_MAX }, "5", "Keys sampled per eviction attempt"),
    redis("maxmemory_eviction_tenacity", "maxmemory-eviction-tenacity", T::Int { min: 0, max: 100 }, "10", "Eviction processing effort (0..100)"),
    redis("maxmemory_clients", "maxmemory-clients", T::MemoryOrPercent, "0", "Memory limit for all client buffers together, in bytes or as a percentage of maxmemory (0 = no limit)"),
    redis("lfu_log_factor", "lfu-log-factor", T::Int { min: 0, max: I32_MAX }, "10", "LFU counter logarithm factor"),
    redis("lfu_decay_time", "lfu-decay-time", T::Int { min: 0, max: I32_MAX }, "1", "LFU counter decay time in minutes"),
    dfly("oom_deny_ratio", T::Float, "1.1", "Reject writes when used memory exceeds maxmemory times this ratio (Dragonfly)"),
    dfly("mem_defrag_threshold", T::Float, "0.7", "Start defragmentation when used memory exceeds this fraction of maxmemory (Dragonfly)"),
    redis("loglevel", "loglevel", T::Enum(&["debug", "verbose", "notice", "warning"]), "notice", "Log verbosity"),
    redis("logfile", "logfile", T::Str, "", "Log file ('' = standard output)").immutable(),
    dfly("logtostderr", T::Bool, "false", "Log to stderr instead of log files (Damselfly always logs to stderr)").immutable().active(),
    dfly("alsologtostderr", T::Bool, "false", "Log to stderr as well as to log files (Damselfly always logs to stderr)").immutable().active(),
    dfly("log_dir", T::Str, "", "Directory for log files").immutable(),
    dfly("minloglevel", T::Int { min: 0, max: 3 }, "0", "Least severity logged: 0 info, 1 warning, 2 error, 3 fatal").immutable(),
    dfly("v", T::Int { min: I32_MIN, max: I32_MAX }, "0", "Verbose logging level (--v=N; a bare -v prints the version)").immutable(),
    dfly("vmodule", T::Str, "", "Per-module verbose logging levels").immutable(),
    redis("syslog_enabled", "syslog-enabled", T::Bool, "no", "Log to syslog").immutable(),
    redis("syslog_ident", "syslog-ident", T::Str, "redis", "Syslog identity").immutable(),
    redis("syslog_facility", "syslog-facility", T::Enum(&["user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"]), "local0", "Syslog facility").immutable(),
    redis("daemonize", "daemonize", T::Bool, "no", "Run in the background").immutable(),
    redis("pidfile", "pidfile", T::Str, "", "Write the process id to this file").immutable(),
    redis("unixsocket", "unixsocket", T::Str, "", "Also listen on this Unix socket path").immutable(),
    redis("unixsocketperm", "unixsocketperm", T::Str, "0", "Permissions of the Unix socket, in octal").immutable(),
    redis("supervised", "supervised", T::Enum(&["upstart", "systemd", "auto", "no"]), "no", "Supervision tree interaction").immutable(),
    redis("hz", "hz", T::Int { min: 0, max: I32_MAX }, "10", "Frequency of background tasks in Hz (clamped to 1..500)"),
    redis("dynamic_hz", "dynamic-hz", T::Bool, "yes", "Scale hz with the number of clients"),
    redis("shutdown_timeout", "shutdown-timeout", T::Int { min: 0, max: I32_MAX }, "10", "Seconds to wait for replicas at shutdown"),
    redis("shutdown_on_sigint", "shutdown-on-sigint", T::EnumFlags(&["default", "save", "nosave", "now", "force"]), "default", "Shutdown behaviour on SIGINT").multi_arg(),
    redis("shutdown_on_sigterm", "shutdown-on-sigterm", T::EnumFlags(&["default", "save", "nosave", "now", "force"]), "default", "Shutdown behaviour on SIGTERM").multi_arg(),
    redis("always_show_logo", "always-show-logo", T::Bool, "no", "Show the ASCII logo even when logging to a file").immutable(),
    redis("set_proc_title", "set-proc-title", T::Bool, "yes", "Change the process title").immutable(),
    redis("proc_title_template", "proc-title-template", T::Str, "{title} {listen-addr} {server-mode}", "Process title template"),
    redis("io_threads", "io-threads", T::Int { min: 1, max: 128 }, "1", "Redis I/O threads (see proactor_threads)").immutable(),
    redis("io_threads_do_reads", "io-threads-do-reads", T::Bool, "no", "Use I/O threads for reads too").immutable(),
    redis("server_cpulist", "server_cpulist", T::Str, "", "CPU affinity of the server threads").immutable(),
    redis("bio_cpulist", "bio_cpulist", T::Str, "", "CPU affinity of the background I/O threads").immutable(),
    redis("aof_rewrite_cpulist", "aof_rewrite_cpulist", T::Str, "", "CPU affinity of the AOF rewrite child").immutable(),
    redis("bgsave_cpulist", "bgsave_cpulist", T::Str, "", "CPU affinity of the BGSAVE child").immutable(),
    redis("disable_thp", "disable-thp", T::Bool, "yes", "Disable transparent huge pages").immutable(),
    redis("jemalloc_bg_thread", "jemalloc-bg-thread", T::Bool, "yes", "Enable jemalloc's background purge thread"),
    redis("oom_score_adj", "oom-score-adj", T::Enum(&["no", "yes", "relative", "absolute"]), "no", "Control the process's oom_score_adj"),
    redis("oom_score_adj_values", "oom-score-adj-values", T::OomScoreAdjValues, "0 200 800", "oom_score_adj values for master, replica and background child").multi_arg(),
    redis("crash_log_enabled", "crash-log-enabled", T::Bool, "yes", "Write a crash log on crash"),
    redis("crash_memcheck_enabled", "crash-memcheck-enabled", T::Bool, "yes", "Run a memory check on crash"),
    redis("ignore_warnings", "ignore-warnings", T::Str, "", "Startup warnings to suppress"),
    redis("enable_protected_configs", "enable-protected-configs", T::Enum(&["no", "yes", "local"]), "no", "Allow CONFIG SET of protected options (dir, dbfilename): no, yes or local").immutable(),
    redis("enable_debug_command", "enable-debug-command", T::Enum(&["no", "yes", "local"]), "no", "Allow the DEBUG command: no, yes or local").immutable(),
    redis("enable_module_command", "enable-module-command", T::Enum(&["no", "yes", "local"]), "no", "Allow the MODULE command: no, yes or local").immutable(),
    dfly("version_check", T::Bool, "true", "Check for newer versions (Damselfly never does)").immutable().active(),
    dfly("force_epoll", T::Bool, "false", "Use epoll instead of io_uring (Damselfly always uses epoll)").immutable().active(),
    dfly("primary_port_http_enabled", T::Bool, "true", "Serve HTTP on the main port (Damselfly does not serve HTTP)").immutable().active(),
    dfly("admin_port", T::Int { min: 0, max: 65535 }, "0", "Admin console port (0 = disabled)").immutable(),
    dfly("admin_bind", T::Str, "", "Admin console bind address").immutable(),
    dfly("admin_nopass", T::Bool, "false", "Do not require a password on the admin port").immutable(),
    dfly("memcached_port", T::Int { min: 0, max: 65535 }, "0", "Memcached protocol port (0 = disabled)").immutable(),
    dfly("keys_output_limit", T::Int { min: 0, max: i64::MAX }, "8192", "Dragonfly truncates KEYS replies to this many keys; Damselfly never truncates"),
    dfly("pipeline_squash", T::Int { min: 0, max: i64::MAX }, "10", "Dragonfly pipeline squashing threshold (no effect)"),
    dfly("lock_on_hashtags", T::Bool, "false", "Lock keys by hashtag (Dragonfly)").immutable(),
    dfly("default_lua_flags", T::Str, "", "Default flags for Lua scripts (Dragonfly)"),
    redis("dir", "dir", T::Str, "", "Working directory for snapshots ('' = the current directory; CONFIG GET reports the absolute path)").protected(),
    redis("dbfilename", "dbfilename", T::Str, "dump.rdb", "Snapshot file name").protected(),
    redis("save", "save", T::Save, "", "Snapshot points: pairs of <seconds> <changes>, or \"\" to disable. Damselfly does not snapshot by default (Redis's default is \"3600 1 300 100 60 10000\")").multi_arg(),
    dfly("snapshot_cron", T::Str, "", "Cron expression for periodic snapshots (Dragonfly)"),
    redis("stop_writes_on_bgsave_error", "stop-writes-on-bgsave-error", T::Bool, "yes", "Refuse writes when the last background save failed"),
    redis("rdbcompression", "rdbcompression", T::Bool, "yes", "Compress strings in snapshots"),
    redis("rdbchecksum", "rdbchecksum", T::Bool, "yes", "Checksum snapshots").immutable(),
    redis("rdb_del_sync_files", "rdb-del-sync-files", T::Bool, "no", "Delete snapshots used only for replication"),
    redis("rdb_save_incremental_fsync", "rdb-save-incremental-fsync", T::Bool, "yes", "fsync snapshots incrementally"),
    redis("sanitize_dump_payload", "sanitize-dump-payload", T::Enum(&["no", "yes", "clients"]), "no", "Deep-check RESTORE payloads"),
    redis("appendonly", "appendonly", T::Bool, "no", "Enable the append-only file"),
    redis("appendfilename", "appendfilename", T::Str, "appendonly.aof", "Append-only file base name").immutable(),
    redis("appenddirname", "appenddirname", T::Str, "appendonlydir", "Append-only file directory").immutable(),
    redis("appendfsync", "appendfsync", T::Enum(&["everysec", "always", "no"]), "everysec", "AOF fsync policy"),
    redis("no_appendfsync_on_rewrite", "no-appendfsync-on-rewrite", T::Bool, "no", "Skip fsync during rewrites"),
    redis("auto_aof_rewrite_percentage", "auto-aof-rewrite-percentage", T::Int { min: 0, max: I32_MAX }, "100", "AOF growth percentage that triggers a rewrite"),
    redis("auto_aof_rewrite_min_size", "auto-aof-rewrite-min-size", T::Memory { min: 0, max: I64_MAX_U }, "67108864", "Smallest AOF size that may trigger a rewrite"),
    redis("aof_load_truncated", "aof-load-truncated", T::Bool, "yes", "Load a truncated AOF"),
    redis("aof_use_rdb_preamble", "aof-use-rdb-preamble", T::Bool, "yes", "Use an RDB preamble in rewritten AOFs"),
    redis("aof_timestamp_enabled", "aof-timestamp-enabled", T::Bool, "no", "Write timestamps in the AOF"),
    redis("aof_rewrite_incremental_fsync", "aof-rewrite-incremental-fsync", T::Bool, "yes", "fsync AOF rewrites incrementally"),
    redis("aof_disable_auto_gc", "aof-disable-auto-gc", T::Bool, "no", "Keep old AOF files"),
    redis("aclfile", "aclfile", T::Str, "", "ACL file path").immutable(),
    redis("acllog_max_len", "acllog-max-len", T::Int { min: 0, max: i64::MAX }, "128", "Maximum ACL LOG entries"),
    redis("acl_pubsub_default", "acl-pubsub-default", T::Enum(&["allchannels", "resetchannels"]), "resetchannels", "Default Pub/Sub permissions of new users"),
    redis("protected_mode", "protected-mode", T::Bool, "yes", "Refuse non-loopback clients when there is no password and no bind address"),
    dfly("tls", T::Bool, "false", "Enable TLS on the main port (Dragonfly)").immutable(),
    redis("tls_port", "tls-port", T::Int { min: 0, max: 65535 }, "0", "TLS port (0 = disabled)"),
    redis("tls_cert_file", "tls-cert-file", T::Str, "", "TLS certificate file"),
    redis("tls_key_file", "tls-key-file", T::Str, "", "TLS private key file"),
    redis("tls_key_file_pass", "tls-key-file-pass", T::Str, "", "Passphrase of the TLS private key"),
    redis("tls_client_cert_file", "tls-client-cert-file", T::Str, "", "TLS client certificate file"),
    redis("tls_client_key_file", "tls-client-key-file", T::Str, "", "TLS client private key file"),
    redis("tls_client_key_file_pass", "tls-client-key-file-pass", T::Str, "", "Passphrase of the TLS client private key"),
    redis("tls_ca_cert_file", "tls-ca-cert-file", T::Str, "", "TLS CA certificate bundle"),
    redis("tls_ca_cert_dir", "tls-ca-cert-dir", T::Str, "", "TLS CA certificate directory"),
    redis("tls_dh_params_file", "tls-dh-params-file", T::Str, "", "TLS DH parameters file"),
    redis("tls_protocols", "tls-protocols", T::Str, "", "Allowed TLS protocol versions"),
    redis("tls_ciphers", "tls-ciphers", T::Str, "", "Allowed TLS 1.2 ciphers"),
    redis("tls_ciphersuites", "tls-ciphersuites", T::Str, "", "Allowed TLS 1.3 cipher suites"),
    redis("tls_prefer_server_ciphers", "tls-prefer-server-ciphers", T::Bool, "no", "Prefer the server's cipher order"),
    redis("tls_auth_clients", "tls-auth-clients", T::Enum(&["no", "yes", "optional"]), "yes", "Require client certificates"),
    redis("tls_replication", "tls-replication", T::Bool, "no", "Use TLS for replication links"),
    redis("tls_cluster", "tls-cluster", T::Bool, "no", "Use TLS for the cluster bus"),
    redis("tls_session_caching", "tls-session-caching", T::Bool, "yes", "Cache TLS sessions"),
    redis("tls_session_cache_size", "tls-session-cache-size", T::Int { min: 0, max: I32_MAX }, "20480", "TLS session cache size"),
    redis("tls_session_cache_timeout", "tls-session-cache-timeout", T::Int { min: 0, max: I32_MAX }, "300", "TLS session cache timeout in seconds"),
    redis("replicaof", "replicaof", T::Str, "", "Replicate from <host> <port>").aliases(&["slaveof"]).immutable().multi_arg(),
    redis("masterauth", "masterauth", T::Str, "", "Password for authenticating with the master"),
    redis("masteruser", "masteruser", T::Str, "", "User for authenticating with the master"),
    redis("replica_serve_stale_data", "replica-serve-stale-data", T::Bool, "yes", "Serve possibly stale data while the link to the master is down").aliases(&["slave-serve-stale-data"]),
    redis("replica_read_only", "replica-read-only", T::Bool, "yes", "Refuse writes on replicas").aliases(&["slave-read-only"]),
    redis("replica_ignore_maxmemory", "replica-ignore-maxmemory", T::Bool, "yes", "Replicas ignore maxmemory").aliases(&["slave-ignore-maxmemory"]),
    redis("replica_lazy_flush", "replica-lazy-flush", T::Bool, "no", "Flush asynchronously on full sync").aliases(&["slave-lazy-flush"]),
    redis("replica_priority", "replica-priority", T::Int { min: 0, max: I32_MAX }, "100", "Replica priority for failover").aliases(&["slave-priority"]),
    redis("replica_announce_ip", "replica-announce-ip", T::Str, "", "IP address replicas announce").aliases(&["slave-announce-ip"]),
    redis("replica_announce_port", "replica-announce-port", T::Int { min: 0, max: 65535 }, "0", "Port replicas announce").aliases(&["slave-announce-port"]),
    redis("replica_announced", "replica-announced", T::Bool, "yes", "Replica shown by Sentinel"),
    redis("replica_ignore_disk_write_errors", "replica-ignore-disk-write-errors", T::Bool, "no", "Replicas ignore disk write errors"),
    redis("min_replicas_to_write", "min-replicas-to-write", T::Int { min: 0, max: I32_MAX }, "0", "Refuse writes with fewer good replicas than this").aliases(&["min-slaves-to-write"]),
    redis("min_replicas_max_lag", "min-replicas-max-lag", T::Int { min: 0, max: I32_MAX }, "10", "Largest lag in seconds of a good replica").aliases(&["min-slaves-max-lag"]),
    redis("repl_ping_replica_period", "repl-ping-replica-period", T::Int { min: 1, max: I32_MAX }, "10", "Seconds between pings to replicas").aliases(&["repl-ping-slave-period"]),
    redis("repl_timeout", "repl-timeout", T::Int { min: 1, max: I32_MAX }, "60", "Replication timeout in seconds"),
    redis("repl_backlog_size", "repl-backlog-size", T::Memory { min: 1, max: I64_MAX_U }, "1048576", "Replication backlog size"),
    redis("repl_backlog_ttl", "repl-backlog-ttl", T::Int { min: 0, max: i64::MAX }, "3600", "Seconds before the backlog of a master without replicas is freed"),
    redis("repl_disable_tcp_nodelay", "repl-disable-tcp-nodelay", T::Bool, "no", "Disable TCP_NODELAY on the replica link"),
    redis("repl_diskless_sync", "repl-diskless-sync", T::Bool, "yes", "Full sync without a disk snapshot"),
    redis("repl_diskless_sync_delay", "repl-diskless-sync-delay", T::Int { min: 0, max: I32_MAX }, "5", "Seconds to wait for more replicas before a diskless sync"),
    redis("repl_diskless_sync_max_replicas", "repl-diskless-sync-max-replicas", T::Int { min: 0, max: I32_MAX }, "0", "Start a diskless sync early at this many replicas"),
    redis("repl_diskless_load", "repl-diskless-load", T::Enum(&["disabled", "on-empty-db", "swapdb"]), "disabled", "Load the full sync payload without a disk file"),
    redis("propagation_error_behavior", "propagation-error-behavior", T::Enum(&["ignore", "panic", "panic-on-replicas"]), "ignore", "What to do on errors in replicated commands"),
    redis("cluster_enabled", "cluster-enabled", T::Bool, "no", "Redis cluster mode (see cluster_mode)").immutable(),
    redis("cluster_config_file", "cluster-config-file", T::Str, "nodes.conf", "Cluster configuration file").immutable(),
    redis("cluster_port", "cluster-port", T::Int { min: 0, max: 65535 }, "0", "Cluster bus port").immutable(),
    redis("cluster_node_timeout", "cluster-node-timeout", T::Int { min: 0, max: i64::MAX }, "15000", "Cluster node timeout in milliseconds"),
    redis("cluster_announce_ip", "cluster-announce-ip", T::Str, "", "IP address announced to the cluster"),
    redis("cluster_announce_hostname", "cluster-announce-hostname", T::Str, "", "Hostname announced to the cluster"),
    redis("cluster_announce_port", "cluster-announce-port", T::Int { min: 0, max: 65535 }, "0", "Port announced to the cluster"),
    redis("cluster_announce_tls_port", "cluster-announce-tls-port", T::Int { min: 0, max: 65535 }, "0", "TLS port announced to the cluster"),
    redis("cluster_announce_bus_port", "cluster-announce-bus-port", T::Int { min: 0, max: 65535 }, "0", "Bus port announced to the cluster"),
    redis("cluster_preferred_endpoint_type", "cluster-preferred-endpoint-type", T::Enum(&["ip", "hostname", "unknown-endpoint"]), "ip", "Endpoint type shown in redirections"),
    redis("cluster_require_full_coverage", "cluster-require-full-coverage", T::Bool, "yes", "Stop serving when some slots are uncovered"),
    redis("cluster_replica_validity_factor", "cluster-replica-validity-factor", T::Int { min: 0, max: I32_MAX }, "10", "Replica validity factor for failover").aliases(&["cluster-slave-validity-factor"]),
    redis("cluster_replica_no_failover", "cluster-replica-no-failover", T::Bool, "no", "Never fail over to this replica").aliases(&["cluster-slave-no-failover"]),
    redis("cluster_migration_barrier", "cluster-migration-barrier", T::Int { min: 0, max: I32_MAX }, "1", "Replicas a master keeps before one may migrate"),
    redis("cluster_allow_replica_migration", "cluster-allow-replica-migration", T::Bool, "yes", "Allow replica migration"),
    redis("cluster_allow_reads_when_down", "cluster-allow-reads-when-down", T::Bool, "no", "Serve reads while the cluster is down"),
    redis("cluster_allow_pubsubshard_when_down", "cluster-allow-pubsubshard-when-down", T::Bool, "yes", "Serve sharded Pub/Sub while the cluster is down"),
    redis("cluster_link_sendbuf_limit", "cluster-link-sendbuf-limit", T::Memory { min: 0, max: u64::MAX }, "0", "Send buffer limit of cluster links (0 = none)"),
    redis("busy_reply_threshold", "busy-reply-threshold", T::Int { min: 0, max: i64::MAX }, "5000", "Milliseconds a script or function may run before other clients get BUSY").aliases(&["lua-time-limit"]),
    redis("slowlog_log_slower_than", "slowlog-log-slower-than", T::Int { min: -1, max: i64::MAX }, "10000", "Log commands slower than this many microseconds (-1 = off)"),
    redis("slowlog_max_len", "slowlog-max-len", T::Int { min: 0, max: i64::MAX }, "128", "Slow log length"),
    redis("latency_monitor_threshold", "latency-monitor-threshold", T::Int { min: 0, max: i64::MAX }, "0", "Latency monitor threshold in milliseconds (0 = off)"),
    redis("latency_tracking", "latency-tracking", T::Bool, "yes", "Track per-command latency percentiles"),
    redis("latency_tracking_info_percentiles", "latency-tracking-info-percentiles", T::Percentiles, "50 99 99.9", "Percentiles reported by INFO latencystats").multi_arg(),
    redis("notify_keyspace_events", "notify-keyspace-events", T::KeyspaceEvents, "", "Keyspace notification classes (letters from 'Ag$lshzxeKEtmdn')"),
    redis("tracking_table_max_keys", "tracking-table-max-keys", T::Int { min: 0, max: i64::MAX }, "1000000", "Keys tracked for client-side caching"),
    redis("hash_max_listpack_entries", "hash-max-listpack-entries", T::Int { min: 0, max: i64::MAX }, "512", "Hashes up to this many fields use the listpack encoding").aliases(&["hash-max-ziplist-entries"]),
    redis("hash_max_listpack_value", "hash-max-listpack-value", T::Memory { min: 0, max: I64_MAX_U }, "64", "Hashes with values up to this size use the listpack encoding").aliases(&["hash-max-ziplist-value"]),
    redis("list_max_listpack_size", "list-max-listpack-size", T::Int { min: I32_MIN, max: I32_MAX }, "-2", "List node size: entries if positive, -1..-5 for 4..64 KiB").aliases(&["list-max-ziplist-size"]),
    redis("list_compress_depth", "list-compress-depth", T::Int { min: 0, max: I32_MAX }, "0", "Uncompressed list nodes at each end (0 = no compression)"),
    redis("set_max_intset_entries", "set-max-intset-entries", T::Int { min: 0, max: i64::MAX }, "512", "Integer sets up to this size use the intset encoding"),
    redis("set_max_listpack_entries", "set-max-listpack-entries", T::Int { min: 0, max: i64::MAX }, "128", "Sets up to this size use the listpack encoding (a Redis 7.2 option)"),
    redis("zset_max_listpack_entries", "zset-max-listpack-entries", T::Int { min: 0, max: i64::MAX }, "128", "Sorted sets up to this many members use the listpack encoding").aliases(&["zset-max-ziplist-entries"]),
    redis("zset_max_listpack_value", "zset-max-listpack-value", T::Memory { min: 0, max: I64_MAX_U }, "64", "Sorted sets with members up to this size use the listpack encoding").aliases(&["zset-max-ziplist-value"]),
    redis("hll_sparse_max_bytes", "hll-sparse-max-bytes", T::Memory { min: 0, max: I64_MAX_U }, "3000", "HyperLogLog sparse representation size limit"),
    redis("stream_node_max_bytes", "stream-node-max-bytes", T::Memory { min: 0, max: I64_MAX_U }, "4096", "Stream node size limit in bytes"),
    redis("stream_node_max_entries", "stream-node-max-entries", T::Int { min: 0, max: i64::MAX }, "100", "Stream node entry limit"),
    redis("activerehashing", "activerehashing", T::Bool, "yes", "Rehash the main dictionaries incrementally in the background"),
    redis("activedefrag", "activedefrag", T::Bool, "no", "Active memory defragmentation"),
    redis("active_defrag_ignore_bytes", "active-defrag-ignore-bytes", T::Memory { min: 1, max: I64_MAX_U }, "104857600", "Minimum fragmentation waste to start defragmenting"),
    redis("active_defrag_threshold_lower", "active-defrag-threshold-lower", T::Int { min: 0, max: 1000 }, "10", "Fragmentation percentage to start defragmenting"),
    redis("active_defrag_threshold_upper", "active-defrag-threshold-upper", T::Int { min: 0, max: 1000 }, "100", "Fragmentation percentage for maximum effort"),
    redis("active_defrag_cycle_min", "active-defrag-cycle-min", T::Int { min: 1, max: 99 }, "1", "Minimal defragmentation CPU effort in percent"),
    redis("active_defrag_cycle_max", "active-defrag-cycle-max", T::Int { min: 1, max: 99 }, "25", "Maximal defragmentation CPU effort in percent"),
    redis("active_defrag_max_scan_fields", "active-defrag-max-scan-fields", T::Int { min: 1, max: i64::MAX }, "1000", "Fields processed in one main-dictionary scan step"),
    redis("active_expire_effort", "active-expire-effort", T::Int { min: 1, max: 10 }, "1", "Active expiry effort (1..10)"),
    redis("lazyfree_lazy_eviction", "lazyfree-lazy-eviction", T::Bool, "no", "Free evicted values in the background"),
    redis("lazyfree_lazy_expire", "lazyfree-lazy-expire", T::Bool, "no", "Free expired values in the background"),
    redis("lazyfree_lazy_server_del", "lazyfree-lazy-server-del", T::Bool, "no", "Free implicitly deleted values in the background"),
    redis("lazyfree_lazy_user_del", "lazyfree-lazy-user-del", T::Bool, "no", "DEL behaves like UNLINK"),
    redis("lazyfree_lazy_user_flush", "lazyfree-lazy-user-flush", T::Bool, "no", "FLUSHALL/FLUSHDB default to ASYNC"),
    redis("client_output_buffer_limit", "client-output-buffer-limit", T::ClientOutputBufferLimit, "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60", "Output buffer limits: <class> <hard> <soft> <soft seconds> for classes normal, replica (slave) and pubsub").multi_arg(),
    redis("bind_source_addr", "bind-source-addr", T::Str, "", "Source address of outgoing connections"),
    redis("socket_mark_id", "socket-mark-id", T::Int { min: 0, max: U32_MAX }, "0", "Socket mark (SO_MARK) for listening sockets").immutable(),
];

const I64_MAX_U: u64 = i64::MAX as u64;

/// Bits of the `notify-keyspace-events` mask (Redis's `NOTIFY_*` values).
pub mod notify {
    pub const KEYSPACE: i64 = 1 << 0; // K
    pub const KEYEVENT: i64 = 1 << 1; // E
    pub const GENERIC: i64 = 1 << 2; // g
    pub const STRING: i64 = 1 << 3; // $
    pub const LIST: i64 = 1 << 4; // l
    pub const SET: i64 = 1 << 5; // s
    pub const HASH: i64 = 1 << 6; // h
    pub const ZSET: i64 = 1 << 7; // z
    pub const EXPIRED: i64 = 1 << 8; // x
    pub const EVICTED: i64 = 1 << 9; // e
    pub const STREAM: i64 = 1 << 10; // t
    pub const KEY_MISS: i64 = 1 << 11; // m (not part of A)
    pub const LOADED: i64 = 1 << 12; // module only
    pub const MODULE: i64 = 1 << 13; // d
    pub const NEW: i64 = 1 << 14; // n (not part of A)
    /// `A`: g$lshzxetd.
    pub const ALL: i64 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

/// Why [`Config::from_args`] did not produce a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// `--help`: print this text and exit with status 0.
    Help(String),
    /// `--version`: print the version and exit with status 0.
    Version,
    /// A bad flag, value or file: print the message and exit with status 1.
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Help(text) => f.write_str(text),
            ConfigError::Version => f.write_str("version requested"),
            ConfigError::Invalid(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A stored option value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Bool(bool),
    Int(i64),
    Mem(u64),
    Float(f64),
    Str(String),
}

/// The configuration: one value per [`OPTIONS`] entry.
#[derive(Debug, Clone)]
pub struct Config {
    values: Vec<Value>,
    explicit: Vec<bool>,
    config_file: Option<String>,
}

// ---------------------------------------------------------------------------
// Name lookup

/// A name under which an option can be found.
struct NameEntry {
    opt: usize,
    /// The CONFIG-facing spelling for this name: the option's config name,
    /// or the alias itself when the name is an alias.
    config: &'static str,
    /// Position of this name in CONFIG GET listings of the option
    /// (0 = config name, 1.. = aliases).
    rank: usize,
}

fn normalize(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b == b'_' {
                '-'
            } else {
                b.to_ascii_lowercase() as char
            }
        })
        .collect()
}

fn name_index() -> &'static HashMap<String, NameEntry> {
    static INDEX: OnceLock<HashMap<String, NameEntry>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut map = HashMap::new();
        for (opt, def) in OPTIONS.iter().enumerate() {
            let cname = def.config_name();
            let mut add = |name: &'static str, config: &'static str, rank: usize| {
                let key = normalize(name);
                if let Some(prev) = map.get(&key) {
                    let prev: &NameEntry = prev;
                    assert_eq!(prev.opt, opt, "option name '{name}' is registered twice");
                    return;
                }
                map.insert(key, NameEntry { opt, config, rank });
            };
            add(cname, cname, 0);
            add(def.name, cname, 0);
            for (i, alias) in def.aliases.iter().enumerate() {
                add(alias, alias, i + 1);
            }
        }
        map
    })
}

fn find(name: &str) -> Option<&'static NameEntry> {
    name_index().get(&normalize(name))
}

/// The registry entry for a name (Dragonfly name, Redis name or alias;
/// case-insensitive, `-` and `_` interchangeable).
pub fn lookup(name: &str) -> Option<&'static OptDef> {
    find(name).map(|e| &OPTIONS[e.opt])
}

/// Index in [`OPTIONS`] of a name, see [`lookup`].
pub fn option_index(name: &str) -> Option<usize> {
    find(name).map(|e| e.opt)
}

fn index_or_panic(name: &str) -> usize {
    match find(name) {
        Some(e) => e.opt,
        None => panic!("config option '{name}' is not in the registry"),
    }
}

/// Redis 7.0 directives we ignore (Redis logs a warning and ignores them).
const DEPRECATED: &[&str] = &[
    "list-max-ziplist-entries",
    "list-max-ziplist-value",
    "lua-replicate-commands",
];

/// Redis directives that are not options and that we do not support.
const UNSUPPORTED_DIRECTIVES: &[&str] = &["rename-command", "user", "loadmodule", "sentinel"];

fn is_deprecated(name: &str) -> bool {
    let n = normalize(name);
    DEPRECATED.iter().any(|d| *d == n)
}

// ---------------------------------------------------------------------------
// Value parsing

/// Where a value comes from; decides units and strictness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    Cmdline,
    ConfFile,
    ConfigSet,
}

/// Why a value was rejected.
#[derive(Debug, Clone, PartialEq)]
enum Bad {
    NotBool,
    NotInt,
    NotMem,
    NotMemOrPercent,
    Range {
        min: i128,
        max: i128,
    },
    NotEnum,
    NotFloat,
    /// A Redis message for the special types.
    Msg(String),
}

fn is_bool_word(s: &str) -> bool {
    parse_bool_word(s).is_some()
}

fn parse_bool_word(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// Redis `string2ll`: optional `-`, no `+`, no leading zeros, no spaces.
fn string2ll(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() >= 21 {
        return None;
    }
    if b == b"0" {
        return Some(0);
    }
    let digits = if b[0] == b'-' { &b[1..] } else { b };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// C `strtoll(s, &end, 10)` followed by a `*end == '\0'` check, as Redis
/// uses for save points and buffer limits: leading whitespace and a sign are
/// allowed, out-of-range values saturate, an empty string is 0.
fn c_strtoll_full(s: &str) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = digits.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        // No conversion: end pointer stays at the start of the string.
        return if s.is_empty() { Some(0) } else { None };
    }
    if n != digits.len() {
        return None;
    }
    let mut v: i128 = 0;
    for d in digits.bytes() {
        v = (v * 10 + (d - b'0') as i128).min(i64::MAX as i128 + 1);
    }
    let v = if neg { -v } else { v };
    Some(v.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

/// Redis `memtoull`: digits plus an optional unit b, k (1000), kb (1024),
/// m, mb, g, gb. No sign, no fractions. Overflow wraps like the C code.
pub fn redis_memtoull(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.first() == Some(&b'-') {
        return None;
    }
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let mul: u64 = match s[n..].to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if n >= 128 {
        return None;
    }
    let digits = &s[..n];
    let val = if digits.is_empty() {
        0
    } else {
        digits.parse::<u64>().unwrap_or(u64::MAX) // strtoull saturates
    };
    Some(val.wrapping_mul(mul))
}

/// Dragonfly-style human-readable size: a number (fractions allowed) and an
/// optional 1024-based unit (b, k/kb/kib, m/mb/mib, g/gb/gib, t/tb/tib,
/// p/pb/pib), any case. Rounds to the nearest byte.
pub fn parse_human_bytes(s: &str) -> Option<u64> {
    let t = s.trim();
    let n = t
        .bytes()
        .take_while(|c| c.is_ascii_digit() || *c == b'.')
        .count();
    let (num, unit) = t.split_at(n);
    if num.is_empty() || num == "." || num.bytes().filter(|c| *c == b'.').count() > 1 {
        return None;
    }
    let shift = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        "p" | "pb" | "pib" => 50,
        _ => return None,
    };
    if !num.contains('.') {
        let v: u128 = num.parse().ok()?;
        return u64::try_from(v.checked_mul(1u128 << shift)?).ok();
    }
    let v: f64 = num.parse().ok()?;
    let bytes = (v * (1u64 << shift) as f64).round();
    if !bytes.is_finite() || bytes >= 18_446_744_073_709_551_616.0 {
        return None;
    }
    Some(bytes as u64)
}

/// Split a multi-word value: CONFIG SET splits on single spaces like Redis
/// (`sdssplitlen`, so doubled spaces give empty words); files and the
/// command line split on runs of whitespace.
fn split_words(raw: &str, src: Src) -> Vec<&str> {
    if raw.is_empty() {
        return Vec::new();
    }
    match src {
        Src::ConfigSet => raw.split(' ').collect(),
        _ => raw.split_whitespace().collect(),
    }
}

fn keyspace_events_from_str(s: &str) -> Option<i64> {
    let mut flags = 0;
    for c in s.chars() {
        flags |= match c {
            'A' => notify::ALL,
            'g' => notify::GENERIC,
            '$' => notify::STRING,
            'l' => notify::LIST,
            's' => notify::SET,
            'h' => notify::HASH,
            'z' => notify::ZSET,
            'x' => notify::EXPIRED,
            'e' => notify::EVICTED,
            'K' => notify::KEYSPACE,
            'E' => notify::KEYEVENT,
            't' => notify::STREAM,
            'm' => notify::KEY_MISS,
            'd' => notify::MODULE,
            'n' => notify::NEW,
            _ => return None,
        };
    }
    Some(flags)
}

/// Redis `keyspaceEventsFlagsToString`.
fn keyspace_events_to_string(flags: i64) -> String {
    let mut s = String::new();
    if flags & notify::ALL == notify::ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (notify::GENERIC, 'g'),
            (notify::STRING, '$'),
            (notify::LIST, 'l'),
            (notify::SET, 's'),
            (notify::HASH, 'h'),
            (notify::ZSET, 'z'),
            (notify::EXPIRED, 'x'),
            (notify::EVICTED, 'e'),
            (notify::STREAM, 't'),
            (notify::MODULE, 'd'),
            (notify::NEW, 'n'),
        ] {
            if flags & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [
        (notify::KEYSPACE, 'K'),
        (notify::KEYEVENT, 'E'),
        (notify::KEY_MISS, 'm'),
    ] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// Client classes of `client-output-buffer-limit`, in display order.
const COBL_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

type BufLimits = [(u64, u64, i64); 3];

fn cobl_parse_stored(s: &str) -> BufLimits {
    let mut out = [(0, 0, 0); 3];
    let w: Vec<&str> = s.split_whitespace().collect();
    for c in w.chunks(4) {
        if c.len() == 4 {
            if let Some(i) = COBL_CLASSES.iter().position(|n| *n == c[0]) {
                out[i] = (
                    c[1].parse().unwrap_or(0),
                    c[2].parse().unwrap_or(0),
                    c[3].parse().unwrap_or(0),
                );
            }
        }
    }
    out
}

fn cobl_format(l: &BufLimits) -> String {
    let mut parts = Vec::new();
    for (i, (h, s, secs)) in l.iter().enumerate() {
        parts.push(format!("{} {} {} {}", COBL_CLASSES[i], h, s, secs));
    }
    parts.join(" ")
}

/// Format a percentile like Redis (`%f` with trailing zeros removed).
fn format_percentile(p: f64) -> String {
    let s = format!("{p:.6}");
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_string()
}

fn parse_int(def: &OptDef, raw: &str, src: Src) -> Result<i64, Bad> {
    let (min, max) = match def.ty {
        T::Int { min, max } => (min, max),
        _ => (i64::MIN, i64::MAX),
    };
    let v = match src {
        Src::Cmdline => raw.trim().parse::<i64>().map_err(|_| Bad::NotInt)?,
        _ => string2ll(raw).ok_or(Bad::NotInt)?,
    };
    if v < min || v > max {
        return Err(Bad::Range {
            min: min as i128,
            max: max as i128,
        });
    }
    if def.name == "hz" {
        return Ok(v.clamp(1, 500));
    }
    Ok(v)
}

fn parse_mem(raw: &str, src: Src) -> Option<u64> {
    match src {
        Src::Cmdline => parse_human_bytes(raw),
        _ => redis_memtoull(raw),
    }
}

/// Parse `raw` for `def`. `cur` is the current value (buffer limits merge
/// into it).
fn parse_value(def: &OptDef, raw: &str, src: Src, cur: &Value) -> Result<Value, Bad> {
    match def.ty {
        T::Bool => {
            if src == Src::ConfigSet && def.redis_name.is_some() {
                match raw.to_ascii_lowercase().as_str() {
                    "yes" => Ok(Value::Bool(true)),
                    "no" => Ok(Value::Bool(false)),
                    _ => Err(Bad::NotBool),
                }
            } else {
                parse_bool_word(raw).map(Value::Bool).ok_or(Bad::NotBool)
            }
        }
        T::Int { .. } => parse_int(def, raw, src).map(Value::Int),
        T::Memory { min, max } => {
            let v = parse_mem(raw, src).ok_or(Bad::NotMem)?;
            if v < min || v > max {
                return Err(Bad::Range {
                    min: min as i128,
                    max: max as i128,
                });
            }
            Ok(Value::Mem(v))
        }
        T::Str => Ok(Value::Str(raw.to_string())),
        T::Enum(words) => words
            .iter()
            .find(|w| w.eq_ignore_ascii_case(raw))
            .map(|w| Value::Str(w.to_string()))
            .ok_or(Bad::NotEnum),
        T::Float => match raw.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => Err(Bad::NotFloat),
        },
        T::EnumFlags(words) => {
            let mut mask = 0u32;
            for w in split_words(raw, src) {
                let i = words
                    .iter()
                    .position(|x| x.eq_ignore_ascii_case(w))
                    .ok_or(Bad::NotEnum)?;
                if i > 0 {
                    mask |= 1 << (i - 1);
                }
            }
            let names: Vec<&str> = (1..words.len())
                .filter(|i| mask & (1 << (i - 1)) != 0)
                .map(|i| words[i])
                .collect();
            Ok(Value::Str(if names.is_empty() {
                words[0].to_string()
            } else {
                names.join(" ")
            }))
        }
        T::Save => {
            let words = split_words(raw, src);
            let invalid = || Bad::Msg("Invalid save parameters".into());
            if words.len() % 2 == 1 {
                return Err(invalid());
            }
            let mut pairs = Vec::new();
            for pair in words.chunks(2) {
                let secs = c_strtoll_full(pair[0])
                    .filter(|v| *v >= 1)
                    .ok_or_else(invalid)?;
                let changes = c_strtoll_full(pair[1])
                    .filter(|v| *v >= 0)
                    .ok_or_else(invalid)?;
                pairs.push(format!("{secs} {changes}"));
            }
            Ok(Value::Str(pairs.join(" ")))
        }
        T::KeyspaceEvents => keyspace_events_from_str(raw)
            .map(Value::Int)
            .ok_or_else(|| {
                Bad::Msg("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into())
            }),
        T::ClientOutputBufferLimit => {
            let words = split_words(raw, src);
            if words.len() % 4 != 0 {
                return Err(Bad::Msg(
                    "Wrong number of arguments in buffer limit configuration.".into(),
                ));
            }
            let mut limits = match cur {
                Value::Str(s) => cobl_parse_stored(s),
                _ => [(0, 0, 0); 3],
            };
            let mut updates = Vec::new();
            for c in words.chunks(4) {
                let class = match c[0].to_ascii_lowercase().as_str() {
                    "normal" => 0,
                    "slave" | "replica" => 1,
                    "pubsub" => 2,
                    _ => {
                        return Err(Bad::Msg(
                            "Invalid client class specified in buffer limit configuration.".into(),
                        ))
                    }
                };
                let hard = redis_memtoull(c[1]);
                let soft = redis_memtoull(c[2]);
                let secs = c_strtoll_full(c[3]).filter(|v| *v >= 0);
                match (hard, soft, secs) {
                    (Some(h), Some(s), Some(secs)) => updates.push((class, (h, s, secs))),
                    _ => {
                        return Err(Bad::Msg(
                            "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                                .into(),
                        ))
                    }
                }
            }
            for (class, l) in updates {
                limits[class] = l;
            }
            Ok(Value::Str(cobl_format(&limits)))
        }
        T::MemoryOrPercent => {
            if let Some(v) = parse_mem(raw, src) {
                if v > I64_MAX_U {
                    return Err(Bad::Range {
                        min: -100,
                        max: i64::MAX as i128,
                    });
                }
                return Ok(Value::Str(v.to_string()));
            }
            if raw.len() > 1 && raw.ends_with('%') {
                if let Some(p) = string2ll(&raw[..raw.len() - 1]).filter(|p| *p >= 0) {
                    if p > 100 {
                        return Err(Bad::Msg(
                            "percentage argument must be less or equal to 100".into(),
                        ));
                    }
                    return Ok(Value::Str(format!("{p}%")));
                }
            }
            Err(Bad::NotMemOrPercent)
        }
        T::Percentiles => {
            let mut out = Vec::new();
            for w in split_words(raw, src) {
                let p = if w.is_empty() || w.starts_with(|c: char| c.is_ascii_whitespace()) {
                    None
                } else {
                    w.parse::<f64>().ok().filter(|p| !p.is_nan())
                };
                let p = p.ok_or_else(|| {
                    Bad::Msg("Invalid latency-tracking-info-percentiles parameters".into())
                })?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(Bad::Msg(
                        "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                            .into(),
                    ));
                }
                out.push(format_percentile(p));
            }
            Ok(Value::Str(out.join(" ")))
        }
        T::OomScoreAdjValues => {
            let words = split_words(raw, src);
            if words.len() != 3 {
                return Err(Bad::Msg("wrong number of arguments".into()));
            }
            let mut out = Vec::new();
            for w in words {
                match c_strtoll_full(w).filter(|v| w != "" && (-2000..=2000).contains(v)) {
                    Some(v) => out.push(v.to_string()),
                    None => return Err(Bad::Msg(
                        "Invalid oom-score-adj-values, elements must be between -2000 and 2000."
                            .into(),
                    )),
                }
            }
            Ok(Value::Str(out.join(" ")))
        }
    }
}

/// Redis 7.0's reason text for a rejected value.
fn redis_reason(def: &OptDef, bad: &Bad) -> String {
    match bad {
        Bad::NotBool => {
            if def.redis_name.is_some() {
                "argument must be 'yes' or 'no'".into()
            } else {
                "argument must be 'true' or 'false'".into()
            }
        }
        Bad::NotInt => "argument couldn't be parsed into an integer".into(),
        Bad::NotMem => "argument must be a memory value".into(),
        Bad::NotMemOrPercent => "argument must be a memory or percent value".into(),
        Bad::Range { min, max } => format!("argument must be between {min} and {max} inclusive"),
        Bad::NotEnum => {
            let words = match def.ty {
                T::Enum(w) | T::EnumFlags(w) => w.join(", "),
                _ => String::new(),
            };
            format!("argument(s) must be one of the following: {words}")
        }
        Bad::NotFloat => "argument couldn't be parsed into a number".into(),
        Bad::Msg(m) => m.clone(),
    }
}

/// What a flag expects, for command-line error messages and `--help`.
fn expectation(def: &OptDef) -> String {
    match def.ty {
        T::Bool => "one of true, false, yes, no, 1, 0".into(),
        T::Int { min, max } => format!("an integer in [{min}, {max}]"),
        T::Memory { min, max } => {
            let mut s = "a memory size such as 1024, 512mb, 1.5gb or 100kib".to_string();
            if min > 0 || max < u64::MAX {
                s.push_str(&format!(" (between {min} and {max} bytes)"));
            }
            s
        }
        T::Str => "a string".into(),
        T::Enum(words) | T::EnumFlags(words) => {
            let shown: Vec<String> = words
                .iter()
                .map(|w| {
                    if w.is_empty() {
                        "\"\"".to_string()
                    } else {
                        w.to_string()
                    }
                })
                .collect();
            if matches!(def.ty, T::EnumFlags(_)) {
                format!("words from: {}", shown.join(", "))
            } else {
                format!("one of: {}", shown.join(", "))
            }
        }
        T::Float => "a number".into(),
        T::Save => "\"\" or pairs of <seconds> <changes>".into(),
        T::KeyspaceEvents => "letters from 'Ag$lshzxeKEtmdn'".into(),
        T::ClientOutputBufferLimit => {
            "groups of <normal|replica|pubsub> <hard> <soft> <soft seconds>".into()
        }
        T::MemoryOrPercent => "a memory size or a percentage such as 10%".into(),
        T::Percentiles => "space-separated numbers in [0, 100]".into(),
        T::OomScoreAdjValues => "three integers in [-2000, 2000]".into(),
    }
}

fn flag_error(def: &OptDef, raw: &str, shown_as: &str, bad: &Bad) -> ConfigError {
    let detail = match bad {
        Bad::Msg(m) => format!(" ({m})"),
        _ => String::new(),
    };
    ConfigError::Invalid(format!(
        "invalid value '{raw}' for {shown_as}: expected {}{detail}",
        expectation(def)
    ))
}

/// Redis `sdssplitargs`: split a config line into arguments, honouring
/// "double quotes" (with \n \r \t \b \a \xHH escapes) and 'single quotes'.
/// `None` on unbalanced quotes.
fn split_args(line: &str) -> Option<Vec<String>> {
    let b = line.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let is_space = |c: u8| matches!(c, b' ' | b'\n' | b'\r' | b'\t' | b'\x0b' | b'\x0c');
    loop {
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            return Some(out);
        }
        let mut cur: Vec<u8> = Vec::new();
        let (mut inq, mut insq) = (false, false);
        loop {
            if inq {
                if i >= b.len() {
                    return None;
                }
                if b[i] == b'\\'
                    && i + 3 < b.len()
                    && b[i + 1] == b'x'
                    && b[i + 2].is_ascii_hexdigit()
                    && b[i + 3].is_ascii_hexdigit()
                {
                    let h = std::str::from_utf8(&b[i + 2..i + 4]).ok()?;
                    cur.push(u8::from_str_radix(h, 16).ok()?);
                    i += 3;
                } else if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                    cur.push(match b[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                } else if b[i] == b'"' {
                    if i + 1 < b.len() && !is_space(b[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(b[i]);
                }
            } else if insq {
                if i >= b.len() {
                    return None;
                }
                if b[i] == b'\\' && i + 1 < b.len() && b[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if b[i] == b'\'' {
                    if i + 1 < b.len() && !is_space(b[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(b[i]);
                }
            } else {
                if i >= b.len() {
                    break;
                }
                match b[i] {
                    c if is_space(c) || c == 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        out.push(String::from_utf8_lossy(&cur).into_owned());
    }
}

/// Is this argument a flag (so that multi-word values stop before it)?
fn looks_like_flag(arg: &str) -> bool {
    if arg.starts_with("--") {
        return true;
    }
    match arg.strip_prefix('-') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_alphabetic()) => {
            let name = rest.split('=').next().unwrap_or(rest);
            find(name).is_some()
                || matches!(name, "h" | "help" | "helpfull" | "version" | "flagfile")
                || name
                    .strip_prefix("no")
                    .and_then(lookup)
                    .is_some_and(|d| d.ty == T::Bool)
        }
        _ => false,
    }
}

const MAX_INCLUDE_DEPTH: usize = 16;

/// Parse state shared by one [`Config::from_args`] run.
#[derive(Default)]
struct Ctx {
    /// An explicit `save` was applied: further ones append.
    save_seen: bool,
}

fn default_values() -> &'static [Value] {
    static DEFAULTS: OnceLock<Vec<Value>> = OnceLock::new();
    DEFAULTS.get_or_init(|| {
        OPTIONS
            .iter()
            .map(|def| {
                let empty = Value::Str(String::new());
                parse_value(def, def.default, Src::ConfFile, &empty).unwrap_or_else(|bad| {
                    panic!(
                        "bad default '{}' for option {}: {}",
                        def.default,
                        def.name,
                        redis_reason(def, &bad)
                    )
                })
            })
            .collect()
    })
}

fn io_error_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "Permission denied".into(),
        _ => {
            let s = e.to_string();
            // "Not a directory (os error 20)" -> "Not a directory"
            match s.find(" (os error") {
                Some(p) => s[..p].to_string(),
                None => s,
            }
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::defaults()
    }
}

impl Config {
    /// Every option at its default.
    pub fn defaults() -> Config {
        Config {
            values: default_values().to_vec(),
            explicit: vec![false; OPTIONS.len()],
            config_file: None,
        }
    }

    /// Parse argv (without argv\[0\]) and the environment (`DFLY_<flag>`
    /// variables), Dragonfly/absl style and Redis style; see the module doc
    /// for the rules.
    pub fn from_args<I: IntoIterator<Item = String>>(
        args: I,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let args: Vec<String> = args.into_iter().collect();
        let mut cfg = Config::defaults();
        let mut ctx = Ctx::default();
        cfg.apply_env(env, &mut ctx)?;
        ctx.save_seen = false;
        cfg.apply_args(&args, &mut ctx, 0)?;
        Ok(cfg)
    }

    fn apply_env(&mut self, env: &[(String, String)], ctx: &mut Ctx) -> Result<(), ConfigError> {
        // DFLY_PASSWORD first, so that an explicit DFLY_requirepass wins.
        let mut vars: Vec<&(String, String)> =
            env.iter().filter(|(k, _)| k.starts_with("DFLY_")).collect();
        vars.sort_by_key(|(k, _)| k != "DFLY_PASSWORD");
        for (key, value) in vars {
            let flag = &key["DFLY_".len()..];
            if flag == "DEV_ENV" {
                continue;
            }
            if flag.eq_ignore_ascii_case("flagfile") {
                self.load_flagfile(value, ctx, 1)?;
                continue;
            }
            let opt = if flag == "PASSWORD" {
                index_or_panic("requirepass")
            } else {
                match find(flag) {
                    Some(e) => e.opt,
                    None => {
                        return Err(ConfigError::Invalid(format!(
                            "unknown environment variable '{key}': there is no flag '{flag}'"
                        )))
                    }
                }
            };
            let def = &OPTIONS[opt];
            self.set_parsed(opt, value, Src::Cmdline, ctx)
                .map_err(|bad| flag_error(def, value, key, &bad))?;
        }
        Ok(())
    }

    fn apply_args(
        &mut self,
        args: &[String],
        ctx: &mut Ctx,
        depth: usize,
    ) -> Result<(), ConfigError> {
        let mut i = 0;
        let mut flags_done = false;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if !flags_done && arg == "--" {
                flags_done = true;
                continue;
            }
            if flags_done || !arg.starts_with('-') || arg.len() == 1 {
                self.positional(arg, ctx, depth)?;
                continue;
            }
            let body = arg.strip_prefix("--").unwrap_or(&arg[1..]);
            let (fname, inline) = match body.find('=') {
                Some(p) => (&body[..p], Some(&body[p + 1..])),
                None => (body, None),
            };
            let lname = fname.to_ascii_lowercase();
            match lname.as_str() {
                "help" | "helpfull" | "h" | "?" => {
                    return Err(ConfigError::Help(Config::help_text()))
                }
                "version" => return Err(ConfigError::Version),
                "v" if inline.is_none()
                    && args.get(i).is_none_or(|n| n.trim().parse::<i64>().is_err()) =>
                {
                    return Err(ConfigError::Version)
                }
                "flagfile" => {
                    let path = match inline {
                        Some(p) => p.to_string(),
                        None if i < args.len() => {
                            i += 1;
                            args[i - 1].clone()
                        }
                        None => {
                            return Err(ConfigError::Invalid("missing value for --flagfile".into()))
                        }
                    };
                    self.load_flagfile(&path, ctx, depth + 1)?;
                    continue;
                }
                _ => {}
            }
            let shown = format!("--{fname}");
            let Some(entry) = find(fname) else {
                // --noflag for booleans.
                if let Some(e) = lname.strip_prefix("no").and_then(find) {
                    if OPTIONS[e.opt].ty == T::Bool {
                        if inline.is_some() {
                            return Err(ConfigError::Invalid(format!(
                                "{shown} does not take a value"
                            )));
                        }
                        self.set_parsed(e.opt, "false", Src::Cmdline, ctx)
                            .map_err(|bad| flag_error(&OPTIONS[e.opt], "false", &shown, &bad))?;
                        continue;
                    }
                }
                if is_deprecated(fname) {
                    if inline.is_none() {
                        while i < args.len() && !looks_like_flag(&args[i]) {
                            i += 1;
                        }
                    }
                    continue;
                }
                return Err(ConfigError::Invalid(format!(
                    "unknown command line flag '{fname}'"
                )));
            };
            let def = &OPTIONS[entry.opt];
            let value: String = if def.ty == T::Bool {
                match inline {
                    Some(v) => v.to_string(),
                    None if args.get(i).is_some_and(|n| is_bool_word(n)) => {
                        i += 1;
                        args[i - 1].clone()
                    }
                    None => "true".to_string(),
                }
            } else {
                match inline {
                    Some(v) => v.to_string(),
                    None => {
                        let mut v = if def.multi_arg
                            && args.get(i).is_none_or(|n| looks_like_flag(n))
                        {
                            if def.ty == T::Save {
                                String::new()
                            } else {
                                return Err(ConfigError::Invalid(format!(
                                    "missing value for {shown}"
                                )));
                            }
                        } else if i < args.len() {
                            i += 1;
                            args[i - 1].clone()
                        } else {
                            return Err(ConfigError::Invalid(format!("missing value for {shown}")));
                        };
                        if def.multi_arg {
                            while i < args.len() && !looks_like_flag(&args[i]) {
                                if !v.is_empty() {
                                    v.push(' ');
                                }
                                v.push_str(&args[i]);
                                i += 1;
                            }
                        }
                        v
                    }
                }
            };
            self.set_parsed(entry.opt, &value, Src::Cmdline, ctx)
                .map_err(|bad| flag_error(def, &value, &shown, &bad))?;
        }
        Ok(())
    }

    fn positional(&mut self, arg: &str, ctx: &mut Ctx, depth: usize) -> Result<(), ConfigError> {
        let path = Path::new(arg);
        if path.is_file() {
            if self.config_file.is_none() {
                let abs = std::fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(arg));
                self.config_file = Some(abs.to_string_lossy().into_owned());
            }
            return self.load_conf_file(arg, ctx, depth + 1);
        }
        Err(ConfigError::Invalid(format!(
            "unexpected argument '{arg}': it is not a flag and not an existing config file"
        )))
    }

    /// Parse and store a value (marking it explicit); `save` accumulates.
    fn set_parsed(&mut self, opt: usize, raw: &str, src: Src, ctx: &mut Ctx) -> Result<(), Bad> {
        let def = &OPTIONS[opt];
        let mut value = parse_value(def, raw, src, &self.values[opt])?;
        if def.ty == T::Save {
            if ctx.save_seen && !raw.is_empty() {
                if let (Value::Str(old), Value::Str(new)) = (&self.values[opt], &value) {
                    if !old.is_empty() {
                        value = Value::Str(format!("{old} {new}"));
                    }
                }
            }
            ctx.save_seen = true;
        }
        self.values[opt] = value;
        self.explicit[opt] = true;
        Ok(())
    }

    fn read_file(path: &str, what: &str) -> Result<String, ConfigError> {
        std::fs::read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| ConfigError::Invalid(format!("can't read {what} '{path}': {e}")))
    }

    fn load_flagfile(
        &mut self,
        path: &str,
        ctx: &mut Ctx,
        depth: usize,
    ) -> Result<(), ConfigError> {
        if depth > MAX_INCLUDE_DEPTH {
            return Err(ConfigError::Invalid(format!(
                "flagfile '{path}': flag files nested too deeply"
            )));
        }
        let text = Self::read_file(path, "flagfile")?;
        let mut args = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            if !t.starts_with('-') {
                return Err(ConfigError::Invalid(format!(
                    "flagfile '{path}' line {}: expected --flag=value, got '{t}'",
                    n + 1
                )));
            }
            match t.find(|c: char| c == '=' || c.is_whitespace()) {
                Some(p) if t.as_bytes()[p] != b'=' => {
                    args.push(t[..p].to_string());
                    args.push(t[p..].trim().to_string());
                }
                _ => args.push(t.to_string()),
            }
        }
        self.apply_args(&args, ctx, depth)
    }

    fn load_conf_file(
        &mut self,
        path: &str,
        ctx: &mut Ctx,
        depth: usize,
    ) -> Result<(), ConfigError> {
        if depth > MAX_INCLUDE_DEPTH {
            return Err(ConfigError::Invalid(format!(
                "config file '{path}': includes nested too deeply"
            )));
        }
        let text = Self::read_file(path, "config file")?;
        for (n, line) in text.split('\n').enumerate() {
            let t = line.trim_matches([' ', '\t', '\r', '\n']);
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let err = |reason: &str| {
                ConfigError::Invalid(format!(
                    "error in config file '{path}' line {}: '{t}': {reason}",
                    n + 1
                ))
            };
            let argv =
                split_args(t).ok_or_else(|| err("Unbalanced quotes in configuration line"))?;
            if argv.is_empty() {
                continue;
            }
            let name = argv[0].to_ascii_lowercase();
            if name == "include" {
                if argv.len() != 2 {
                    return Err(err("wrong number of arguments"));
                }
                self.load_conf_file(&argv[1], ctx, depth + 1)?;
                continue;
            }
            if UNSUPPORTED_DIRECTIVES.contains(&name.as_str()) {
                return Err(err(&format!("the '{name}' directive is not supported")));
            }
            if is_deprecated(&name) {
                continue;
            }
            let Some(entry) = find(&name) else {
                return Err(err("Bad directive or wrong number of arguments"));
            };
            let def = &OPTIONS[entry.opt];
            let raw = if def.multi_arg {
                if argv.len() < 2 {
                    return Err(err("wrong number of arguments"));
                }
                argv[1..].join(" ")
            } else {
                if argv.len() != 2 {
                    return Err(err("wrong number of arguments"));
                }
                argv[1].clone()
            };
            self.set_parsed(entry.opt, &raw, Src::ConfFile, ctx)
                .map_err(|bad| err(&redis_reason(def, &bad)))?;
        }
        Ok(())
    }

    /// Set an option programmatically with command-line semantics (any
    /// option, mutable or not); for tests and for the server's own
    /// adjustments.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let opt = find(name)
            .ok_or_else(|| ConfigError::Invalid(format!("unknown command line flag '{name}'")))?
            .opt;
        let mut ctx = Ctx::default();
        self.set_parsed(opt, value, Src::Cmdline, &mut ctx)
            .map_err(|bad| flag_error(&OPTIONS[opt], value, &format!("--{name}"), &bad))
    }

    // -----------------------------------------------------------------------
    // Getters

    fn display(&self, opt: usize) -> String {
        let def = &OPTIONS[opt];
        match (&self.values[opt], def.ty) {
            (Value::Bool(b), _) => match (def.redis_name.is_some(), *b) {
                (true, true) => "yes".into(),
                (true, false) => "no".into(),
                (false, true) => "true".into(),
                (false, false) => "false".into(),
            },
            (Value::Int(i), T::KeyspaceEvents) => keyspace_events_to_string(*i),
            (Value::Int(i), _) => i.to_string(),
            (Value::Mem(m), _) => m.to_string(),
            (Value::Float(f), _) => f.to_string(),
            (Value::Str(s), _) if def.name == "dir" => {
                if s.is_empty() {
                    std::env::current_dir()
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default()
                } else {
                    s.clone()
                }
            }
            (Value::Str(s), _) => s.clone(),
        }
    }

    /// The value as CONFIG GET shows it (booleans as yes/no or true/false,
    /// sizes in bytes, `dir` as the current directory when unset). Panics
    /// on a name that is not in the registry.
    pub fn get_str(&self, name: &str) -> String {
        self.display(index_or_panic(name))
    }

    /// A boolean option (other types: non-zero / non-empty "yes"-like).
    pub fn get_bool(&self, name: &str) -> bool {
        match &self.values[index_or_panic(name)] {
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Mem(m) => *m != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => parse_bool_word(s).unwrap_or(false),
        }
    }

    /// An integer option (sizes saturate at i64::MAX; the keyspace events
    /// option gives its [`notify`] mask).
    pub fn get_int(&self, name: &str) -> i64 {
        match &self.values[index_or_panic(name)] {
            Value::Bool(b) => *b as i64,
            Value::Int(i) => *i,
            Value::Mem(m) => (*m).min(I64_MAX_U) as i64,
            Value::Float(f) => *f as i64,
            Value::Str(s) => s.trim().parse().unwrap_or(0),
        }
    }

    /// A memory option in bytes (a percentage gives 0).
    pub fn get_bytes(&self, name: &str) -> u64 {
        match &self.values[index_or_panic(name)] {
            Value::Bool(b) => *b as u64,
            Value::Int(i) => (*i).max(0) as u64,
            Value::Mem(m) => *m,
            Value::Float(f) => f.max(0.0) as u64,
            Value::Str(s) => s.trim().parse().unwrap_or(0),
        }
    }

    /// A numeric option as f64.
    pub fn get_f64(&self, name: &str) -> f64 {
        match &self.values[index_or_panic(name)] {
            Value::Bool(b) => *b as i64 as f64,
            Value::Int(i) => *i as f64,
            Value::Mem(m) => *m as f64,
            Value::Float(f) => *f,
            Value::Str(s) => s.trim().parse().unwrap_or(0.0),
        }
    }

    /// Was the option set explicitly (flag, environment, file or CONFIG SET)?
    pub fn is_explicit(&self, name: &str) -> bool {
        self.explicit[index_or_panic(name)]
    }

    /// Absolute path of the redis.conf given on the command line, if any
    /// (INFO's `config_file`).
    pub fn config_file(&self) -> Option<&str> {
        self.config_file.as_deref()
    }

    /// The `save` points as (seconds, changes) pairs.
    pub fn save_params(&self) -> Vec<(u64, u64)> {
        let s = self.get_str("save");
        let w: Vec<u64> = s
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        w.chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0], c[1]))
            .collect()
    }

    /// `client-output-buffer-limit` for a class (`normal`, `replica` or
    /// `slave`, `pubsub`): (hard bytes, soft bytes, soft seconds).
    pub fn client_output_buffer_limit(&self, class: &str) -> Option<(u64, u64, u64)> {
        let i = match class.to_ascii_lowercase().as_str() {
            "normal" => 0,
            "replica" | "slave" => 1,
            "pubsub" => 2,
            _ => return None,
        };
        let l = cobl_parse_stored(&self.get_str("client-output-buffer-limit"))[i];
        Some((l.0, l.1, l.2.max(0) as u64))
    }

    /// The `maxmemory-policy` INFO and CONFIG GET show: with `cache_mode` on
    /// and the policy left at `noeviction`, `allkeys-lru`.
    pub fn effective_maxmemory_policy(&self) -> String {
        let policy = self.get_str("maxmemory_policy");
        if self.get_bool("cache_mode") && policy == "noeviction" {
            "allkeys-lru".into()
        } else {
            policy
        }
    }

    fn config_value(&self, opt: usize) -> String {
        if OPTIONS[opt].name == "maxmemory_policy" {
            self.effective_maxmemory_policy()
        } else {
            self.display(opt)
        }
    }

    // -----------------------------------------------------------------------
    // CONFIG GET / SET

    /// CONFIG GET: each pattern containing `*`, `?` or `[` is a Redis glob
    /// matched case-insensitively against CONFIG names and aliases; any other
    /// pattern is an exact (case-insensitive) lookup that is answered under
    /// the name as given, like Redis. Returns (name, value) pairs without
    /// duplicate names (compared case-insensitively), in registry order.
    pub fn config_get(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut found: Vec<((usize, usize), String, usize)> = Vec::new();
        for pat in patterns {
            if !pat.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
                let Ok(name) = std::str::from_utf8(pat) else {
                    continue;
                };
                if seen.contains(&name.to_ascii_lowercase()) {
                    continue;
                }
                if let Some(e) = find(name) {
                    seen.insert(name.to_ascii_lowercase());
                    found.push(((e.opt, e.rank), name.to_string(), e.opt));
                }
                continue;
            }
            for (opt, def) in OPTIONS.iter().enumerate() {
                let names = std::iter::once(def.config_name()).chain(def.aliases.iter().copied());
                for (rank, name) in names.enumerate() {
                    let key = name.to_ascii_lowercase();
                    if seen.contains(&key) || !glob_match(pat, name.as_bytes(), true) {
                        continue;
                    }
                    seen.insert(key);
                    found.push(((opt, rank), name.to_string(), opt));
                }
            }
        }
        found.sort_by_key(|f| f.0);
        found
            .into_iter()
            .map(|(_, name, opt)| (name, self.config_value(opt)))
            .collect()
    }

    /// CONFIG SET of one name/value pair. The error is Redis 7.0's text
    /// without the leading `-`, e.g.
    /// `ERR Unknown option or number of arguments for CONFIG SET - 'foo'`.
    pub fn config_set(&mut self, name: &[u8], value: &[u8]) -> Result<(), String> {
        self.config_set_multi(&[(name, value)])
    }

    /// CONFIG SET with several pairs, atomically (Redis 7.0): on any error
    /// nothing changes. The caller answers the arity errors itself
    /// (`ERR wrong number of arguments for 'config|set' command` for fewer
    /// than two arguments, `ERR syntax error` for an odd count).
    pub fn config_set_multi(&mut self, pairs: &[(&[u8], &[u8])]) -> Result<(), String> {
        self.config_set_multi_ex(pairs, false)
    }

    /// [`Config::config_set_multi`] for a client that may be local:
    /// `enable-protected-configs local` then allows protected options.
    pub fn config_set_multi_ex(
        &mut self,
        pairs: &[(&[u8], &[u8])],
        local_client: bool,
    ) -> Result<(), String> {
        let protected_ok = match self.get_str("enable-protected-configs").as_str() {
            "yes" => true,
            "local" => local_client,
            _ => false,
        };
        let mut resolved: Vec<(&'static NameEntry, &[u8])> = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            let shown = String::from_utf8_lossy(name);
            let entry = std::str::from_utf8(name).ok().and_then(find);
            let Some(entry) = entry else {
                return Err(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{shown}'"
                ));
            };
            let def = &OPTIONS[entry.opt];
            let failed = |why: &str| {
                format!("ERR CONFIG SET failed (possibly related to argument '{shown}') - {why}")
            };
            if !def.mutable {
                return Err(failed("can't set immutable config"));
            }
            if def.protected && !protected_ok {
                return Err(failed("can't set protected config"));
            }
            if resolved
                .iter()
                .any(|(e, _)| e.opt == entry.opt && e.config == entry.config)
            {
                return Err(failed("duplicate parameter"));
            }
            resolved.push((entry, value));
        }
        let mut next = self.clone();
        let mut ctx = Ctx::default();
        for (entry, value) in resolved {
            let def = &OPTIONS[entry.opt];
            let failed = |why: &str| {
                format!(
                    "ERR CONFIG SET failed (possibly related to argument '{}') - {why}",
                    entry.config
                )
            };
            let raw = String::from_utf8_lossy(value);
            if def.name == "dir" {
                match std::fs::metadata(&*raw) {
                    Err(e) => return Err(failed(&io_error_text(&e))),
                    Ok(m) if !m.is_dir() => return Err(failed("Not a directory")),
                    Ok(_) => {}
                }
                let abs = std::fs::canonicalize(&*raw).map_err(|e| failed(&io_error_text(&e)))?;
                next.values[entry.opt] = Value::Str(abs.to_string_lossy().into_owned());
                next.explicit[entry.opt] = true;
                continue;
            }
            next.set_parsed(entry.opt, &raw, Src::ConfigSet, &mut ctx)
                .map_err(|bad| failed(&redis_reason(def, &bad)))?;
        }
        *self = next;
        Ok(())
    }

    /// Options that were set explicitly to a non-default value but whose
    /// feature is not implemented yet (for a startup warning). For
    /// `cluster_mode`, only `yes` counts as inactive.
    pub fn inactive_options_set(&self) -> Vec<&'static str> {
        let defaults = default_values();
        OPTIONS
            .iter()
            .enumerate()
            .filter(|(i, def)| {
                let active = if def.name == "cluster_mode" {
                    self.values[*i] != Value::Str("yes".into())
                } else {
                    def.active
                };
                self.explicit[*i] && !active && self.values[*i] != defaults[*i]
            })
            .map(|(_, def)| def.name)
            .collect()
    }

    /// The `--help` text, generated from the registry.
    pub fn help_text() -> String {
        let mut s = String::new();
        s.push_str(
            "Usage: damselfly [/path/to/redis.conf] [--flag=value | --flag value | --boolflag | --noboolflag]...\n\
             \n\
             Flags can be written with one or two dashes, '-' and '_' are interchangeable and names\n\
             are case-insensitive. Redis config names work as flags (--maxmemory-policy allkeys-lru,\n\
             --save \"\"). Environment variables DFLY_<flag> set flags too (DFLY_PASSWORD sets\n\
             requirepass); the command line wins. --flagfile=FILE reads one --flag=value per line.\n\
             Memory sizes on the command line use 1024-based units: 512mb, 1g, 1.5gb, 100kib.\n\
             \n\
               --help        show this help and exit\n\
               --version     show the version and exit\n\
               --flagfile    read flags from a file\n",
        );
        let mut section = |title: &str, active: bool| {
            s.push('\n');
            s.push_str(title);
            s.push('\n');
            for def in OPTIONS.iter().filter(|d| d.active == active) {
                s.push_str(&format!("  --{}", def.name));
                if def.ty != T::Bool {
                    s.push_str(&format!(" ({})", expectation(def)));
                }
                s.push('\n');
                s.push_str(&format!("      {}\n", def.help));
                let mut facts = Vec::new();
                let default = match def.default {
                    "" => "\"\"".to_string(),
                    d => d.to_string(),
                };
                facts.push(format!("default: {default}"));
                if let Some(r) = def.redis_name {
                    if r != def.name {
                        facts.push(format!("redis name: {r}"));
                    }
                }
                if !def.aliases.is_empty() {
                    facts.push(format!("aliases: {}", def.aliases.join(", ")));
                }
                facts.push(if def.mutable {
                    "CONFIG SET: yes".to_string()
                } else {
                    "CONFIG SET: no".to_string()
                });
                s.push_str(&format!("      [{}]\n", facts.join("; ")));
            }
        };
        section("Options:", true);
        section(
            "Accepted for compatibility, not implemented yet (stored and reported by CONFIG GET, no effect):",
            false,
        );
        s
    }
}
