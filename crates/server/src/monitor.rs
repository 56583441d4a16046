//! MONITOR: every command any connection runs, as one line to every monitoring connection.
//!
//! A command is fed after it ran (or was queued for its shard), from the thread of the
//! connection that sent it, in Redis 7.0's format: `+<sec>.<usec> [<db> <addr>] "arg" ...`,
//! each argument quoted as `sdscatrepr` quotes it, passwords of AUTH and HELLO ... AUTH shown
//! as `"(redacted)"`. Commands Redis does not show (flagged `admin` or `skip_monitor`: CONFIG,
//! DEBUG, CLIENT LIST/KILL, SHUTDOWN, MONITOR itself) and commands rejected before they ran
//! (unknown, wrong arity, NOAUTH) are not fed. Lines from one connection arrive in the order
//! it sent them; lines of different connections interleave as their threads ran them.
//!
//! Lines go to each monitor's push sink (`crate::push`), which is bounded: a monitor that does
//! not read is closed once its pending lines pass its limit, where Redis's default
//! (`normal 0 0 0`) lets it grow without bound (docs/compatibility.md).
//!
//! Invariant: with no monitor connected, the whole cost on the command path is one relaxed
//! atomic load ([`Monitors::active`]); the registry lock is never held across an `.await`.

use crate::push::PushSink;
use bytes::Bytes;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What Redis shows in place of a redacted argument.
const REDACTED: &[u8] = b"(redacted)";

/// The monitors of the whole server.
#[derive(Default)]
pub struct Monitors {
    active: AtomicUsize,
    sinks: Mutex<Vec<Arc<PushSink>>>,
}

impl Monitors {
    /// Whether any monitor is connected: the per-command check.
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed) != 0
    }

    pub fn count(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Registers `sink`, a connection's push sink, as a monitor (`limit`: the most pending
    /// output it may hold).
    pub fn add(&self, sink: Arc<PushSink>, limit: usize) {
        sink.set_limit(limit);
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        sinks.push(sink);
        self.active.store(sinks.len(), Ordering::Relaxed);
    }

    /// Unregisters the monitor of connection `client_id` (RESET, close, CLIENT KILL).
    pub fn remove(&self, client_id: u64) {
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        sinks.retain(|s| s.client_id() != client_id);
        self.active.store(sinks.len(), Ordering::Relaxed);
    }

    /// Appends one formatted line to every monitor and wakes them.
    pub fn feed(&self, line: &[u8]) {
        let sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        for s in sinks.iter() {
            s.push(line);
        }
    }
}

/// The positions of `args` whose value a monitor (or the slow log) must not show: the password (and user) of
/// AUTH, the user and password of each `AUTH u p` of HELLO. As Redis, only what the command's
/// own parsing reached: `AUTH a b c` (a syntax error) and a HELLO whose version is invalid
/// show everything, and HELLO's options are walked up to the first one it rejects.
pub fn redacted(name: &str, args: &[Bytes]) -> Vec<usize> {
    match name {
        "auth" if args.len() <= 3 => (1..args.len()).collect(),
        "hello" if args.len() >= 2 => {
            if !matches!(crate::commands::parse_i64(&args[1]), Some(2..=3)) {
                return Vec::new();
            }
            let mut out = Vec::new();
            let mut i = 2;
            while i < args.len() {
                let more = args.len() - 1 - i;
                let opt = crate::commands::c_str(&args[i]);
                if opt.eq_ignore_ascii_case(b"auth") && more >= 2 {
                    out.extend([i + 1, i + 2]);
                    i += 3;
                } else if opt.eq_ignore_ascii_case(b"setname") && more >= 1 {
                    i += 2;
                } else {
                    break;
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

/// Redis's `sdscatrepr`: a double-quoted string, `\\ \" \n \r \t \a \b` escaped, printable
/// ASCII as is, every other byte as `\xHH`.
pub fn push_repr(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'x',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 15) as usize],
                ]);
            }
        }
    }
    out.push(b'"');
}

