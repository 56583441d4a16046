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
//! Precedence, lowest first: defaults, `DFLY_` environment variables,
//! redis.conf files given as positional arguments (wherever they appear,
//! as with `redis-server file --flag`), then flags in argument order (a
//! later flag overrides an earlier one; `save` accumulates, see below).
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
//! * `enable-debug-command` defaults to `yes` (Redis: `no`): Dragonfly has
//!   no such gate and its users fill servers with DEBUG POPULATE. `no` and
//!   `local` (127.0.0.1 and ::1 only) are honoured, with Redis's error.
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
#[rustfmt::skip]
pub static OPTIONS: &[OptDef] = &[
    redis("port", "port", T::Int { min: 0, max: 65535 }, "6379", "TCP port to listen on").immutable().active(),
    redis("bind", "bind", T::Str, "", "Addresses to listen on, separated by spaces (a leading '-' marks an optional address, as in Redis); empty means all interfaces").immutable().multi_arg().active(),
    redis("requirepass", "requirepass", T::Str, "", "Password of the default user (AUTH <password>); empty means no password. DFLY_PASSWORD sets it too").active(),
    redis("maxclients", "maxclients", T::Int { min: 1, max: U32_MAX }, "10000", "Maximum number of simultaneously connected clients").active(),
    redis("timeout", "timeout", T::Int { min: 0, max: I32_MAX }, "0", "Close a client connection after it has been idle this many seconds (0 = never)").active(),
    redis("tcp_keepalive", "tcp-keepalive", T::Int { min: 0, max: I32_MAX }, "300", "TCP keepalive interval in seconds for client connections (0 = off)"),
    redis("tcp_backlog", "tcp-backlog", T::Int { min: 0, max: I32_MAX }, "511", "Backlog of the listening socket").immutable().active(),
    redis("proto_max_bulk_len", "proto-max-bulk-len", T::Memory { min: MB, max: I64_MAX_U }, "536870912", "Largest bulk string a client may send, in bytes").active(),
    dfly("max_multi_bulk_len", T::Int { min: 1, max: I32_MAX }, "2147483647", "Largest number of elements in a request (Dragonfly's default is 65536; Damselfly follows Redis, whose only limit is INT_MAX, with client_query_buffer_limit bounding memory)").immutable().active(),
    redis("client_query_buffer_limit", "client-query-buffer-limit", T::Memory { min: MB, max: I64_MAX_U }, "1073741824", "Largest query buffer a client may accumulate, in bytes").active(),
    dfly("proactor_threads", T::Int { min: 0, max: 1024 }, "0", "Number of I/O threads (0 = one per CPU)").immutable().active(),
    dfly("num_shards", T::Int { min: 0, max: 1024 }, "0", "Number of keyspace shards (0 = one per I/O thread)").immutable(),
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
    redis("enable_debug_command", "enable-debug-command", T::Enum(&["no", "yes", "local"]), "yes", "Allow the DEBUG command: no, yes or local (from 127.0.0.1 or ::1); yes by default, as DEBUG POPULATE is how Dragonfly users fill a server").immutable(),
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
    redis("protected_mode", "protected-mode", T::Bool, "yes", "Refuse non-loopback clients when there is no password and no bind address").active(),
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
    redis("latency_monitor_threshold", "latency-monitor-threshold", T::Int { min: 0, max: i64::MAX }, "0", "Latency monitor threshold in milliseconds (0 = off)").active(),
    redis("latency_tracking", "latency-tracking", T::Bool, "yes", "Track per-command latency percentiles").active(),
    redis("latency_tracking_info_percentiles", "latency-tracking-info-percentiles", T::Percentiles, "50 99 99.9", "Percentiles reported by INFO latencystats").multi_arg().active(),
    redis("notify_keyspace_events", "notify-keyspace-events", T::KeyspaceEvents, "", "Keyspace notification classes (letters from 'Ag$lshzxeKEtmdn')").active(),
    redis("tracking_table_max_keys", "tracking-table-max-keys", T::Int { min: 0, max: i64::MAX }, "1000000", "Keys tracked for client-side caching").active(),
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

/// A percentile as Redis prints it: `%f`, trailing zeros and point trimmed (`99.9`, `50`).
pub fn format_percentile(p: f64) -> String {
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
            if words.chunks(4).any(|c| c.len() != 4) {
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
                match c_strtoll_full(w).filter(|v| !w.is_empty() && (-2000..=2000).contains(v)) {
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
                s.push_str(&format!(", between {min} and {max} bytes"));
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

/// One command-line item, collected before anything is applied.
enum Action {
    /// `--flag value`: option index, raw value, the flag as written.
    Set {
        opt: usize,
        raw: String,
        shown: String,
    },
    /// A positional redis.conf path.
    ConfFile(String),
}

/// Turn arguments (or flag-file lines) into [`Action`]s; `--help`,
/// `--version` and malformed flags return at once.
fn collect_args(args: &[String], depth: usize, out: &mut Vec<Action>) -> Result<(), ConfigError> {
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
            if !Path::new(arg).is_file() {
                return Err(ConfigError::Invalid(format!(
                    "unexpected argument '{arg}': it is not a flag and not an existing config file"
                )));
            }
            out.push(Action::ConfFile(arg.clone()));
            continue;
        }
        let body = arg.strip_prefix("--").unwrap_or(&arg[1..]);
        let (fname, inline) = match body.find('=') {
            Some(p) => (&body[..p], Some(&body[p + 1..])),
            None => (body, None),
        };
        let lname = fname.to_ascii_lowercase();
        match lname.as_str() {
            "help" | "helpfull" | "h" | "?" => return Err(ConfigError::Help(Config::help_text())),
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
                collect_flagfile(&path, depth + 1, out)?;
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
                    out.push(Action::Set {
                        opt: e.opt,
                        raw: "false".into(),
                        shown,
                    });
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
                    let mut v = if def.multi_arg && args.get(i).is_none_or(|n| looks_like_flag(n)) {
                        if def.ty == T::Save {
                            String::new()
                        } else {
                            return Err(ConfigError::Invalid(format!("missing value for {shown}")));
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
        out.push(Action::Set {
            opt: entry.opt,
            raw: value,
            shown,
        });
    }
    Ok(())
}

fn collect_flagfile(path: &str, depth: usize, out: &mut Vec<Action>) -> Result<(), ConfigError> {
    if depth > MAX_INCLUDE_DEPTH {
        return Err(ConfigError::Invalid(format!(
            "flagfile '{path}': flag files nested too deeply"
        )));
    }
    let text = read_file(path, "flagfile")?;
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
    collect_args(&args, depth, out)
}

fn read_file(path: &str, what: &str) -> Result<String, ConfigError> {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| ConfigError::Invalid(format!("can't read {what} '{path}': {e}")))
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
        let mut actions = Vec::new();
        collect_args(&args, 0, &mut actions)?;
        cfg.apply_actions(&actions, &mut ctx)?;
        // Like Redis (which chdirs into `dir` at startup), report an absolute
        // path; a directory that does not exist yet is kept as given.
        let dir = index_or_panic("dir");
        if let Value::Str(d) = &cfg.values[dir] {
            if !d.is_empty() {
                if let Ok(abs) = std::fs::canonicalize(d) {
                    cfg.values[dir] = Value::Str(abs.to_string_lossy().into_owned());
                }
            }
        }
        Ok(cfg)
    }

    /// Apply collected arguments: config files first (in order), then flags
    /// (in order), so that flags win over files wherever they appear, as with
    /// Redis's `redis-server file --flag`.
    fn apply_actions(&mut self, actions: &[Action], ctx: &mut Ctx) -> Result<(), ConfigError> {
        for a in actions {
            if let Action::ConfFile(path) = a {
                if self.config_file.is_none() {
                    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(path));
                    self.config_file = Some(abs.to_string_lossy().into_owned());
                }
                self.load_conf_file(path, ctx, 1)?;
            }
        }
        for a in actions {
            if let Action::Set { opt, raw, shown } = a {
                self.set_parsed(*opt, raw, Src::Cmdline, ctx)
                    .map_err(|bad| flag_error(&OPTIONS[*opt], raw, shown, &bad))?;
            }
        }
        Ok(())
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
                let mut actions = Vec::new();
                collect_flagfile(value, 1, &mut actions)?;
                self.apply_actions(&actions, ctx)?;
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
        let text = read_file(path, "config file")?;
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
\n",
        );
        s.push_str("  --help        show this help and exit\n");
        s.push_str("  --version     show the version and exit\n");
        s.push_str("  --flagfile    read flags from a file\n");
        let quoted = |d: &str| {
            if d.is_empty() {
                "\"\"".to_string()
            } else {
                d.to_string()
            }
        };
        s.push_str("\nOptions:\n");
        for def in OPTIONS.iter().filter(|d| d.active) {
            s.push_str(&format!("  --{}", def.name));
            if def.ty != T::Bool {
                s.push_str(&format!(" ({})", expectation(def)));
            }
            s.push('\n');
            s.push_str(&format!("      {}\n", def.help));
            let mut facts = vec![format!("default: {}", quoted(def.default))];
            if let Some(r) = def.redis_name {
                if r != def.name {
                    facts.push(format!("redis name: {r}"));
                }
            }
            if !def.aliases.is_empty() {
                facts.push(format!("aliases: {}", def.aliases.join(", ")));
            }
            facts.push(format!(
                "CONFIG SET: {}",
                if def.mutable { "yes" } else { "no" }
            ));
            s.push_str(&format!("      [{}]\n", facts.join("; ")));
        }
        s.push_str(
            "\nAccepted for compatibility but not implemented yet: stored, shown by CONFIG GET,\n\
             settable with CONFIG SET where Redis allows it, no effect (name=default):\n",
        );
        for def in OPTIONS.iter().filter(|d| !d.active) {
            s.push_str(&format!("  --{}={}", def.name, quoted(def.default)));
            if let Some(r) = def.redis_name {
                if r != def.name {
                    s.push_str(&format!("  (redis: {r})"));
                }
            }
            s.push_str(&format!("  {}\n", def.help));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn parse(a: &[&str]) -> Config {
        match Config::from_args(args(a), &[]) {
            Ok(c) => c,
            Err(e) => panic!("{a:?}: {e}"),
        }
    }

    fn parse_err(a: &[&str]) -> String {
        match Config::from_args(args(a), &[]) {
            Err(ConfigError::Invalid(m)) => m,
            Err(e) => panic!("{a:?}: unexpected {e:?}"),
            Ok(_) => panic!("{a:?}: parsed"),
        }
    }

    fn parse_env(a: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_args(args(a), &env)
    }

    fn tmpfile(content: &str) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!(
            "damselfly-config-test-{}-{n}.conf",
            std::process::id()
        ));
        std::fs::write(&p, content).unwrap();
        p.to_string_lossy().into_owned()
    }

    fn get(c: &Config, name: &str) -> Option<String> {
        let r = c.config_get(&[name.as_bytes()]);
        assert!(r.len() <= 1);
        r.into_iter().next().map(|(_, v)| v)
    }

    fn set(c: &mut Config, name: &str, value: &str) -> Result<(), String> {
        c.config_set(name.as_bytes(), value.as_bytes())
    }

    fn set_err(c: &mut Config, name: &str, value: &str) -> String {
        set(c, name, value).expect_err("CONFIG SET should fail")
    }

    /// `CONFIG GET *` of redis-server 7.0.15 started with
    /// `--save "" --port 7777 --daemonize yes` in /tmp.
    const REDIS_7_0_CONFIG: &[(&str, &str)] = &[
        ("acl-pubsub-default", "resetchannels"),
        ("aclfile", ""),
        ("acllog-max-len", "128"),
        ("active-defrag-cycle-max", "25"),
        ("active-defrag-cycle-min", "1"),
        ("active-defrag-ignore-bytes", "104857600"),
        ("active-defrag-max-scan-fields", "1000"),
        ("active-defrag-threshold-lower", "10"),
        ("active-defrag-threshold-upper", "100"),
        ("active-expire-effort", "1"),
        ("activedefrag", "no"),
        ("activerehashing", "yes"),
        ("always-show-logo", "no"),
        ("aof-disable-auto-gc", "no"),
        ("aof-load-truncated", "yes"),
        ("aof-rewrite-incremental-fsync", "yes"),
        ("aof-timestamp-enabled", "no"),
        ("aof-use-rdb-preamble", "yes"),
        ("aof_rewrite_cpulist", ""),
        ("appenddirname", "appendonlydir"),
        ("appendfilename", "appendonly.aof"),
        ("appendfsync", "everysec"),
        ("appendonly", "no"),
        ("auto-aof-rewrite-min-size", "67108864"),
        ("auto-aof-rewrite-percentage", "100"),
        ("bgsave_cpulist", ""),
        ("bind", "* -::*"),
        ("bind-source-addr", ""),
        ("bio_cpulist", ""),
        ("busy-reply-threshold", "5000"),
        (
            "client-output-buffer-limit",
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        ),
        ("client-query-buffer-limit", "1073741824"),
        ("cluster-allow-pubsubshard-when-down", "yes"),
        ("cluster-allow-reads-when-down", "no"),
        ("cluster-allow-replica-migration", "yes"),
        ("cluster-announce-bus-port", "0"),
        ("cluster-announce-hostname", ""),
        ("cluster-announce-ip", ""),
        ("cluster-announce-port", "0"),
        ("cluster-announce-tls-port", "0"),
        ("cluster-config-file", "nodes.conf"),
        ("cluster-enabled", "no"),
        ("cluster-link-sendbuf-limit", "0"),
        ("cluster-migration-barrier", "1"),
        ("cluster-node-timeout", "15000"),
        ("cluster-port", "0"),
        ("cluster-preferred-endpoint-type", "ip"),
        ("cluster-replica-no-failover", "no"),
        ("cluster-replica-validity-factor", "10"),
        ("cluster-require-full-coverage", "yes"),
        ("cluster-slave-no-failover", "no"),
        ("cluster-slave-validity-factor", "10"),
        ("crash-log-enabled", "yes"),
        ("crash-memcheck-enabled", "yes"),
        ("daemonize", "yes"),
        ("databases", "16"),
        ("dbfilename", "dump.rdb"),
        ("dir", "/tmp"),
        ("disable-thp", "yes"),
        ("dynamic-hz", "yes"),
        ("enable-debug-command", "no"),
        ("enable-module-command", "no"),
        ("enable-protected-configs", "no"),
        ("hash-max-listpack-entries", "512"),
        ("hash-max-listpack-value", "64"),
        ("hash-max-ziplist-entries", "512"),
        ("hash-max-ziplist-value", "64"),
        ("hll-sparse-max-bytes", "3000"),
        ("hz", "10"),
        ("ignore-warnings", ""),
        ("io-threads", "1"),
        ("io-threads-do-reads", "no"),
        ("jemalloc-bg-thread", "yes"),
        ("latency-monitor-threshold", "0"),
        ("latency-tracking", "yes"),
        ("latency-tracking-info-percentiles", "50 99 99.9"),
        ("lazyfree-lazy-eviction", "no"),
        ("lazyfree-lazy-expire", "no"),
        ("lazyfree-lazy-server-del", "no"),
        ("lazyfree-lazy-user-del", "no"),
        ("lazyfree-lazy-user-flush", "no"),
        ("lfu-decay-time", "1"),
        ("lfu-log-factor", "10"),
        ("list-compress-depth", "0"),
        ("list-max-listpack-size", "-2"),
        ("list-max-ziplist-size", "-2"),
        ("logfile", ""),
        ("loglevel", "notice"),
        ("lua-time-limit", "5000"),
        ("masterauth", ""),
        ("masteruser", ""),
        ("maxclients", "10000"),
        ("maxmemory", "0"),
        ("maxmemory-clients", "0"),
        ("maxmemory-eviction-tenacity", "10"),
        ("maxmemory-policy", "noeviction"),
        ("maxmemory-samples", "5"),
        ("min-replicas-max-lag", "10"),
        ("min-replicas-to-write", "0"),
        ("min-slaves-max-lag", "10"),
        ("min-slaves-to-write", "0"),
        ("no-appendfsync-on-rewrite", "no"),
        ("notify-keyspace-events", ""),
        ("oom-score-adj", "no"),
        ("oom-score-adj-values", "0 200 800"),
        ("pidfile", "/var/run/redis.pid"),
        ("port", "7777"),
        ("proc-title-template", "{title} {listen-addr} {server-mode}"),
        ("propagation-error-behavior", "ignore"),
        ("protected-mode", "yes"),
        ("proto-max-bulk-len", "536870912"),
        ("rdb-del-sync-files", "no"),
        ("rdb-save-incremental-fsync", "yes"),
        ("rdbchecksum", "yes"),
        ("rdbcompression", "yes"),
        ("repl-backlog-size", "1048576"),
        ("repl-backlog-ttl", "3600"),
        ("repl-disable-tcp-nodelay", "no"),
        ("repl-diskless-load", "disabled"),
        ("repl-diskless-sync", "yes"),
        ("repl-diskless-sync-delay", "5"),
        ("repl-diskless-sync-max-replicas", "0"),
        ("repl-ping-replica-period", "10"),
        ("repl-ping-slave-period", "10"),
        ("repl-timeout", "60"),
        ("replica-announce-ip", ""),
        ("replica-announce-port", "0"),
        ("replica-announced", "yes"),
        ("replica-ignore-disk-write-errors", "no"),
        ("replica-ignore-maxmemory", "yes"),
        ("replica-lazy-flush", "no"),
        ("replica-priority", "100"),
        ("replica-read-only", "yes"),
        ("replica-serve-stale-data", "yes"),
        ("replicaof", ""),
        ("requirepass", ""),
        ("sanitize-dump-payload", "no"),
        ("save", ""),
        ("server_cpulist", ""),
        ("set-max-intset-entries", "512"),
        ("set-proc-title", "yes"),
        ("shutdown-on-sigint", "default"),
        ("shutdown-on-sigterm", "default"),
        ("shutdown-timeout", "10"),
        ("slave-announce-ip", ""),
        ("slave-announce-port", "0"),
        ("slave-ignore-maxmemory", "yes"),
        ("slave-lazy-flush", "no"),
        ("slave-priority", "100"),
        ("slave-read-only", "yes"),
        ("slave-serve-stale-data", "yes"),
        ("slaveof", ""),
        ("slowlog-log-slower-than", "10000"),
        ("slowlog-max-len", "128"),
        ("socket-mark-id", "0"),
        ("stop-writes-on-bgsave-error", "yes"),
        ("stream-node-max-bytes", "4096"),
        ("stream-node-max-entries", "100"),
        ("supervised", "no"),
        ("syslog-enabled", "no"),
        ("syslog-facility", "local0"),
        ("syslog-ident", "redis"),
        ("tcp-backlog", "511"),
        ("tcp-keepalive", "300"),
        ("timeout", "0"),
        ("tls-auth-clients", "yes"),
        ("tls-ca-cert-dir", ""),
        ("tls-ca-cert-file", ""),
        ("tls-cert-file", ""),
        ("tls-ciphers", ""),
        ("tls-ciphersuites", ""),
        ("tls-client-cert-file", ""),
        ("tls-client-key-file", ""),
        ("tls-client-key-file-pass", ""),
        ("tls-cluster", "no"),
        ("tls-dh-params-file", ""),
        ("tls-key-file", ""),
        ("tls-key-file-pass", ""),
        ("tls-port", "0"),
        ("tls-prefer-server-ciphers", "no"),
        ("tls-protocols", ""),
        ("tls-replication", "no"),
        ("tls-session-cache-size", "20480"),
        ("tls-session-cache-timeout", "300"),
        ("tls-session-caching", "yes"),
        ("tracking-table-max-keys", "1000000"),
        ("unixsocket", ""),
        ("unixsocketperm", "0"),
        ("zset-max-listpack-entries", "128"),
        ("zset-max-listpack-value", "64"),
        ("zset-max-ziplist-entries", "128"),
        ("zset-max-ziplist-value", "64"),
    ];

    // ----- registry

    #[test]
    fn registry_names_are_unique_and_defaults_parse() {
        let mut all = HashSet::new();
        for def in OPTIONS {
            let mut names = vec![def.name, def.config_name()];
            names.extend(def.aliases);
            let mut own = HashSet::new();
            for n in names {
                let k = normalize(n);
                if own.insert(k.clone()) {
                    assert!(all.insert(k), "name {n} used by two options");
                }
            }
            assert!(!def.help.is_empty(), "{} has no help", def.name);
            assert!(
                def.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{} is not snake_case",
                def.name
            );
            if let Some(r) = def.redis_name {
                assert_eq!(r, r.to_ascii_lowercase());
            }
        }
        let c = Config::defaults();
        assert_eq!(c.values.len(), OPTIONS.len());
        assert!(c.inactive_options_set().is_empty());
    }

    #[test]
    fn config_get_star_matches_redis_7_0() {
        let c = Config::defaults();
        let ours: HashMap<String, String> = c.config_get(&[b"*"]).into_iter().collect();
        for (name, redis_value) in REDIS_7_0_CONFIG {
            let Some(v) = ours.get(*name) else {
                panic!("CONFIG GET * lacks {name}");
            };
            let expected = match *name {
                // Intentional differences (see the module doc) and values
                // that came from how the reference server was started.
                "bind" => "",
                "daemonize" => "no",
                "pidfile" => "",
                "port" => "6379",
                "dir" => v.as_str(),
                // DEBUG is on by default, as in Dragonfly (docs/compatibility.md).
                "enable-debug-command" => "yes",
                _ => redis_value,
            };
            assert_eq!(v, expected, "default of {name}");
        }
        // Everything else CONFIG GET * lists is Dragonfly-only (or 7.2's
        // set-max-listpack-entries).
        for name in ours.keys() {
            if !REDIS_7_0_CONFIG.iter().any(|(n, _)| n == name) {
                let def = lookup(name).unwrap();
                assert!(
                    def.redis_name.is_none() || *name == "set-max-listpack-entries",
                    "{name}"
                );
            }
        }
        assert_eq!(
            ours["dir"],
            std::env::current_dir().unwrap().to_string_lossy()
        );
    }

    #[test]
    fn brief_options_exist() {
        for name in [
            "port",
            "bind",
            "requirepass",
            "maxmemory",
            "proactor_threads",
            "num_shards",
            "cache_mode",
            "logtostderr",
            "alsologtostderr",
            "log_dir",
            "dbnum",
            "databases",
            "cluster_mode",
            "maxmemory_policy",
            "snapshot_cron",
            "dir",
            "dbfilename",
            "save",
            "appendonly",
            "maxclients",
            "timeout",
            "proto_max_bulk_len",
            "max_multi_bulk_len",
            "client_query_buffer_limit",
            "protected_mode",
            "hz",
            "tcp_keepalive",
            "tcp_backlog",
            "unixsocket",
            "pidfile",
            "daemonize",
            "loglevel",
            "logfile",
            "masterauth",
            "replicaof",
            "tls",
            "tls_cert_file",
            "tls_key_file",
            "tls_ca_cert_file",
            "tls_port",
            "aclfile",
            "lua_time_limit",
            "lua-time-limit",
            "slowlog-log-slower-than",
            "slowlog-max-len",
            "notify-keyspace-events",
            "list-max-listpack-size",
            "hash-max-listpack-entries",
            "hash-max-listpack-value",
            "set-max-intset-entries",
            "set-max-listpack-entries",
            "zset-max-listpack-entries",
            "zset-max-listpack-value",
            "lfu-log-factor",
            "lfu-decay-time",
            "maxmemory-samples",
            "admin_port",
            "memcached_port",
            "primary_port_http_enabled",
            "keys_output_limit",
            "pipeline_squash",
            "version_check",
            "force_epoll",
            "lazyfree-lazy-user-flush",
            "appendfsync",
            "replica-read-only",
            "min-replicas-to-write",
        ] {
            assert!(lookup(name).is_some(), "{name}");
        }
        let c = Config::defaults();
        assert_eq!(c.get_int("port"), 6379);
        assert_eq!(c.get_str("bind"), "");
        assert_eq!(c.get_int("dbnum"), 16);
        assert_eq!(c.get_int("databases"), 16);
        assert_eq!(c.get_bytes("proto_max_bulk_len"), 512 << 20);
        assert_eq!(c.get_bytes("client-query-buffer-limit"), 1 << 30);
        assert_eq!(c.get_int("max_multi_bulk_len"), i32::MAX as i64);
        assert_eq!(c.get_int("maxclients"), 10000);
        assert_eq!(c.get_int("lua_time_limit"), 5000);
        assert_eq!(c.get_int("keys_output_limit"), 8192);
        assert!(c.get_bool("primary_port_http_enabled"));
        assert!(c.get_bool("version_check"));
        assert!(!c.get_bool("force_epoll"));
        assert!(c.get_bool("protected-mode"));
        assert!(!c.get_bool("cache_mode"));
        assert_eq!(c.get_str("cache_mode"), "false");
        assert_eq!(c.get_str("appendonly"), "no");
        assert_eq!(c.get_str("save"), "");
        assert!(c.save_params().is_empty());
        assert_eq!(c.get_str("dbfilename"), "dump.rdb");
        assert_eq!(c.get_str("cluster_mode"), "");
        assert_eq!(c.get_f64("mem_defrag_threshold"), 0.7);
        assert_eq!(c.effective_maxmemory_policy(), "noeviction");
        assert_eq!(
            c.client_output_buffer_limit("replica"),
            Some((256 << 20, 64 << 20, 60))
        );
        assert_eq!(c.client_output_buffer_limit("normal"), Some((0, 0, 0)));
        assert_eq!(c.client_output_buffer_limit("master"), None);
        assert!(lookup("proactor_threads").unwrap().active);
        assert!(!lookup("maxmemory").unwrap().active);
        assert!(!lookup("port").unwrap().mutable);
    }

    #[test]
    #[should_panic(expected = "not in the registry")]
    fn getter_panics_on_unknown_name() {
        Config::defaults().get_str("no-such-option");
    }

    // ----- command line

    #[test]
    fn flag_forms() {
        for a in [
            &["--port=7000"][..],
            &["--port", "7000"],
            &["-port", "7000"],
            &["-port=7000"],
            &["--PORT", "7000"],
            &["--port", "+7000"],
        ] {
            assert_eq!(parse(a).get_int("port"), 7000, "{a:?}");
        }
        let c = parse(&["--proactor-threads", "4", "--num_shards=8", "--DbNum", "4"]);
        assert_eq!(c.get_int("proactor_threads"), 4);
        assert_eq!(c.get_int("num-shards"), 8);
        assert_eq!(c.get_int("databases"), 4);
        assert!(c.is_explicit("dbnum"));
        assert!(!c.is_explicit("port"));
        // Negative values are taken as values.
        let c = parse(&[
            "--slowlog-log-slower-than",
            "-1",
            "--list-max-listpack-size",
            "-5",
        ]);
        assert_eq!(c.get_int("slowlog-log-slower-than"), -1);
        assert_eq!(c.get_int("list_max_listpack_size"), -5);
        // Later settings win.
        assert_eq!(parse(&["--port=1", "--port=2"]).get_int("port"), 2);
        // Strings with '=' and spaces.
        let c = parse(&["--requirepass=a=b c"]);
        assert_eq!(c.get_str("requirepass"), "a=b c");
        let c = parse(&["--requirepass", ""]);
        assert_eq!(c.get_str("requirepass"), "");
    }

    #[test]
    fn bool_flag_forms() {
        let on = |a: &[&str]| parse(a).get_bool("cache_mode");
        assert!(on(&["--cache_mode"]));
        assert!(on(&["--cache-mode"]));
        assert!(on(&["-cache_mode"]));
        assert!(on(&["--cache_mode=true"]));
        assert!(on(&["--cache_mode=YES"]));
        assert!(on(&["--cache_mode=1"]));
        assert!(!on(&["--cache_mode=false"]));
        assert!(!on(&["--cache_mode=no"]));
        assert!(!on(&["--cache_mode=0"]));
        assert!(!on(&["--cache_mode", "--nocache_mode"]));
        assert!(!on(&["--nocache-mode"]));
        assert!(on(&["--cache_mode", "true"]));
        assert!(!on(&["--cache_mode", "false"]));
        assert!(!on(&["--cache_mode", "No"]));
        assert!(on(&["--cache_mode", "--port", "1"]));
        // The next argument is consumed only if it is a boolean word.
        let c = parse(&["--cache_mode", "--logtostderr", "0"]);
        assert!(c.get_bool("cache_mode"));
        assert!(!c.get_bool("logtostderr"));
        // Redis style.
        let c = parse(&["--appendonly", "yes", "--protected-mode", "no"]);
        assert!(c.get_bool("appendonly"));
        assert_eq!(c.get_str("appendonly"), "yes");
        assert!(!c.get_bool("protected_mode"));
        // Errors.
        assert_eq!(
            parse_err(&["--cache_mode=maybe"]),
            "invalid value 'maybe' for --cache_mode: expected one of true, false, yes, no, 1, 0"
        );
        assert_eq!(
            parse_err(&["--nocache_mode=1"]),
            "--nocache_mode does not take a value"
        );
        assert_eq!(
            parse_err(&["--noport"]),
            "unknown command line flag 'noport'"
        );
        // A bool followed by a non-bool positional: the positional is a file.
        assert!(parse_err(&["--cache_mode", "maybe"]).contains("unexpected argument 'maybe'"));
    }

    #[test]
    fn redis_names_and_multi_word_values() {
        let c = parse(&["--maxmemory-policy", "ALLKEYS-LRU", "--databases", "4"]);
        assert_eq!(c.get_str("maxmemory_policy"), "allkeys-lru");
        assert_eq!(c.get_int("dbnum"), 4);
        let c = parse(&["--save", "", "--appendonly", "no"]);
        assert_eq!(c.get_str("save"), "");
        assert!(c.is_explicit("save"));
        let c = parse(&["--save", "900", "1", "300", "10", "--port", "1"]);
        assert_eq!(c.get_str("save"), "900 1 300 10");
        assert_eq!(c.save_params(), vec![(900, 1), (300, 10)]);
        assert_eq!(c.get_int("port"), 1);
        // Repeated save flags accumulate like Redis; "" clears.
        let c = parse(&["--save", "900 1", "--save", "60", "100"]);
        assert_eq!(c.get_str("save"), "900 1 60 100");
        let c = parse(&["--save", "900 1", "--save", "", "--save", "60 100"]);
        assert_eq!(c.get_str("save"), "60 100");
        let c = parse(&["--save=3600 1 300 100"]);
        assert_eq!(c.get_str("save"), "3600 1 300 100");
        // A bare --save means no snapshots.
        let c = parse(&["--save", "--port", "1"]);
        assert_eq!(c.get_str("save"), "");
        assert!(parse_err(&["--save", "900"]).contains("Invalid save parameters"));
        let c = parse(&["--bind", "127.0.0.1", "-::1", "--port", "5"]);
        assert_eq!(c.get_str("bind"), "127.0.0.1 -::1");
        let c = parse(&["--replicaof", "localhost", "6380"]);
        assert_eq!(c.get_str("replicaof"), "localhost 6380");
        assert_eq!(parse(&["--slaveof", "h", "1"]).get_str("replicaof"), "h 1");
        let c = parse(&[
            "--client-output-buffer-limit",
            "pubsub",
            "64mb",
            "16mb",
            "30",
        ]);
        assert_eq!(
            c.client_output_buffer_limit("pubsub"),
            Some((64 << 20, 16 << 20, 30))
        );
        let c = parse(&["--notify-keyspace-events", "KEA"]);
        assert_eq!(c.get_str("notify-keyspace-events"), "AKE");
        assert_eq!(
            c.get_int("notify-keyspace-events"),
            notify::ALL | notify::KEYSPACE | notify::KEYEVENT
        );
    }

    #[test]
    fn value_errors_name_the_flag() {
        assert_eq!(
            parse_err(&["--port", "x"]),
            "invalid value 'x' for --port: expected an integer in [0, 65535]"
        );
        assert_eq!(
            parse_err(&["--port=70000"]),
            "invalid value '70000' for --port: expected an integer in [0, 65535]"
        );
        assert_eq!(
            parse_err(&["--dbnum", "0"]),
            "invalid value '0' for --dbnum: expected an integer in [1, 1024]"
        );
        assert_eq!(
            parse_err(&["--maxmemory_policy", "lru"]),
            "invalid value 'lru' for --maxmemory_policy: expected one of: volatile-lru, \
             volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, \
             allkeys-random, noeviction"
        );
        assert_eq!(
            parse_err(&["--cluster_mode=real"]),
            "invalid value 'real' for --cluster_mode: expected one of: \"\", emulated, yes"
        );
        assert!(parse_err(&["--maxmemory", "lots"])
            .starts_with("invalid value 'lots' for --maxmemory: expected a memory size"));
        assert!(parse_err(&["--proto-max-bulk-len", "1k"]).contains("between 1048576 and"));
        assert_eq!(parse_err(&["--port"]), "missing value for --port");
        assert_eq!(parse_err(&["--foo"]), "unknown command line flag 'foo'");
        assert_eq!(parse_err(&["--foo=1"]), "unknown command line flag 'foo'");
        assert_eq!(parse_err(&["-foo", "1"]), "unknown command line flag 'foo'");
        assert!(
            parse_err(&["/no/such/file.conf"]).contains("unexpected argument '/no/such/file.conf'")
        );
        assert!(parse_err(&["--oom_deny_ratio=x"]).contains("expected a number"));
    }

    #[test]
    fn help_and_version() {
        for a in ["--help", "-h", "-help", "--helpfull", "--HELP"] {
            match Config::from_args(args(&[a]), &[]) {
                Err(ConfigError::Help(text)) => {
                    for def in OPTIONS {
                        assert!(text.contains(&format!("--{}", def.name)), "{}", def.name);
                    }
                }
                other => panic!("{a}: {other:?}"),
            }
        }
        for a in [
            &["--version"][..],
            &["-v"],
            &["-version"],
            &["--port", "1", "-v"],
        ] {
            assert_eq!(
                Config::from_args(args(a), &[]).err(),
                Some(ConfigError::Version),
                "{a:?}"
            );
        }
        assert_eq!(parse(&["--v=2"]).get_int("v"), 2);
        assert_eq!(parse(&["--v", "1"]).get_int("v"), 1);
        assert!(Config::help_text().contains("Accepted for compatibility"));
        assert!(Config::help_text().contains("  --appendonly=no  Enable the append-only file"));
        assert!(Config::help_text().contains("[default: 6379; CONFIG SET: no]"));
    }

    #[test]
    fn memory_units_on_the_command_line_are_1024_based() {
        for (s, v) in [
            ("1024", 1024u64),
            ("0", 0),
            ("512mb", 512 << 20),
            ("512MB", 512 << 20),
            ("512m", 512 << 20),
            ("1g", 1 << 30),
            ("2GB", 2 << 30),
            ("1.5gb", 3 << 29),
            ("100kib", 102400),
            ("1k", 1024),
            ("1KB", 1024),
            ("3b", 3),
            ("1 gb", 1 << 30),
            ("2tib", 2 << 40),
            ("0.5k", 512),
            ("1.0001k", 1024),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(parse_human_bytes(s), Some(v), "{s}");
            assert_eq!(parse(&["--maxmemory", s]).get_bytes("maxmemory"), v, "{s}");
        }
        for s in [
            "",
            "-1",
            "x",
            "1x",
            "1.2.3",
            ".",
            "1e3",
            "18446744073709551616",
            "16eb",
            "1kk",
        ] {
            assert_eq!(parse_human_bytes(s), None, "{s}");
        }
        let c = parse(&["--maxmemory=1.5gb"]);
        assert_eq!(c.get_str("maxmemory"), "1610612736");
        assert_eq!(get(&c, "maxmemory").unwrap(), "1610612736");
    }

    #[test]
    fn memtoull_matches_redis() {
        // Checked against redis-server 7.0.15 CONFIG SET maxmemory.
        for (s, v) in [
            ("1k", Some(1000u64)),
            ("1kb", Some(1024)),
            ("1m", Some(1_000_000)),
            ("1mb", Some(1 << 20)),
            ("1g", Some(1_000_000_000)),
            ("1gb", Some(1 << 30)),
            ("1K", Some(1000)),
            ("1KB", Some(1024)),
            ("1b", Some(1)),
            ("1B", Some(1)),
            ("100", Some(100)),
            ("0", Some(0)),
            ("", Some(0)),
            ("9999999999999999999999", Some(u64::MAX)),
            ("18446744073709551615", Some(u64::MAX)),
            ("1.5gb", None),
            ("-1", None),
            (" 5", None),
            ("5x", None),
            ("1t", None),
            ("1tb", None),
            ("1kib", None),
            ("1e3", None),
            ("+5", None),
        ] {
            assert_eq!(redis_memtoull(s), v, "{s:?}");
        }
    }

    #[test]
    fn split_args_like_sdssplitargs() {
        let ok = |s: &str| split_args(s).unwrap();
        assert_eq!(ok("save \"\""), vec!["save", ""]);
        assert_eq!(ok("  a   b  "), vec!["a", "b"]);
        assert_eq!(ok("a \"b c\" 'd e'"), vec!["a", "b c", "d e"]);
        assert_eq!(ok("x \"\\x41\\n\\\"\""), vec!["x", "A\n\""]);
        assert_eq!(ok("x 'it\\'s'"), vec!["x", "it's"]);
        assert_eq!(ok("x 'a\\nb'"), vec!["x", "a\\nb"]);
        assert_eq!(ok("a\"b\""), vec!["ab"]);
        assert!(ok("").is_empty());
        assert_eq!(split_args("a \"b"), None);
        assert_eq!(split_args("a 'b"), None);
        assert_eq!(split_args("a \"b\"c"), None);
    }

    // ----- environment

    #[test]
    fn environment() {
        let c = parse_env(
            &[],
            &[("DFLY_requirepass", "pw"), ("DFLY_proactor_threads", "3")],
        )
        .unwrap();
        assert_eq!(c.get_str("requirepass"), "pw");
        assert_eq!(c.get_int("proactor_threads"), 3);
        let c = parse_env(&[], &[("DFLY_PASSWORD", "p1")]).unwrap();
        assert_eq!(c.get_str("requirepass"), "p1");
        let c = parse_env(&[], &[("DFLY_requirepass", "p2"), ("DFLY_PASSWORD", "p1")]).unwrap();
        assert_eq!(c.get_str("requirepass"), "p2");
        let c = parse_env(&["--requirepass", "cli"], &[("DFLY_PASSWORD", "env")]).unwrap();
        assert_eq!(c.get_str("requirepass"), "cli");
        let c = parse_env(
            &["--port=1"],
            &[("DFLY_port", "2"), ("DFLY_cache_mode", "true")],
        )
        .unwrap();
        assert_eq!(c.get_int("port"), 1);
        assert!(c.get_bool("cache_mode"));
        let c = parse_env(
            &[],
            &[
                ("DFLY_maxmemory", "1gb"),
                ("DFLY_DEV_ENV", "x"),
                ("HOME", "/"),
            ],
        )
        .unwrap();
        assert_eq!(c.get_bytes("maxmemory"), 1 << 30);
        let c = parse_env(&[], &[("DFLY_MAXMEMORY_POLICY", "allkeys-lfu")]).unwrap();
        assert_eq!(c.get_str("maxmemory-policy"), "allkeys-lfu");
        match parse_env(&[], &[("DFLY_bogus", "1")]) {
            Err(ConfigError::Invalid(m)) => assert!(m.contains("'DFLY_bogus'"), "{m}"),
            other => panic!("{other:?}"),
        }
        match parse_env(&[], &[("DFLY_port", "x")]) {
            Err(ConfigError::Invalid(m)) => {
                assert_eq!(
                    m,
                    "invalid value 'x' for DFLY_port: expected an integer in [0, 65535]"
                )
            }
            other => panic!("{other:?}"),
        }
        // --save on the command line replaces the environment's.
        let c = parse_env(&["--save", "60 1"], &[("DFLY_save", "900 1")]).unwrap();
        assert_eq!(c.get_str("save"), "60 1");
    }

    // ----- flag files

    #[test]
    fn flagfile() {
        let inner = tmpfile("--maxclients=77\n");
        let path = tmpfile(&format!(
            "# comment\n\n--port=7001\n  --cache_mode\n--requirepass=with space\n--dbnum 8\n\
             --noprotected_mode\n--flagfile={inner}\n--save=900 1\n"
        ));
        for a in [
            vec![format!("--flagfile={path}")],
            vec!["--flagfile".into(), path.clone()],
        ] {
            let c = Config::from_args(a, &[]).unwrap();
            assert_eq!(c.get_int("port"), 7001);
            assert!(c.get_bool("cache_mode"));
            assert_eq!(c.get_str("requirepass"), "with space");
            assert_eq!(c.get_int("dbnum"), 8);
            assert!(!c.get_bool("protected-mode"));
            assert_eq!(c.get_int("maxclients"), 77);
            assert_eq!(c.get_str("save"), "900 1");
        }
        // Later command-line flags override the file.
        let c =
            Config::from_args(vec![format!("--flagfile={path}"), "--port=9".into()], &[]).unwrap();
        assert_eq!(c.get_int("port"), 9);
        let c = parse_env(&[], &[("DFLY_flagfile", path.as_str())]).unwrap();
        assert_eq!(c.get_int("port"), 7001);
        let bad = tmpfile("port=1\n");
        let e = parse_err(&[&format!("--flagfile={bad}")]);
        assert!(e.contains("line 1: expected --flag=value"), "{e}");
        let bad = tmpfile("--nosuch=1\n");
        assert_eq!(
            parse_err(&[&format!("--flagfile={bad}")]),
            "unknown command line flag 'nosuch'"
        );
        assert!(parse_err(&["--flagfile=/no/such/flagfile"]).contains("can't read flagfile"));
        let looped = tmpfile("");
        std::fs::write(&looped, format!("--flagfile={looped}\n")).unwrap();
        assert!(parse_err(&[&format!("--flagfile={looped}")]).contains("nested too deeply"));
    }

    // ----- redis.conf

    const STOCK_REDIS_CONF: &str = r#"
# Debian's /etc/redis/redis.conf for 7.0, comments removed
bind 127.0.0.1 -::1
protected-mode yes
port 6379
tcp-backlog 511
timeout 0
tcp-keepalive 300
daemonize yes
pidfile /run/redis/redis-server.pid
loglevel notice
logfile /var/log/redis/redis-server.log
databases 16
always-show-logo no
set-proc-title yes
proc-title-template "{title} {listen-addr} {server-mode}"
stop-writes-on-bgsave-error yes
rdbcompression yes
rdbchecksum yes
dbfilename dump.rdb
rdb-del-sync-files no
dir /var/lib/redis
replica-serve-stale-data yes
replica-read-only yes
repl-diskless-sync yes
repl-diskless-sync-delay 5
repl-diskless-sync-max-replicas 0
repl-diskless-load disabled
repl-disable-tcp-nodelay no
replica-priority 100
acllog-max-len 128
lazyfree-lazy-eviction no
lazyfree-lazy-expire no
lazyfree-lazy-server-del no
replica-lazy-flush no
lazyfree-lazy-user-del no
lazyfree-lazy-user-flush no
oom-score-adj no
oom-score-adj-values 0 200 800
disable-thp yes
appendonly no
appendfilename "appendonly.aof"
appenddirname "appendonlydir"
appendfsync everysec
no-appendfsync-on-rewrite no
auto-aof-rewrite-percentage 100
auto-aof-rewrite-min-size 64mb
aof-load-truncated yes
aof-use-rdb-preamble yes
aof-timestamp-enabled no
 
slowlog-log-slower-than 10000
slowlog-max-len 128
latency-monitor-threshold 0
notify-keyspace-events ""
hash-max-listpack-entries 512
hash-max-listpack-value 64
list-max-listpack-size -2
list-compress-depth 0
set-max-intset-entries 512
zset-max-listpack-entries 128
zset-max-listpack-value 64
hll-sparse-max-bytes 3000
stream-node-max-bytes 4096
stream-node-max-entries 100
activerehashing yes
client-output-buffer-limit normal 0 0 0
client-output-buffer-limit replica 256mb 64mb 60
client-output-buffer-limit pubsub 32mb 8mb 60
hz 10
dynamic-hz yes
aof-rewrite-incremental-fsync yes
rdb-save-incremental-fsync yes
jemalloc-bg-thread yes
"#;

    #[test]
    fn stock_redis_conf_loads() {
        let path = tmpfile(STOCK_REDIS_CONF);
        let c = parse(&[&path]);
        assert_eq!(
            c.config_file(),
            Some(std::fs::canonicalize(&path).unwrap().to_str().unwrap())
        );
        assert_eq!(c.get_str("bind"), "127.0.0.1 -::1");
        assert_eq!(c.get_str("pidfile"), "/run/redis/redis-server.pid");
        assert!(c.get_bool("daemonize"));
        assert_eq!(c.get_str("dir"), "/var/lib/redis");
        assert_eq!(c.get_bytes("auto-aof-rewrite-min-size"), 64 << 20);
        assert_eq!(c.get_str("notify-keyspace-events"), "");
        assert_eq!(
            c.get_str("proc-title-template"),
            "{title} {listen-addr} {server-mode}"
        );
        assert_eq!(
            c.get_str("client-output-buffer-limit"),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        assert_eq!(c.get_str("oom-score-adj-values"), "0 200 800");
        assert_eq!(c.get_str("save"), "");
        assert!(!c.is_explicit("save"));
        let mut inactive = c.inactive_options_set();
        inactive.sort();
        assert!(inactive.contains(&"daemonize"), "{inactive:?}");
        assert!(!inactive.contains(&"port"));
        assert!(
            !inactive.contains(&"appendonly"),
            "default value: not reported"
        );
        // Flags after the file override it.
        let c = parse(&[&path, "--port", "7002", "--daemonize", "no"]);
        assert_eq!(c.get_int("port"), 7002);
        assert!(!c.get_bool("daemonize"));
        // ... and so do flags before it.
        let c = parse(&["--port", "7003", &path, "--daemonize=no"]);
        assert_eq!(c.get_int("port"), 7003);
        assert!(!c.get_bool("daemonize"));
        assert_eq!(c.get_str("bind"), "127.0.0.1 -::1");
    }

    #[test]
    fn redis_conf_details() {
        let inc = tmpfile("maxclients 55\n");
        let path = tmpfile(&format!(
            "  # indented comment\r\n\
             save 900 1\n\
             save 300 10\n\
             include {inc}\n\
             requirepass \"p w\\x21\"\n\
             masterauth 'x y'\n\
             maxmemory 1gb\n\
             maxmemory-clients 10%\n\
             hash-max-ziplist-entries 64\n\
             list-max-ziplist-entries 512\n\
             slaveof 10.0.0.1 6379\n\
             APPENDONLY yes\n\
             client-output-buffer-limit normal 1mb 2k 3\n\
             shutdown-on-sigint now save\n"
        ));
        let c = parse(&[&path]);
        assert_eq!(c.get_str("save"), "900 1 300 10");
        assert_eq!(c.get_int("maxclients"), 55);
        assert_eq!(c.get_str("requirepass"), "p w!");
        assert_eq!(c.get_str("masterauth"), "x y");
        assert_eq!(c.get_bytes("maxmemory"), 1 << 30);
        assert_eq!(c.get_str("maxmemory-clients"), "10%");
        assert_eq!(c.get_int("hash-max-listpack-entries"), 64);
        assert_eq!(c.get_str("replicaof"), "10.0.0.1 6379");
        assert!(c.get_bool("appendonly"));
        assert_eq!(
            c.client_output_buffer_limit("normal"),
            Some((1 << 20, 2000, 3))
        );
        assert_eq!(
            c.client_output_buffer_limit("pubsub"),
            Some((32 << 20, 8 << 20, 60))
        );
        assert_eq!(c.get_str("shutdown-on-sigint"), "save now");
        // Memory in redis.conf uses Redis units (k = 1000).
        let p = tmpfile("maxmemory 1k\n");
        assert_eq!(parse(&[&p]).get_bytes("maxmemory"), 1000);
        // Command-line save appends to the file's save lines.
        assert_eq!(
            parse(&[&path, "--save", "60 5"]).get_str("save"),
            "900 1 300 10 60 5"
        );
        assert_eq!(parse(&[&path, "--save", ""]).get_str("save"), "");
        let cases: &[(&str, &str)] = &[
            (
                "foo bar\n",
                "'foo bar': Bad directive or wrong number of arguments",
            ),
            ("port\n", "'port': wrong number of arguments"),
            ("port 1 2\n", "'port 1 2': wrong number of arguments"),
            ("port x\n", "argument couldn't be parsed into an integer"),
            ("port +5\n", "argument couldn't be parsed into an integer"),
            (
                "databases 0\n",
                "argument must be between 1 and 1024 inclusive",
            ),
            ("appendonly maybe\n", "argument must be 'yes' or 'no'"),
            ("save 900\n", "Invalid save parameters"),
            (
                "requirepass \"abc\n",
                "Unbalanced quotes in configuration line",
            ),
            ("maxmemory 1.5gb\n", "argument must be a memory value"),
            (
                "rename-command FLUSHALL \"\"\n",
                "the 'rename-command' directive is not supported",
            ),
            (
                "loglevel loud\n",
                "argument(s) must be one of the following: debug, verbose, notice, warning",
            ),
        ];
        for (text, want) in cases {
            let p = tmpfile(&format!("# x\n{text}"));
            let e = parse_err(&[&p]);
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(e.contains("line 2"), "{e}");
        }
        let looped = tmpfile("");
        std::fs::write(&looped, format!("include {looped}\n")).unwrap();
        assert!(parse_err(&[&looped]).contains("nested too deeply"));
        // "--" ends flags: a file named like a flag would still be a file.
        let c = parse(&["--port=3", "--", &path]);
        assert_eq!(c.get_int("port"), 3);
        assert_eq!(c.get_int("maxclients"), 55);
    }

    // ----- CONFIG GET

    fn names(r: &[(String, String)]) -> Vec<&str> {
        r.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn config_get_globs_and_exact_names() {
        let c = Config::defaults();
        let r = c.config_get(&[b"maxmem*"]);
        let mut n = names(&r);
        n.sort();
        assert_eq!(
            n,
            [
                "maxmemory",
                "maxmemory-clients",
                "maxmemory-eviction-tenacity",
                "maxmemory-policy",
                "maxmemory-samples"
            ]
        );
        // Case-insensitive globs; duplicates removed.
        assert_eq!(
            c.config_get(&[b"MAXMEM*", b"maxmem*", b"maxmemory"]).len(),
            5
        );
        // Exact names are answered under the name as given, like Redis.
        assert_eq!(
            c.config_get(&[b"MAXMEMORY"]),
            vec![("MAXMEMORY".into(), "0".into())]
        );
        assert_eq!(c.config_get(&[b"maxmemory", b"MAXMEMORY"]).len(), 1);
        let r = c.config_get(&[b"MAXMEMORY", b"maxmem*"]);
        assert_eq!(r.len(), 5);
        assert!(names(&r).contains(&"MAXMEMORY"));
        assert!(!names(&r).contains(&"maxmemory"));
        assert_eq!(
            c.config_get(&[b"slaveof"]),
            vec![("slaveof".into(), "".into())]
        );
        assert_eq!(c.config_get(&[b"nosuch"]), vec![]);
        assert_eq!(c.config_get(&[b"nosuch*"]), vec![]);
        // Aliases are listed by globs, like Redis 7.0.
        let r = c.config_get(&[b"*max-*-entries*"]);
        let mut n = names(&r);
        n.sort();
        assert_eq!(
            n,
            [
                "hash-max-listpack-entries",
                "hash-max-ziplist-entries",
                "set-max-intset-entries",
                "set-max-listpack-entries",
                "zset-max-listpack-entries",
                "zset-max-ziplist-entries"
            ]
        );
        let r = c.config_get(&[b"*of"]);
        assert_eq!(names(&r), ["replicaof", "slaveof"]);
        // Dragonfly-only options under their own names; Dragonfly names of
        // Redis options work as exact names.
        assert_eq!(get(&c, "proactor_threads").unwrap(), "0");
        assert_eq!(get(&c, "proactor-threads").unwrap(), "0");
        assert_eq!(
            c.config_get(&[b"dbnum"]),
            vec![("dbnum".into(), "16".into())]
        );
        let r = c.config_get(&[b"db*"]);
        assert_eq!(names(&r), ["dbfilename"]);
        assert_eq!(names(&c.config_get(&[b"cache?mode"])), ["cache_mode"]);
        assert_eq!(get(&c, "cache_mode").unwrap(), "false");
        assert_eq!(get(&c, "appendonly").unwrap(), "no");
        assert_eq!(get(&c, "save").unwrap(), "");
        // Registry order.
        let all = c.config_get(&[b"*"]);
        assert_eq!(all[0].0, "port");
        let unique: HashSet<&str> = names(&all).into_iter().collect();
        assert_eq!(unique.len(), all.len());
        assert_eq!(
            all.len(),
            OPTIONS.iter().map(|d| 1 + d.aliases.len()).sum::<usize>()
        );
        // Bracket globs and escapes.
        assert_eq!(names(&c.config_get(&[b"[pt]ort"])), ["port"]);
        assert_eq!(names(&c.config_get(&[b"h[a-z]"])), ["hz"]);
        // No glob character: an exact lookup, so the backslash stays (Redis).
        assert_eq!(c.config_get(&[b"\\port"]), vec![]);
        assert_eq!(names(&c.config_get(&[b"\\p*rt"])), ["port"]);
    }

    #[test]
    fn cache_mode_reports_allkeys_lru() {
        let mut c = parse(&["--cache_mode"]);
        assert_eq!(c.effective_maxmemory_policy(), "allkeys-lru");
        assert_eq!(get(&c, "maxmemory-policy").unwrap(), "allkeys-lru");
        assert_eq!(c.get_str("maxmemory_policy"), "noeviction");
        set(&mut c, "maxmemory-policy", "allkeys-lfu").unwrap();
        assert_eq!(c.effective_maxmemory_policy(), "allkeys-lfu");
        set(&mut c, "cache_mode", "no").unwrap();
        set(&mut c, "maxmemory-policy", "noeviction").unwrap();
        assert_eq!(get(&c, "maxmemory-policy").unwrap(), "noeviction");
    }

    // ----- CONFIG SET

    #[test]
    fn config_set_values() {
        let mut c = Config::defaults();
        set(&mut c, "maxmemory", "1gb").unwrap();
        assert_eq!(get(&c, "maxmemory").unwrap(), "1073741824");
        set(&mut c, "maxmemory", "1k").unwrap();
        assert_eq!(c.get_bytes("maxmemory"), 1000);
        set(&mut c, "maxmemory", "").unwrap();
        assert_eq!(c.get_bytes("maxmemory"), 0);
        set(&mut c, "MAXMEMORY-POLICY", "ALLKEYS-LRU").unwrap();
        assert_eq!(get(&c, "maxmemory-policy").unwrap(), "allkeys-lru");
        set(&mut c, "maxmemory_policy", "volatile-ttl").unwrap();
        assert_eq!(c.get_str("maxmemory-policy"), "volatile-ttl");
        set(&mut c, "appendonly", "YES").unwrap();
        assert_eq!(get(&c, "appendonly").unwrap(), "yes");
        set(&mut c, "requirepass", "secret").unwrap();
        assert_eq!(c.get_str("requirepass"), "secret");
        set(&mut c, "timeout", "30").unwrap();
        assert_eq!(c.get_int("timeout"), 30);
        set(&mut c, "hz", "0").unwrap();
        assert_eq!(get(&c, "hz").unwrap(), "1");
        set(&mut c, "hz", "1000").unwrap();
        assert_eq!(get(&c, "hz").unwrap(), "500");
        set(&mut c, "save", "3600 1 300 100").unwrap();
        assert_eq!(get(&c, "save").unwrap(), "3600 1 300 100");
        set(&mut c, "save", "60 1").unwrap();
        assert_eq!(get(&c, "save").unwrap(), "60 1", "CONFIG SET save replaces");
        set(&mut c, "save", "3600 ").unwrap();
        assert_eq!(get(&c, "save").unwrap(), "3600 0");
        set(&mut c, "save", "+5 -0").unwrap();
        assert_eq!(get(&c, "save").unwrap(), "5 0");
        set(&mut c, "save", "").unwrap();
        assert_eq!(get(&c, "save").unwrap(), "");
        set(&mut c, "lua-time-limit", "100").unwrap();
        assert_eq!(get(&c, "busy-reply-threshold").unwrap(), "100");
        assert_eq!(c.get_int("lua_time_limit"), 100);
        set(&mut c, "slave-read-only", "no").unwrap();
        assert_eq!(get(&c, "replica-read-only").unwrap(), "no");
        set(&mut c, "list-max-listpack-size", "-5").unwrap();
        assert_eq!(c.get_int("list-max-ziplist-size"), -5);
        set(&mut c, "cache_mode", "true").unwrap();
        assert_eq!(get(&c, "cache_mode").unwrap(), "true");
        set(&mut c, "cache_mode", "no").unwrap();
        assert!(!c.get_bool("cache_mode"));
        set(&mut c, "proto-max-bulk-len", "1mb").unwrap();
        assert_eq!(get(&c, "proto-max-bulk-len").unwrap(), "1048576");
        set(&mut c, "maxmemory-clients", "50%").unwrap();
        assert_eq!(get(&c, "maxmemory-clients").unwrap(), "50%");
        set(&mut c, "maxmemory-clients", "1mb").unwrap();
        assert_eq!(get(&c, "maxmemory-clients").unwrap(), "1048576");
        set(&mut c, "oom-score-adj-values", "00 -1 +5").unwrap();
        assert_eq!(get(&c, "oom-score-adj-values").unwrap(), "0 -1 5");
        set(
            &mut c,
            "latency-tracking-info-percentiles",
            "50.0 99.90 1e1",
        )
        .unwrap();
        assert_eq!(
            get(&c, "latency-tracking-info-percentiles").unwrap(),
            "50 99.9 10"
        );
        set(&mut c, "latency-tracking-info-percentiles", "").unwrap();
        assert_eq!(get(&c, "latency-tracking-info-percentiles").unwrap(), "");
        set(&mut c, "shutdown-on-sigint", "now save").unwrap();
        assert_eq!(get(&c, "shutdown-on-sigint").unwrap(), "save now");
        set(&mut c, "shutdown-on-sigint", "force default").unwrap();
        assert_eq!(get(&c, "shutdown-on-sigint").unwrap(), "force");
        set(&mut c, "oom_deny_ratio", "1.5").unwrap();
        assert_eq!(c.get_f64("oom_deny_ratio"), 1.5);
        // Inactive options are stored and reported.
        assert!(c.inactive_options_set().contains(&"appendonly"));
        assert!(c.inactive_options_set().contains(&"maxmemory_policy"));
        assert!(!c.inactive_options_set().contains(&"requirepass"));
    }

    #[test]
    fn config_set_keyspace_events() {
        let mut c = Config::defaults();
        // Checked against redis-server 7.0.15.
        for (v, shown) in [
            ("g$lshzxetd", "A"),
            ("g$lshzxet", "g$lshzxet"),
            ("g$lshzxe", "g$lshzxe"),
            ("ndtexzhsl$g", "A"),
            ("mEK", "KEm"),
            ("An", "A"),
            ("AKEmn", "AKEm"),
            ("Ad", "A"),
            ("KE", "KE"),
            ("AA", "A"),
            ("Kgn", "gnK"),
            ("KEA", "AKE"),
            ("Egx$", "g$xE"),
            ("x", "x"),
            ("", ""),
        ] {
            set(&mut c, "notify-keyspace-events", v).unwrap();
            assert_eq!(get(&c, "notify-keyspace-events").unwrap(), shown, "{v}");
        }
        set(&mut c, "notify-keyspace-events", "An").unwrap();
        assert_ne!(c.get_int("notify-keyspace-events") & notify::NEW, 0);
        assert_eq!(
            set_err(&mut c, "notify-keyspace-events", "q"),
            "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - \
             Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
        );
    }

    #[test]
    fn config_set_output_buffer_limits() {
        let mut c = Config::defaults();
        let show = |c: &Config| get(c, "client-output-buffer-limit").unwrap();
        // Checked against redis-server 7.0.15.
        set(&mut c, "client-output-buffer-limit", "normal 1mb 2kb 3").unwrap();
        assert_eq!(
            show(&c),
            "normal 1048576 2048 3 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        set(&mut c, "client-output-buffer-limit", "replica 1 2 3").unwrap();
        assert_eq!(
            show(&c),
            "normal 1048576 2048 3 slave 1 2 3 pubsub 33554432 8388608 60"
        );
        set(
            &mut c,
            "client-output-buffer-limit",
            "slave 1 2 3 pubsub 4 5 6",
        )
        .unwrap();
        assert_eq!(show(&c), "normal 1048576 2048 3 slave 1 2 3 pubsub 4 5 6");
        set(&mut c, "client-output-buffer-limit", "NORMAL 1 2 3").unwrap();
        set(&mut c, "client-output-buffer-limit", "").unwrap();
        set(&mut c, "client-output-buffer-limit", "normal 1k 2 3").unwrap();
        assert_eq!(show(&c), "normal 1000 2 3 slave 1 2 3 pubsub 4 5 6");
        let e = |why: &str| {
            format!("ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - {why}")
        };
        let class = e("Invalid client class specified in buffer limit configuration.");
        let count = e("Wrong number of arguments in buffer limit configuration.");
        let value = e("Error in hard, soft or soft_seconds setting in buffer limit configuration.");
        for (v, want) in [
            ("bogus 1 2 3", &class),
            ("master 1 2 3", &class),
            ("normal 1 2", &count),
            ("zzz", &count),
            ("normal x 2 3", &value),
            ("normal 1 2 -3", &value),
            ("normal 1 2 x", &value),
            ("normal -1 2 3", &value),
        ] {
            assert_eq!(
                &set_err(&mut c, "client-output-buffer-limit", v),
                want,
                "{v}"
            );
        }
        assert_eq!(show(&c), "normal 1000 2 3 slave 1 2 3 pubsub 4 5 6");
    }

    #[test]
    fn config_set_errors_match_redis() {
        let mut c = Config::defaults();
        let failed = |arg: &str, why: &str| {
            format!("ERR CONFIG SET failed (possibly related to argument '{arg}') - {why}")
        };
        assert_eq!(
            set_err(&mut c, "foo", "bar"),
            "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"
        );
        assert_eq!(
            set_err(&mut c, "FOO", "bar"),
            "ERR Unknown option or number of arguments for CONFIG SET - 'FOO'"
        );
        let policies = "argument(s) must be one of the following: volatile-lru, volatile-lfu, \
                        volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, \
                        noeviction";
        // Value errors name the option (not the spelling used).
        assert_eq!(
            set_err(&mut c, "maxmemory-policy", "bad"),
            failed("maxmemory-policy", policies)
        );
        assert_eq!(
            set_err(&mut c, "MAXMEMORY-POLICY", "x"),
            failed("maxmemory-policy", policies)
        );
        // ... or the alias, when an alias was used.
        assert_eq!(
            set_err(&mut c, "slave-priority", "x"),
            failed(
                "slave-priority",
                "argument couldn't be parsed into an integer"
            )
        );
        let memory = "argument must be a memory value";
        for v in ["abc", "1.5gb", "-1", " 5", "5x", "1t", "1tb", "1kib", "1e3"] {
            assert_eq!(
                set_err(&mut c, "maxmemory", v),
                failed("maxmemory", memory),
                "{v}"
            );
        }
        let not_int = "argument couldn't be parsed into an integer";
        for v in [
            "abc",
            "010",
            "+5",
            " 5",
            "5.0",
            "99999999999999999999",
            "",
            "-0",
        ] {
            assert_eq!(
                set_err(&mut c, "timeout", v),
                failed("timeout", not_int),
                "{v:?}"
            );
        }
        assert_eq!(
            set_err(&mut c, "timeout", "-1"),
            failed(
                "timeout",
                "argument must be between 0 and 2147483647 inclusive"
            )
        );
        assert_eq!(
            set_err(&mut c, "maxclients", "0"),
            failed(
                "maxclients",
                "argument must be between 1 and 4294967295 inclusive"
            )
        );
        assert_eq!(
            set_err(&mut c, "slowlog-log-slower-than", "-5"),
            failed(
                "slowlog-log-slower-than",
                "argument must be between -1 and 9223372036854775807 inclusive"
            )
        );
        assert_eq!(
            set_err(&mut c, "proto-max-bulk-len", "100"),
            failed(
                "proto-max-bulk-len",
                "argument must be between 1048576 and 9223372036854775807 inclusive"
            )
        );
        assert_eq!(
            set_err(&mut c, "client-query-buffer-limit", "18446744073709551615"),
            failed(
                "client-query-buffer-limit",
                "argument must be between 1048576 and 9223372036854775807 inclusive"
            )
        );
        assert_eq!(
            set_err(&mut c, "hash-max-listpack-value", "9223372036854775808"),
            failed(
                "hash-max-listpack-value",
                "argument must be between 0 and 9223372036854775807 inclusive"
            )
        );
        assert_eq!(
            set_err(&mut c, "active-defrag-cycle-max", "100"),
            failed(
                "active-defrag-cycle-max",
                "argument must be between 1 and 99 inclusive"
            )
        );
        assert_eq!(
            set_err(&mut c, "appendonly", "maybe"),
            failed("appendonly", "argument must be 'yes' or 'no'")
        );
        for v in ["1", "true"] {
            assert_eq!(
                set_err(&mut c, "appendonly", v),
                failed("appendonly", "argument must be 'yes' or 'no'")
            );
        }
        assert_eq!(
            set_err(&mut c, "cache_mode", "maybe"),
            failed("cache_mode", "argument must be 'true' or 'false'")
        );
        assert_eq!(
            set_err(&mut c, "appendfsync", "bad"),
            failed(
                "appendfsync",
                "argument(s) must be one of the following: everysec, always, no"
            )
        );
        assert_eq!(
            set_err(&mut c, "loglevel", "bad"),
            failed(
                "loglevel",
                "argument(s) must be one of the following: debug, verbose, notice, warning"
            )
        );
        assert_eq!(
            set_err(&mut c, "shutdown-on-sigint", "zzz"),
            failed(
                "shutdown-on-sigint",
                "argument(s) must be one of the following: default, save, nosave, now, force"
            )
        );
        for v in ["abc", "100", "100 -1", "  ", "  3600   1  ", "0 0"] {
            assert_eq!(
                set_err(&mut c, "save", v),
                failed("save", "Invalid save parameters"),
                "{v:?}"
            );
        }
        assert_eq!(
            set_err(&mut c, "maxmemory-clients", "101%"),
            failed(
                "maxmemory-clients",
                "percentage argument must be less or equal to 100"
            )
        );
        assert_eq!(
            set_err(&mut c, "maxmemory-clients", "-1%"),
            failed(
                "maxmemory-clients",
                "argument must be a memory or percent value"
            )
        );
        assert_eq!(
            set_err(&mut c, "oom-score-adj-values", "1 2 3 4"),
            failed("oom-score-adj-values", "wrong number of arguments")
        );
        for v in ["1 2 x", "1 2 5000"] {
            assert_eq!(
                set_err(&mut c, "oom-score-adj-values", v),
                failed(
                    "oom-score-adj-values",
                    "Invalid oom-score-adj-values, elements must be between -2000 and 2000."
                )
            );
        }
        assert_eq!(
            set_err(&mut c, "latency-tracking-info-percentiles", "50 101"),
            failed(
                "latency-tracking-info-percentiles",
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
            )
        );
        assert_eq!(
            set_err(&mut c, "latency-tracking-info-percentiles", "x"),
            failed(
                "latency-tracking-info-percentiles",
                "Invalid latency-tracking-info-percentiles parameters"
            )
        );
        // Immutable and protected options: the name as given.
        for name in [
            "databases",
            "DATABASES",
            "dbnum",
            "daemonize",
            "port",
            "bind",
            "proactor_threads",
            "SLAVEOF",
            "cluster_mode",
        ] {
            assert_eq!(
                set_err(&mut c, name, "1"),
                failed(name, "can't set immutable config"),
                "{name}"
            );
        }
        for name in ["dir", "DIR", "dbfilename"] {
            assert_eq!(
                set_err(&mut c, name, "/tmp"),
                failed(name, "can't set protected config")
            );
        }
        // Nothing changed.
        assert_eq!(
            c.config_get(&[b"*"]),
            Config::defaults().config_get(&[b"*"])
        );
    }

    #[test]
    fn config_set_multi_is_atomic_and_checks_in_order() {
        let mut c = Config::defaults();
        let failed = |arg: &str, why: &str| {
            format!("ERR CONFIG SET failed (possibly related to argument '{arg}') - {why}")
        };
        // Checked against redis-server 7.0.15.
        type Pairs<'a> = &'a [(&'a [u8], &'a [u8])];
        let cases: &[(Pairs, String)] = &[
            (
                &[(b"maxmemory", b"1"), (b"maxmemory", b"2")],
                failed("maxmemory", "duplicate parameter"),
            ),
            (
                &[(b"maxmemory", b"1"), (b"MAXMEMORY", b"2")],
                failed("MAXMEMORY", "duplicate parameter"),
            ),
            (
                &[(b"maxmemory", b"1"), (b"foo", b"2")],
                "ERR Unknown option or number of arguments for CONFIG SET - 'foo'".into(),
            ),
            (
                &[(b"databases", b"1"), (b"foo", b"2")],
                failed("databases", "can't set immutable config"),
            ),
            (
                &[(b"foo", b"2"), (b"databases", b"1")],
                "ERR Unknown option or number of arguments for CONFIG SET - 'foo'".into(),
            ),
            (
                &[
                    (b"maxmemory", b"1"),
                    (b"maxmemory", b"2"),
                    (b"databases", b"1"),
                ],
                failed("maxmemory", "duplicate parameter"),
            ),
            (
                &[
                    (b"databases", b"1"),
                    (b"maxmemory", b"1"),
                    (b"maxmemory", b"2"),
                ],
                failed("databases", "can't set immutable config"),
            ),
            (
                &[(b"timeout", b"1"), (b"timeout", b"x")],
                failed("timeout", "duplicate parameter"),
            ),
            (
                &[(b"timeout", b"5"), (b"maxmemory-policy", b"bad")],
                failed(
                    "maxmemory-policy",
                    "argument(s) must be one of the following: volatile-lru, volatile-lfu, \
                     volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, \
                     noeviction",
                ),
            ),
        ];
        for (pairs, want) in cases {
            assert_eq!(&c.config_set_multi(pairs).unwrap_err(), want);
            assert_eq!(c.get_int("timeout"), 0);
            assert_eq!(c.get_bytes("maxmemory"), 0);
        }
        // An alias and its option are different parameters, as in Redis.
        c.config_set_multi(&[
            (b"lua-time-limit", b"100"),
            (b"busy-reply-threshold", b"200"),
        ])
        .unwrap();
        assert_eq!(c.get_int("busy-reply-threshold"), 200);
        c.config_set_multi(&[(b"timeout", b"5"), (b"maxmemory", b"1mb")])
            .unwrap();
        assert_eq!(c.get_int("timeout"), 5);
        assert_eq!(c.get_bytes("maxmemory"), 1 << 20);
    }

    #[test]
    fn protected_configs() {
        let mut c = parse(&["--enable-protected-configs", "yes"]);
        let tmp = std::env::temp_dir();
        set(&mut c, "dir", tmp.to_str().unwrap()).unwrap();
        assert_eq!(
            get(&c, "dir").unwrap(),
            std::fs::canonicalize(&tmp).unwrap().to_str().unwrap()
        );
        assert_eq!(
            set_err(&mut c, "dir", "/no/such/dir"),
            "ERR CONFIG SET failed (possibly related to argument 'dir') - No such file or directory"
        );
        let file = tmpfile("x");
        assert_eq!(
            set_err(&mut c, "dir", &file),
            "ERR CONFIG SET failed (possibly related to argument 'dir') - Not a directory"
        );
        set(&mut c, "dbfilename", "x.rdb").unwrap();
        assert_eq!(c.get_str("dbfilename"), "x.rdb");
        let mut l = parse(&["--enable_protected_configs=local"]);
        assert!(set(&mut l, "dbfilename", "y.rdb").is_err());
        l.config_set_multi_ex(&[(b"dbfilename", b"y.rdb")], true)
            .unwrap();
        assert_eq!(l.get_str("dbfilename"), "y.rdb");
    }

    #[test]
    fn inactive_options() {
        let c = parse(&[
            "--maxmemory=1gb",
            "--cache_mode",
            "--appendonly",
            "no",
            "--port=7000",
            "--cluster_mode=emulated",
            "--save",
            "",
        ]);
        assert_eq!(c.inactive_options_set(), vec!["maxmemory", "cache_mode"]);
        let c = parse(&["--cluster_mode=yes"]);
        assert_eq!(c.inactive_options_set(), vec!["cluster_mode"]);
    }

    #[test]
    fn dir_is_reported_absolute() {
        let tmp = std::env::temp_dir();
        let c = parse(&["--dir", tmp.to_str().unwrap()]);
        let abs = std::fs::canonicalize(&tmp).unwrap();
        assert_eq!(get(&c, "dir").unwrap(), abs.to_str().unwrap());
        let c = parse(&["--dir", "."]);
        assert_eq!(
            get(&c, "dir").unwrap(),
            std::env::current_dir().unwrap().to_str().unwrap()
        );
        let c = parse(&["--dir", "/no/such/dir/yet"]);
        assert_eq!(c.get_str("dir"), "/no/such/dir/yet");
    }

    #[test]
    fn programmatic_set() {
        let mut c = Config::defaults();
        c.set("port", "0").unwrap();
        assert_eq!(c.get_int("port"), 0);
        c.set("maxmemory", "2gb").unwrap();
        assert_eq!(c.get_bytes("maxmemory"), 2 << 30);
        assert!(c.set("port", "x").is_err());
        assert!(c.set("nosuch", "x").is_err());
    }
}
