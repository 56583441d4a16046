//! The slow log (Redis's slowlog.c): commands that took at least `slowlog-log-slower-than`
//! microseconds (negative: off), newest first, at most `slowlog-max-len` of them.
//!
//! A command's time is the one INFO commandstats accounts (measured where it ran, on whichever
//! shard thread; time spent blocked, as in WAIT, is not counted, as in Redis), so an entry is
//! pushed from the thread that measured it. Entries keep Redis's shape: at most 32 arguments
//! (the last one then says how many more there were), each at most 128 bytes (then `... (N
//! more bytes)`), passwords of AUTH and HELLO shown as `(redacted)`, the client's address and
//! name.
//!
//! Invariant: the command path pays one relaxed atomic load per command ([`SlowLog::is_slow`]);
//! the entry lock is taken only for a slow command and for SLOWLOG itself.

use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Redis's `SLOWLOG_ENTRY_MAX_ARGC` and `SLOWLOG_ENTRY_MAX_STRING`.
const MAX_ARGC: usize = 32;
const MAX_STRING: usize = 128;

pub struct SlowLog {
    threshold_us: AtomicI64,
    max_len: AtomicUsize,
    next_id: AtomicU64,
    entries: Mutex<VecDeque<SlowEntry>>,
}

/// One entry, as SLOWLOG GET shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlowEntry {
    pub id: u64,
    /// Unix seconds when it was logged.
    pub time: u64,
    pub usec: u64,
    pub args: Vec<Bytes>,
    pub peer: String,
    pub name: Vec<u8>,
}

impl SlowLog {
    pub fn new(threshold_us: i64, max_len: usize) -> SlowLog {
        SlowLog {
            threshold_us: AtomicI64::new(threshold_us),
            max_len: AtomicUsize::new(max_len),
            next_id: AtomicU64::new(0),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<SlowEntry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `slowlog-log-slower-than` and `slowlog-max-len` (trimming at once, where Redis
    /// trims after the next command: CONFIG SET's own).
    pub fn configure(&self, threshold_us: i64, max_len: usize) {
        self.threshold_us.store(threshold_us, Ordering::Relaxed);
        self.max_len.store(max_len, Ordering::Relaxed);
        self.lock().truncate(max_len);
    }

    /// Whether a command that took `usec` belongs in the log.
    #[inline]
    pub fn is_slow(&self, usec: u64) -> bool {
        let t = self.threshold_us.load(Ordering::Relaxed);
        t >= 0 && usec >= t as u64
    }

    /// Logs command `name` (the table's name, for redaction) sent as `args` by the client at
    /// `peer` named `client_name`.
    pub fn push(&self, name: &str, args: &[Bytes], usec: u64, peer: String, client_name: Vec<u8>) {
        let hidden = crate::monitor::redacted(name, args);
        let n = args.len().min(MAX_ARGC);
        let mut kept = Vec::with_capacity(n);
        for (j, a) in args[..n].iter().enumerate() {
            kept.push(if n != args.len() && j == n - 1 {
                Bytes::from(format!("... ({} more arguments)", args.len() - n + 1))
            } else if hidden.contains(&j) {
                Bytes::from_static(b"(redacted)")
            } else if a.len() > MAX_STRING {
                let mut s = a[..MAX_STRING].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes(),
                );
                Bytes::from(s)
            } else {
                // A copy: a view would keep the client's whole read buffer alive.
                Bytes::copy_from_slice(a)
            });
        }
        let time = crate::shard::now_ms() / 1000;
        let max = self.max_len.load(Ordering::Relaxed);
        let mut e = self.lock();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        e.push_front(SlowEntry {
            id,
            time,
            usec,
            args: kept,
            peer,
            name: client_name,
        });
        e.truncate(max);
    }

    /// The newest `count` entries (all for `None`).
    pub fn get(&self, count: Option<usize>) -> Vec<SlowEntry> {
        let e = self.lock();
        e.iter()
            .take(count.unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// SLOWLOG RESET: the entries go, the ids go on.
    pub fn reset(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn entries_are_newest_first_trimmed_and_shortened_as_redis() {
        let s = SlowLog::new(100, 2);
        assert!(!s.is_slow(99));
        assert!(s.is_slow(100));
        s.push(
            "set",
            &b(&["SET", "a", "1"]),
            150,
            "1.2.3.4:5".into(),
            b"me".to_vec(),
        );
        s.push(
            "get",
            &b(&["GET", "a"]),
            120,
            "1.2.3.4:5".into(),
            Vec::new(),
        );
        s.push(
            "get",
            &b(&["GET", "b"]),
            130,
            "1.2.3.4:5".into(),
            Vec::new(),
        );
        let got = s.get(None);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].id, got[1].id), (2, 1));
        assert_eq!(got[0].args, b(&["GET", "b"]));
        assert_eq!(s.get(Some(1)).len(), 1);

        let long = "x".repeat(130);
        let mut many: Vec<String> = vec!["DEL".into()];
        many.extend((0..40).map(|i| i.to_string()));
        many[1] = long;
        let many: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
        s.push("del", &b(&many), 200, "p:1".into(), Vec::new());
        let e = &s.get(Some(1))[0];
        assert_eq!(e.args.len(), 32);
        assert_eq!(e.args[1], format!("{}... (2 more bytes)", "x".repeat(128)));
        assert_eq!(e.args[31], "... (10 more arguments)");

        s.push(
            "auth",
            &b(&["AUTH", "u", "p"]),
            200,
            "p:1".into(),
            Vec::new(),
        );
        assert_eq!(
            s.get(Some(1))[0].args,
            b(&["AUTH", "(redacted)", "(redacted)"])
        );

        s.reset();
        assert!(s.is_empty());
        s.push("get", &b(&["GET", "a"]), 120, "p:1".into(), Vec::new());
        assert_eq!(s.get(None)[0].id, 5, "ids go on after RESET");
        s.configure(-1, 0);
        assert!(!s.is_slow(u64::MAX));
        assert!(s.is_empty());
    }
}
