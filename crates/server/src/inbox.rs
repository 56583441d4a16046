//! A shard's inbox: how other threads hand work to a shard.
//!
//! Senders push under a short mutex; the shard takes everything queued at once, swapping
//! buffers so neither side allocates in steady state. The shard drains at its own drain
//! points: its connection tasks after each pipeline batch, and a small task woken by the
//! inbox's eventfd. The cross-thread wake (an eventfd write, then a context switch on the
//! other core) is paid only when the shard thread is parked in epoll: a busy shard picks the
//! message up at its next drain point for free. (tokio's channels wake the receiving runtime
//! on every send that finds the receiver task waiting, and a current-thread runtime's wake is
//! an eventfd write whether it sleeps or not.)
//!
//! Invariant (no lost wake-up): a sender pushes and sets `pending` before it reads `parked`;
//! the shard thread sets `parked` before it reads `pending` and sleeps (`before_park`, run by
//! tokio right before it parks). All four accesses are SeqCst, so at least one side sees the
//! other: the sender wakes the parked thread, or the thread sees the message and wakes itself
//! instead of sleeping.

use crate::shard::ShardMsg;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// One shard's queue of messages from other threads.
pub struct Inbox {
    queue: Mutex<Queue>,
    /// Something is queued (a hint for the cheap check at drain points; exact under the lock).
    pending: AtomicBool,
    /// The shard thread is about to sleep or sleeping: a sender must wake it.
    parked: AtomicBool,
    /// Non-blocking eventfd the shard thread's epoll watches (edge-triggered, so it is never
    /// read: every write is a new edge).
    eventfd: File,
}

struct Queue {
    msgs: Vec<ShardMsg>,
    /// The shard has stopped: sends fail, so callers answer "shard unavailable" instead of
    /// waiting for a reply that never comes.
    closed: bool,
}

impl Inbox {
    pub fn new() -> std::io::Result<Inbox> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new fd we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Inbox {
            queue: Mutex::new(Queue {
                msgs: Vec::new(),
                closed: false,
            }),
            pending: AtomicBool::new(false),
            parked: AtomicBool::new(false),
            eventfd: File::from(fd),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the Vec inconsistent.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `msg` for the shard; gives it back if the shard has stopped.
    pub fn send(&self, msg: ShardMsg) -> Result<(), ShardMsg> {
        {
            let mut q = self.lock();
            if q.closed {
                return Err(msg);
            }
            q.msgs.push(msg);
            self.pending.store(true, Ordering::SeqCst);
        }
        if self.parked.load(Ordering::SeqCst) {
            self.wake();
        }
        Ok(())
    }

    /// Wakes the shard thread if it is parked (once, however many senders race here).
    fn wake(&self) {
        if self.parked.swap(false, Ordering::SeqCst) {
            // Only fails if the counter would overflow (2^64 writes), which cannot happen.
            let _ = (&self.eventfd).write(&1u64.to_ne_bytes());
        }
    }

    /// Whether anything may be queued (cheap; a drain point's first check).
    #[inline]
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// Moves every queued message into `into` (expected empty; its buffer is kept by the
    /// queue, so the two buffers swap back and forth without allocating).
    pub fn take(&self, into: &mut Vec<ShardMsg>) {
        let mut q = self.lock();
        std::mem::swap(&mut q.msgs, into);
        self.pending.store(false, Ordering::SeqCst);
    }

    /// Runs on the shard thread right before tokio parks it.
    pub fn before_park(&self) {
        self.parked.store(true, Ordering::SeqCst);
        if self.pending.load(Ordering::SeqCst) {
            // Work arrived while we were busy and nobody woke us: wake ourselves, so the park
            // returns at once and the inbox task drains.
            self.wake();
        }
    }

    /// Runs on the shard thread right after it wakes.
    pub fn after_unpark(&self) {
        self.parked.store(false, Ordering::SeqCst);
    }

    /// Stops the inbox: later sends fail; returns what was still queued (dropping it drops
    /// the reply channels inside, so waiting callers get an error instead of hanging).
    pub fn close(&self) -> Vec<ShardMsg> {
        let mut q = self.lock();
        q.closed = true;
        self.pending.store(false, Ordering::SeqCst);
        std::mem::take(&mut q.msgs)
    }

    /// The eventfd, for registering with the shard thread's reactor.
    pub fn eventfd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> ShardMsg {
        ShardMsg::Run(Box::new(|_| {}))
    }

    fn eventfd_count(inbox: &Inbox) -> u64 {
        let mut b = [0u8; 8];
        match std::io::Read::read(&mut (&inbox.eventfd), &mut b) {
            Ok(8) => u64::from_ne_bytes(b),
            _ => 0,
        }
    }

    #[test]
    fn a_busy_shard_is_not_woken_and_a_parked_one_is_woken_once() {
        let inbox = Inbox::new().unwrap();
        assert!(!inbox.has_pending());
        assert!(inbox.send(job()).is_ok());
        assert!(inbox.has_pending());
        assert_eq!(eventfd_count(&inbox), 0, "busy shard: no wake");
        let mut got = Vec::new();
        inbox.take(&mut got);
        assert_eq!(got.len(), 1);
        assert!(!inbox.has_pending());

        inbox.before_park();
        assert_eq!(eventfd_count(&inbox), 0, "nothing queued: sleep");
        assert!(inbox.send(job()).is_ok());
        assert!(inbox.send(job()).is_ok());
        assert_eq!(eventfd_count(&inbox), 1, "parked: one wake for two sends");
        inbox.after_unpark();
        got.clear();
        inbox.take(&mut got);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn parking_with_work_queued_wakes_itself() {
        let inbox = Inbox::new().unwrap();
        assert!(inbox.send(job()).is_ok());
        inbox.before_park();
        assert_eq!(eventfd_count(&inbox), 1);
    }

    #[test]
    fn a_closed_inbox_refuses_and_hands_back_what_was_queued() {
        let inbox = Inbox::new().unwrap();
        assert!(inbox.send(job()).is_ok());
        assert_eq!(inbox.close().len(), 1);
        assert!(inbox.send(job()).is_err());
        assert!(!inbox.has_pending());
    }

    #[test]
    fn racing_senders_and_a_parking_receiver_lose_no_wake_up() {
        // The receiver takes what is queued, parks and sleeps on the eventfd (as the shard
        // thread sleeps in epoll) while a sender keeps sending. A lost wake-up shows as a
        // sleep that times out with messages queued.
        let inbox = std::sync::Arc::new(Inbox::new().unwrap());
        let rounds = 20_000;
        let s = inbox.clone();
        let sender = std::thread::spawn(move || {
            for i in 0..rounds {
                assert!(s.send(job()).is_ok());
                if i % 64 == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut seen = 0;
        let mut buf = Vec::new();
        while seen < rounds {
            inbox.take(&mut buf);
            seen += buf.len();
            buf.clear();
            if seen == rounds {
                break;
            }
            inbox.before_park();
            let mut pfd = libc::pollfd {
                fd: inbox.eventfd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let woke = unsafe { libc::poll(&mut pfd, 1, 2000) } > 0;
            eventfd_count(&inbox);
            inbox.after_unpark();
            assert!(
                woke || inbox.lock().msgs.is_empty(),
                "slept through queued work: lost wake-up"
            );
        }
        sender.join().unwrap();
        assert_eq!(seen, rounds);
    }
}
