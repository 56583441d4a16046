//! A connection's push sink: output that other threads produce for a connection outside its
//! request/reply flow (MONITOR lines, client-side caching invalidations), written by the
//! connection's own task.
//!
//! Every connection has one (`ClientShared::pushes`): a byte buffer any thread appends to and
//! a `Notify` that wakes the connection task to write it out. It is bounded: once its pending
//! bytes pass its limit (the `normal` class hard limit of `client-output-buffer-limit` when
//! set, else [`DEFAULT_LIMIT`]) the connection is closed, where Redis's default
//! (`normal 0 0 0`) lets it grow without bound (docs/compatibility.md).
//!
//! Invariant: the buffer's lock is held only to append or take bytes, never across an
//! `.await` or another lock.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, Weak};

/// Pending output a connection may hold when `client-output-buffer-limit normal` sets none.
pub const DEFAULT_LIMIT: usize = 64 << 20;

pub struct PushSink {
    client_id: u64,
    limit: AtomicUsize,
    /// The soft limit: closed once the pending bytes stay over it for `soft_secs` (0: none).
    soft: AtomicUsize,
    soft_secs: std::sync::atomic::AtomicU64,
    /// The connection, closed at once on overflow: its task may be blocked writing to a
    /// client that does not read, and would not look at the sink again.
    client: Weak<crate::globals::ClientShared>,
    /// Something is buffered (the connection's cheap check between commands).
    pending: AtomicBool,
    buf: Mutex<SinkBuf>,
    notify: tokio::sync::Notify,
}

#[derive(Default)]
struct SinkBuf {
    data: Vec<u8>,
    overflow: bool,
    /// Since when the pending bytes are over the soft limit.
    soft_since: Option<std::time::Instant>,
}

/// A connection's pending pushes went past its limit; the connection is to be closed.
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow {
    pub limit: usize,
}

/// The hard limit for a sink under `config`.
pub fn limit_of(config: &crate::config::Config) -> usize {
    limits_of(config, "normal").0
}

/// (hard, soft, soft seconds) of `client-output-buffer-limit` class `class`; a hard limit of
/// 0 is [`DEFAULT_LIMIT`].
pub fn limits_of(config: &crate::config::Config, class: &str) -> (usize, usize, u64) {
    let (hard, soft, secs) = config
        .client_output_buffer_limit(class)
        .map(|(h, s, t)| (h as usize, s as usize, t))
        .unwrap_or((0, 0, 0));
    (if hard == 0 { DEFAULT_LIMIT } else { hard }, soft, secs)
}

impl PushSink {
    pub fn new(client_id: u64, client: Weak<crate::globals::ClientShared>, limit: usize) -> Self {
        PushSink {
            client_id,
            limit: AtomicUsize::new(if limit == 0 { DEFAULT_LIMIT } else { limit }),
            soft: AtomicUsize::new(0),
            soft_secs: std::sync::atomic::AtomicU64::new(0),
            client,
            pending: AtomicBool::new(false),
            buf: Mutex::new(SinkBuf::default()),
            notify: tokio::sync::Notify::new(),
        }
    }

    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Sets the hard and soft limits (Redis's `client-output-buffer-limit` of the client's
    /// class).
    pub fn set_limits(&self, (hard, soft, secs): (usize, usize, u64)) {
        self.limit.store(hard, Ordering::Relaxed);
        self.soft.store(soft, Ordering::Relaxed);
        self.soft_secs.store(secs, Ordering::Relaxed);
    }

    /// Appends `bytes` (one or more whole RESP values) and wakes the connection.
    pub fn push(&self, bytes: &[u8]) {
        {
            let mut b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
            if b.overflow {
                return;
            }
            let limit = self.limit.load(Ordering::Relaxed);
            let soft = self.soft.load(Ordering::Relaxed);
            let mut over = b.data.len() + bytes.len() > limit;
            if !over && soft > 0 && b.data.len() + bytes.len() > soft {
                let now = std::time::Instant::now();
                let since = *b.soft_since.get_or_insert(now);
                over = now.duration_since(since).as_secs()
                    >= self.soft_secs.load(Ordering::Relaxed)
                    && since != now;
            } else if soft > 0 {
                b.soft_since = None;
            }
            if over {
                b.overflow = true;
                b.data = Vec::new();
                if let Some(c) = self.client.upgrade() {
                    crate::log::info(&format!(
                        "Client id={} addr={} closed for overcoming of output buffer limits: pending pushes past {} bytes",
                        c.id, c.addr, limit
                    ));
                    c.close();
                }
            } else {
                b.data.extend_from_slice(bytes);
            }
            self.pending.store(true, Ordering::Release);
        }
        self.notify.notify_one();
    }

    /// Whether anything was pushed since the last drain (a hint; exact under the lock).
    #[inline]
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Moves the pending bytes to the end of `out`.
    pub fn drain_into(&self, out: &mut Vec<u8>) -> Result<(), Overflow> {
        let mut b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        self.pending.store(false, Ordering::Relaxed);
        b.soft_since = None;
        if b.overflow {
            return Err(Overflow {
                limit: self.limit.load(Ordering::Relaxed),
            });
        }
        if out.is_empty() {
            std::mem::swap(out, &mut b.data);
        } else {
            out.append(&mut b.data);
        }
        Ok(())
    }

    /// Resolves when bytes were pushed since the last call (a push before the wait counts).
    pub async fn wait(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_past_its_limit_overflows_and_drops_what_it_held() {
        let s = PushSink::new(1, Weak::new(), 10);
        assert!(!s.has_pending());
        s.push(b"12345");
        assert!(s.has_pending());
        let mut out = Vec::new();
        assert_eq!(s.drain_into(&mut out), Ok(()));
        assert_eq!(out, b"12345");
        assert!(!s.has_pending());
        s.push(b"123456");
        s.push(b"12345");
        assert_eq!(s.drain_into(&mut out), Err(Overflow { limit: 10 }));
    }

    #[test]
    fn a_sink_over_its_soft_limit_for_long_enough_overflows() {
        let s = PushSink::new(1, Weak::new(), 0);
        s.set_limits((100, 4, 0));
        s.push(b"123");
        s.push(b"45");
        let mut out = Vec::new();
        assert_eq!(
            s.drain_into(&mut out),
            Ok(()),
            "first time over: the clock starts"
        );
        s.push(b"12345");
        std::thread::sleep(std::time::Duration::from_millis(2));
        s.push(b"x");
        assert!(s.drain_into(&mut out).is_err(), "still over: closed");
        let s = PushSink::new(1, Weak::new(), 0);
        s.set_limits((100, 4, 3600));
        for _ in 0..10 {
            s.push(b"12345");
        }
        assert_eq!(s.drain_into(&mut out), Ok(()), "over, but not for an hour");
    }
}