/// One monitor line (with its `+` and CRLF) for command `name` (the table's lowercase name,
/// `client|setname` for a subcommand) sent as `args` by the client at `addr`, run in `db`,
/// at `unix_us` microseconds since the epoch.
pub fn format_line(unix_us: u64, db: usize, addr: &str, name: &str, args: &[Bytes]) -> Vec<u8> {
    use std::io::Write;
    let hidden = redacted(name, args);
    let mut line =
        Vec::with_capacity(48 + addr.len() + args.iter().map(|a| a.len() + 3).sum::<usize>());
    let _ = write!(
        line,
        "+{}.{:06} [{} {}] ",
        unix_us / 1_000_000,
        unix_us % 1_000_000,
        db,
        addr
    );
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            line.push(b' ');
        }
        push_repr(&mut line, if hidden.contains(&i) { REDACTED } else { a });
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// Microseconds since the Unix epoch (the monitor line's timestamp, `gettimeofday` in Redis).
pub fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&[u8]]) -> Vec<Bytes> {
        v.iter().map(|a| Bytes::copy_from_slice(a)).collect()
    }

    #[test]
    fn lines_quote_arguments_as_sdscatrepr() {
        let l = format_line(
            1_796_307_986_362_300,
            5,
            "127.0.0.1:52436",
            "echo",
            &args(&[b"echo", b"a\x01\n\"b\xff\\\t\r\x07\x08 ~"]),
        );
        assert_eq!(
            l,
            b"+1796307986.362300 [5 127.0.0.1:52436] \"echo\" \"a\\x01\\n\\\"b\\xff\\\\\\t\\r\\a\\b ~\"\r\n"
        );
        let l = format_line(7, 0, "[::1]:9", "ping", &args(&[b"PING"]));
        assert_eq!(l, b"+0.000007 [0 [::1]:9] \"PING\"\r\n");
    }

    #[test]
    fn passwords_are_redacted_as_far_as_the_command_parsed() {
        let show = |name: &str, a: &[&[u8]]| {
            String::from_utf8(format_line(0, 0, "a:1", name, &args(a))).unwrap()
        };
        assert!(show("auth", &[b"auth", b"x"]).ends_with(" \"auth\" \"(redacted)\"\r\n"));
        assert!(show("auth", &[b"auth", b"u", b"p"])
            .ends_with(" \"auth\" \"(redacted)\" \"(redacted)\"\r\n"));
        // A syntax error before Redis's redaction: shown as sent.
        assert!(show("auth", &[b"auth", b"a", b"b", b"c"]).ends_with("\"a\" \"b\" \"c\"\r\n"));
        assert!(show(
            "hello",
            &[b"hello", b"3", b"AUTH", b"u", b"p", b"setname", b"n"]
        )
        .ends_with("\"3\" \"AUTH\" \"(redacted)\" \"(redacted)\" \"setname\" \"n\"\r\n"));
        assert!(show("hello", &[b"hello", b"4", b"AUTH", b"u", b"p"]).ends_with("\"u\" \"p\"\r\n"));
        // An AUTH short of its password is an unknown option: nothing after it is redacted.
        assert!(
            show("hello", &[b"hello", b"2", b"bad", b"AUTH", b"u", b"p"])
                .ends_with("\"u\" \"p\"\r\n")
        );
        assert!(show("hello", &[b"hello", b"2", b"auth", b"u"]).ends_with("\"auth\" \"u\"\r\n"));
    }

    #[test]
    fn a_monitor_that_does_not_read_is_cut_off_at_its_limit() {
        use crate::push::Overflow;
        let m = Monitors::default();
        assert!(!m.active());
        let s = Arc::new(PushSink::new(7, std::sync::Weak::new(), 0));
        m.add(s.clone(), 10);
        assert!(m.active());
        m.feed(b"12345");
        let mut out = Vec::new();
        assert_eq!(s.drain_into(&mut out), Ok(()));
        assert_eq!(out, b"12345");
        m.feed(b"123456");
        m.feed(b"12345");
        assert_eq!(s.drain_into(&mut out), Err(Overflow { limit: 10 }));
        m.remove(7);
        assert!(!m.active());
        m.feed(b"x");
    }
}
