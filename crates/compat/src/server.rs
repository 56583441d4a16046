//! `ServerProc`: a redis-server or damselfly child process on a free 127.0.0.1 port, killed
//! (and reaped) on drop.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use crate::conn::RespConn;

/// The message when the oracle is missing.
pub const REDIS_MISSING: &str = "redis-server not found: run scripts/test.sh, which installs it";

/// Which server a `ServerProc` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// The oracle: redis-server from PATH.
    Redis,
    /// The server under test (a redis-server too when `COMPAT_SELFTEST=1`).
    Damselfly,
}

/// A running server process. Dropping it kills the process and waits for it.
pub struct ServerProc {
    child: Child,
    port: u16,
    log_path: PathBuf,
    label: String,
    keep_log: bool,
    kind: ServerKind,
    extra: Vec<String>,
    work_dir: PathBuf,
}

/// True when `COMPAT_SELFTEST=1`: the "damselfly" side is a redis-server as well.
pub fn selftest() -> bool {
    std::env::var("COMPAT_SELFTEST")
        .map(|v| v == "1")
        .unwrap_or(false)
}

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The redis-server binary, or a panic with `REDIS_MISSING`.
pub fn redis_server_bin() -> PathBuf {
    find_on_path("redis-server").unwrap_or_else(|| panic!("{REDIS_MISSING}"))
}

/// The damselfly binary: `$DAMSELFLY_BIN`, else `target/release/damselfly`, else
/// `target/debug/damselfly` under the workspace root.
pub fn damselfly_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("DAMSELFLY_BIN") {
        return PathBuf::from(p);
    }
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    for profile in ["release", "debug"] {
        let p = target.join(profile).join("damselfly");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "damselfly binary not found (looked at $DAMSELFLY_BIN, {0}/release/damselfly, {0}/debug/damselfly): \
         build it first with `cargo build --release -p damselfly`, or set COMPAT_SELFTEST=1 to run redis against itself",
        target.display()
    );
}

/// A port that is free right now; ports are handed out from a per-process counter so that
/// parallel tests of one process never race for the same port.
fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        20000 + (std::process::id() % 20000) as u16,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let mut p = NEXT.fetch_add(1, Ordering::SeqCst);
        if p >= 60000 {
            NEXT.store(20000, Ordering::SeqCst);
            p = 20000;
        }
        // The port and its cluster-bus neighbour (+10000) must both be free.
        if p < 55535 && TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

impl ServerProc {
    /// Starts the oracle: `redis-server --port P --bind 127.0.0.1 --save "" --appendonly no
    /// --daemonize no --enable-debug-command local --dir <private temp dir>` plus `extra` (DEBUG is
    /// enabled so that `DEBUG SLEEP 0` can be compared; the private directory, also the working
    /// directory of either kind of server and removed on drop, keeps stray files such as
    /// dump.rdb out of the crate and away from other servers).
    pub fn redis(extra: &[&str]) -> ServerProc {
        Self::start(ServerKind::Redis, extra)
    }

    /// Starts the server under test (a redis-server when `COMPAT_SELFTEST=1`).
    pub fn damselfly(extra: &[&str]) -> ServerProc {
        Self::start(ServerKind::Damselfly, extra)
    }

    /// Starts a server of `kind`, retrying on another port if the first one was taken.
    pub fn start(kind: ServerKind, extra: &[&str]) -> ServerProc {
        let mut last_err = String::new();
        for _ in 0..3 {
            match Self::try_start(kind, extra) {
                Ok(s) => return s,
                Err(e) => last_err = e,
            }
        }
        panic!("{last_err}");
    }

