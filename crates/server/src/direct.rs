//! The report of a direct write: a shard that wrote a batch's replies to another thread's
//! connection socket (`Conn::send_direct`) tells that connection how it went.
//!
//! Why not a oneshot channel: its send wakes the receiving task, and a wake from another
//! thread is an eventfd write plus an epoll return on the connection's thread. At `-P 1` on
//! two shards that was one cross-thread wake for every other request, the cost direct replies
//! exist to avoid. Here the common outcome, every byte written, is a store the connection
//! reads when it next looks (its next request can only come after the client read the reply);
//! only outcomes that need the connection to act (bytes left to write, a dropped job) or a
//! connection that is waiting for the outcome get a wake.
//!
//! Invariant: the outcome is set once, before any wake, and the waiter re-checks it after
//! registering (SeqCst on `state` and `wake_on_written`, so the shard's check of the flag and
//! the connection's check of the state cannot both miss).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

const PENDING: u8 = 0;
const WRITTEN: u8 = 1;
const UNWRITTEN: u8 = 2;
const DROPPED: u8 = 3;

/// How a direct write ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every reply byte went to the socket.
    Written,
    /// The socket took only `buf[..from]` (its buffer was full): the connection writes the
    /// rest before anything else.
    Unwritten(Vec<u8>, usize),
    /// The job was dropped unrun (the shard is shutting down): the replies are lost.
    Dropped,
}

/// The shared slot between the connection (waiter) and the shard (completer).
#[derive(Default)]
pub struct Report {
    state: AtomicU8,
    /// The waiter wants a wake for `Written` too (it has output to write after this one).
    wake_on_written: AtomicBool,
    waker: Mutex<Option<Waker>>,
    rest: Mutex<Option<(Vec<u8>, usize)>>,
}

/// The shard's end: completes the report once; dropped uncompleted, it reports `Dropped`.
pub struct Completer(Arc<Report>);

/// The connection's end.
pub struct Waiter(Arc<Report>);

/// A report for one direct write.
pub fn report() -> (Completer, Waiter) {
    let r = Arc::new(Report::default());
    (Completer(r.clone()), Waiter(r))
}

impl Completer {
    /// Sets the outcome and wakes the connection if it must act or is waiting.
    pub fn complete(self, outcome: Outcome) {
        self.set(outcome);
    }

    fn set(&self, outcome: Outcome) {
        let r = &*self.0;
        if r.state.load(Ordering::Relaxed) != PENDING {
            return;
        }
        let state = match outcome {
            Outcome::Written => WRITTEN,
            Outcome::Unwritten(buf, from) => {
                *r.rest.lock().unwrap_or_else(|e| e.into_inner()) = Some((buf, from));
                UNWRITTEN
            }
            Outcome::Dropped => DROPPED,
        };
        r.state.store(state, Ordering::SeqCst);
        if state != WRITTEN || r.wake_on_written.load(Ordering::SeqCst) {
            let w = r.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(w) = w {
                w.wake();
            }
        }
    }
}

impl Drop for Completer {
    fn drop(&mut self) {
        self.set(Outcome::Dropped);
    }
}

impl Waiter {
    /// The outcome, if the shard has set it.
    pub fn try_take(&self) -> Option<Outcome> {
        let r = &*self.0;
        match r.state.load(Ordering::SeqCst) {
            PENDING => None,
            WRITTEN => Some(Outcome::Written),
            UNWRITTEN => {
                let rest = r.rest.lock().unwrap_or_else(|e| e.into_inner()).take();
                Some(match rest {
                    Some((buf, from)) => Outcome::Unwritten(buf, from),
                    None => Outcome::Written,
                })
            }
            _ => Some(Outcome::Dropped),
        }
    }

    /// Waits for the outcome. With `any` false the connection is woken only for outcomes it
    /// must act on; a `Written` is then seen at the next look (`try_take`, or another wait).
    pub fn wait(&self, any: bool) -> Wait<'_> {
        Wait { waiter: self, any }
    }
}

/// The future of `Waiter::wait`.
pub struct Wait<'a> {
    waiter: &'a Waiter,
    any: bool,
}

impl Future for Wait<'_> {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        if let Some(o) = self.waiter.try_take() {
            return Poll::Ready(o);
        }
        let r = &*self.waiter.0;
        {
            let mut w = r.waker.lock().unwrap_or_else(|e| e.into_inner());
            match w.as_ref() {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => *w = Some(cx.waker().clone()),
            }
        }
        if self.any {
            r.wake_on_written.store(true, Ordering::SeqCst);
        }
        match self.waiter.try_take() {
            Some(o) => Poll::Ready(o),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_once(w: &Waiter, any: bool, count: &Arc<Count>) -> Poll<Outcome> {
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut f = w.wait(any);
        Pin::new(&mut f).poll(&mut cx)
    }

    /// A report whose waiter has polled once (with `any`) and is now pending, and its wakes.
    fn pending_report(any: bool) -> (Completer, Waiter, Arc<Count>) {
        let (c, w) = report();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        assert!(poll_once(&w, any, &count).is_pending());
        (c, w, count)
    }

    fn wakes(count: &Count) -> usize {
        count.0.load(Ordering::SeqCst)
    }

    #[test]
    fn written_does_not_wake_a_waiter_that_only_wants_the_rest() {
        let (c, w, count) = pending_report(false);
        c.complete(Outcome::Written);
        assert_eq!(wakes(&count), 0);
        assert_eq!(w.try_take(), Some(Outcome::Written));
    }

    #[test]
    fn written_wakes_a_waiter_that_waits_for_any_outcome() {
        let (c, w, count) = pending_report(true);
        c.complete(Outcome::Written);
        assert_eq!(wakes(&count), 1);
        assert_eq!(poll_once(&w, true, &count), Poll::Ready(Outcome::Written));
    }

    #[test]
    fn rest_to_write_wakes_and_is_handed_over() {
        let (c, w, count) = pending_report(false);
        c.complete(Outcome::Unwritten(b"abcdef".to_vec(), 2));
        assert_eq!(wakes(&count), 1);
        assert_eq!(
            poll_once(&w, false, &count),
            Poll::Ready(Outcome::Unwritten(b"abcdef".to_vec(), 2))
        );
    }

    #[test]
    fn a_dropped_job_reports_dropped_and_wakes() {
        let (c, w, count) = pending_report(false);
        drop(c);
        assert_eq!(wakes(&count), 1);
        assert_eq!(w.try_take(), Some(Outcome::Dropped));
    }

    #[test]
    fn completed_before_the_wait_is_ready_at_once() {
        let (c, w) = report();
        c.complete(Outcome::Written);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        assert_eq!(poll_once(&w, false, &count), Poll::Ready(Outcome::Written));
    }

    #[test]
    fn completion_from_another_thread_reaches_an_async_waiter() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let (c, w) = report();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            c.complete(Outcome::Written);
        });
        let got = rt.block_on(w.wait(true));
        assert_eq!(got, Outcome::Written);
        t.join().expect("completer thread");
    }
}
