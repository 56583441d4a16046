//! Blocked clients: a connection waiting inside a command (WAIT today; the blocking list,
//! sorted-set and stream commands will wait the same way) until its deadline, CLIENT UNBLOCK,
//! or its client going away.
//!
//! A blocked command is a coordinator future awaiting [`block`]; the connection reads nothing
//! meanwhile, so requests pipelined behind it run after it, as in Redis. While blocked, the
//! socket is watched: a client that closes (or is CLIENT KILLed) ends the block at once.
//! Blocked clients are exempt from the idle `timeout`, as in Redis (only the read loop applies
//! it).
//!
//! Invariant: a client counts in `blocked_clients` exactly while its [`BlockSlot`] says it is
//! blocked, and an unblock reaches only the block it was aimed at: CLIENT UNBLOCK sets its
//! reason under the slot's lock only while the client is blocked, and a block ignores a wake
//! that finds no reason (a permit left from an earlier block).

use crate::conn::Conn;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How CLIENT UNBLOCK ends a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unblock {
    /// As if the command timed out (the default).
    Timeout,
    /// With `-UNBLOCKED client unblocked via CLIENT UNBLOCK`.
    Error,
}

/// How a block ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockEnd {
    TimedOut,
    Unblocked(Unblock),
    /// The client closed the connection or was killed: nobody is left to answer.
    Closed,
}

/// A connection's blocked state, shared with other threads (CLIENT UNBLOCK, CLIENT LIST).
#[derive(Default)]
pub struct BlockSlot {
    state: Mutex<SlotState>,
    notify: tokio::sync::Notify,
}

#[derive(Default)]
struct SlotState {
    blocked: bool,
    unblock: Option<Unblock>,
}

impl BlockSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the client is blocked now (CLIENT LIST flag `b`).
    pub fn is_blocked(&self) -> bool {
        self.lock().blocked
    }

    /// CLIENT UNBLOCK: true when the client was blocked and is now being released.
    pub fn unblock(&self, how: Unblock) -> bool {
        {
            let mut s = self.lock();
            if !s.blocked || s.unblock.is_some() {
                return false;
            }
            s.unblock = Some(how);
        }
        self.notify.notify_one();
        true
    }

    fn enter(&self) {
        let mut s = self.lock();
        s.blocked = true;
        s.unblock = None;
    }

    fn leave(&self) {
        let mut s = self.lock();
        s.blocked = false;
        s.unblock = None;
    }

    fn take_unblock(&self) -> Option<Unblock> {
        self.lock().unblock
    }
}

/// How often a block whose client has sent more input looks for a CLIENT KILL (the socket is
/// then readable for the input, so readiness cannot tell a close).
const KILL_POLL: Duration = Duration::from_millis(100);

/// Blocks `conn` until `deadline` (`None`: no deadline), CLIENT UNBLOCK, or its client going
/// away.
pub async fn block(conn: &mut Conn, deadline: Option<Instant>) -> BlockEnd {
    let g = conn.globals.clone();
    let shared = conn.shared.clone();
    let writer = conn.writer.clone();
    // CLIENT LIST shows the blocked command (`cmd=wait`) while it waits.
    shared
        .info
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .last_cmd = conn.last_cmd;
    shared.block.enter();
    g.blocked_clients.fetch_add(1, Ordering::Relaxed);
    if deadline.is_some() {
        g.blocked_with_timeout.fetch_add(1, Ordering::Relaxed);
    }
    let stream: &tokio::net::TcpStream = (*writer).as_ref();
    let since = Instant::now();
    // Watch the socket for a close until the client sends more input, then poll for a kill.
    let mut watch_socket = true;
    let end = loop {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => break BlockEnd::TimedOut,
            _ = shared.block.notify.notified() => {
                if let Some(how) = shared.block.take_unblock() {
                    break BlockEnd::Unblocked(how);
                }
            }
            r = stream.readable(), if watch_socket => {
                if r.is_err() {
                    break BlockEnd::Closed;
                }
                let mut one = [std::mem::MaybeUninit::<u8>::uninit(); 1];
                let peeked = stream.try_io(tokio::io::Interest::READABLE, || {
                    socket2::SockRef::from(stream).peek(&mut one)
                });
                match peeked {
                    Ok(0) => break BlockEnd::Closed,
                    Ok(_) => watch_socket = false,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => break BlockEnd::Closed,
                }
            }
            _ = tokio::time::sleep(KILL_POLL), if !watch_socket => {
                if shared.killed.load(Ordering::Relaxed) {
                    break BlockEnd::Closed;
                }
            }
        }
    };
    shared.block.leave();
    let us = since.elapsed().as_micros() as u64;
    conn.blocked_us = Some(conn.blocked_us.unwrap_or(0) + us);
    g.blocked_clients.fetch_sub(1, Ordering::Relaxed);
    if deadline.is_some() {
        g.blocked_with_timeout.fetch_sub(1, Ordering::Relaxed);
    }
    if end == BlockEnd::Closed {
        conn.close_after_reply = true;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unblock_reaches_only_a_blocked_client_once() {
        let s = BlockSlot::default();
        assert!(!s.unblock(Unblock::Timeout), "not blocked");
        s.enter();
        assert!(s.is_blocked());
        assert!(s.unblock(Unblock::Error));
        assert!(!s.unblock(Unblock::Timeout), "already being unblocked");
        assert_eq!(s.take_unblock(), Some(Unblock::Error));
        s.leave();
        // A later block starts clean: the earlier reason is gone.
        s.enter();
        assert_eq!(s.take_unblock(), None);
    }
}