    fn try_start(kind: ServerKind, extra: &[&str]) -> Result<ServerProc, String> {
        let port = free_port();
        let as_redis = kind == ServerKind::Redis || selftest();
        let (bin, label) = if as_redis {
            let label = if kind == ServerKind::Redis {
                "redis"
            } else {
                "damselfly(selftest: redis)"
            };
            (redis_server_bin(), label.to_string())
        } else {
            (damselfly_bin(), "damselfly".to_string())
        };
        let tag = if kind == ServerKind::Redis {
            "redis"
        } else {
            "damselfly"
        };
        let log_path = std::env::temp_dir().join(format!(
            "damselfly-compat-{tag}-{}-{port}.log",
            std::process::id()
        ));
        let log = File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&bin);
        let port_s = port.to_string();
        let work_dir = std::env::temp_dir().join(format!(
            "damselfly-compat-{tag}-{}-{port}.d",
            std::process::id()
        ));
        std::fs::create_dir_all(&work_dir)
            .map_err(|e| format!("cannot create {}: {e}", work_dir.display()))?;
        if as_redis {
            let dir = &work_dir;
            cmd.args([
                "--port",
                &port_s,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]);
            cmd.args(["--daemonize", "no", "--enable-debug-command", "local"]);
            cmd.arg("--dir").arg(dir);
        } else {
            cmd.args([
                "--port",
                &port_s,
                "--bind",
                "127.0.0.1",
                "--logtostderr",
                "--proactor_threads",
                "2",
            ]);
        }
        cmd.current_dir(&work_dir);
        cmd.args(extra);
        if kind == ServerKind::Damselfly {
            if let Ok(more) = std::env::var("COMPAT_DUT_ARGS") {
                cmd.args(more.split_whitespace());
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut server = ServerProc {
            child,
            port,
            log_path,
            label,
            keep_log: false,
            kind,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            work_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "{} ({}) exited during startup with {status}; log {}:\n{}",
                    server.label,
                    bin.display(),
                    server.log_path.display(),
                    server.log()
                ));
            }
            if let Ok(mut c) = RespConn::connect(server.addr()) {
                let _ = c.set_timeout(Duration::from_millis(500));
                if let Ok(r) = c.call(&["PING"]) {
                    if r == b"+PONG\r\n" {
                        // A port stolen by another process would make our child exit: check.
                        std::thread::sleep(Duration::from_millis(20));
                        if let Ok(None) = server.child.try_wait() {
                            return Ok(server);
                        }
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} ({}) did not answer PING on port {port} within 10s; log {}:\n{}",
                    server.label,
                    bin.display(),
                    server.log_path.display(),
                    server.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The 127.0.0.1 address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// "redis", "damselfly" or "damselfly(selftest: redis)".
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Where the child's stdout and stderr go.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The log's contents so far (its last 8 KiB).
    pub fn log(&self) -> String {
        let s = std::fs::read(&self.log_path).unwrap_or_default();
        let from = s.len().saturating_sub(8192);
        String::from_utf8_lossy(&s[from..]).into_owned()
    }

    /// Keeps the log file after drop (it is deleted on a clean drop otherwise).
    pub fn keep_log(&mut self) {
        self.keep_log = true;
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `None` while the process runs; once it has exited, a description with the end of its log.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(self.exit_report(&status.to_string())),
            Err(e) => Some(self.exit_report(&format!("unknown status ({e})"))),
        }
    }

    fn exit_report(&self, status: &str) -> String {
        let log = self.log();
        let tail = &log[log.len().saturating_sub(2048)..];
        format!(
            "{} exited with {status}; log {} ends with:\n{tail}",
            self.label,
            self.log_path.display()
        )
    }

    /// Replaces this process by a fresh one of the same kind and arguments (on a new port). The
    /// old log is kept.
    pub fn restart(&mut self) {
        self.keep_log = true;
        let extra: Vec<&str> = self.extra.iter().map(|s| s.as_str()).collect();
        *self = Self::start(self.kind, &extra);
    }

    /// A new connection (panics with the log on failure).
    pub fn connect(&self) -> RespConn {
        RespConn::connect(self.addr()).unwrap_or_else(|e| {
            panic!(
                "cannot connect to {} on {}: {e}; log {}:\n{}",
                self.label,
                self.addr(),
                self.log_path.display(),
                self.log()
            )
        })
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.work_dir);
        if !std::thread::panicking() && !self.keep_log {
            let _ = std::fs::remove_file(&self.log_path);
        } else {
            eprintln!("{} log kept at {}", self.label, self.log_path.display());
        }
    }
}
