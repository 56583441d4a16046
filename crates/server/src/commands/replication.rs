//! Replication commands (Redis's replication.c) for a server that is a master without
//! replicas: ROLE, WAIT. Replication itself is a later release; these answer what a Redis
//! master with no replica answers, so clients that ask (Sidekiq and Redlock users call WAIT,
//! ioredis and redis-py call ROLE) work unchanged.
//!
//! Invariant: no replica ever acknowledges anything, so WAIT for one or more replicas blocks
//! until its timeout (forever with 0) or CLIENT UNBLOCK, then answers 0.

use super::{parse_i64, NOT_INT};
use crate::blocking::{self, BlockEnd, Unblock};
use crate::command::{LocalFut, TableBuilder};
use crate::conn::Conn;
use bytes::Bytes;
use std::time::{Duration, Instant};

pub fn register(t: &mut TableBuilder) {
    t.conn("role", role);
    t.coord("wait", wait);
}

fn role(c: &mut Conn, _args: &[Bytes]) {
    c.out.array(3);
    c.out.bulk(b"master");
    c.out.int(0);
    c.out.array(0);
}

/// WAIT numreplicas timeout(ms).
fn wait(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        let Some(want) = parse_i64(&args[1]) else {
            c.out.error(NOT_INT);
            return;
        };
        let Some(ms) = super::timeout_ms(c, &args[2]) else {
            return;
        };
        // Replicas that acknowledged this client's writes: none, there are none.
        let acked = 0;
        // Inside EXEC it answers at once, as Redis's does in MULTI.
        if want <= acked || c.exec_tx.is_some() {
            c.out.int(acked);
            return;
        }
        // A deadline past what Instant can hold waits forever, as Redis's does.
        let deadline = match ms {
            0 => None,
            ms => Instant::now().checked_add(Duration::from_millis(ms)),
        };
        match blocking::block(c, deadline).await {
            BlockEnd::TimedOut | BlockEnd::Unblocked(Unblock::Timeout) => c.out.int(acked),
            BlockEnd::Unblocked(Unblock::Error) => {
                c.out.error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
            }
            BlockEnd::Closed => {}
        }
    })
}
