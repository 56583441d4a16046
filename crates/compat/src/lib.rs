//! Differential harness: the same command streams go to damselfly and to a real redis-server
//! (the oracle, 7.0.15), and the replies are compared byte for byte, in RESP2 and in RESP3.
//!
//! * [`RespConn`]: a raw blocking client that reads exactly one complete RESP2/RESP3 reply.
//! * [`ServerProc`]: a redis-server or damselfly child on a free port, killed on drop. The
//!   damselfly binary is `$DAMSELFLY_BIN`, else `target/release/damselfly`, else
//!   `target/debug/damselfly`; with `COMPAT_SELFTEST=1` the "damselfly" side is a redis-server
//!   too, which validates the harness and the case files (everything must pass).
//! * The case-file runner ([`run_dir_or_panic`]) over `cases/*.txt`.
//!
//! # Case-file format
//!
//! ```text
//! # a comment (lines starting with #) and blank lines are skipped
//! === set_basic              <- starts a case named "set_basic"
//! SET a "hello world"        <- a command, split like redis-cli ("..." with \x41 escapes, '...')
//! GET a
//! !sort KEYS *               <- compare after sorting the top-level elements (map: the pairs)
//! !type TIME                 <- compare only the RESP type byte
//! !ignore LOLWUT             <- send and read, do not compare
//! !resp3 HGETALL h           <- only in the RESP3 pass (!resp2: only in the RESP2 pass)
//! !scan SCAN 0               <- both replies are a 2-element array starting with a bulk string
//! !noreply CLIENT REPLY OFF  <- the command gets no reply: compare what arrives in 300 ms
//! !raw PING\r\nPING\r\n      <- send raw bytes (escapes \r \n \t \0 \\ \" \xHH \{N:c}), compare all
//!                               bytes until the server closes or 300 ms of silence
//! !sleep 50                  <- sleep 50 ms, nothing sent
//! ```
//!
//! Prefixes combine (`!resp3 !sort HGETALL h`); `!raw` and `!sleep` take the rest of the line.
//! Each case runs twice, in RESP2 and RESP3, each time on a fresh pair of connections after
//! `FLUSHALL` and `SELECT 0` on both servers (plus `HELLO 3`, whose reply is not compared, in the
//! RESP3 pass). When a server closes the connection (`QUIT`, a protocol error in a `!raw` line),
//! the next line runs on new connections (`SELECT 0` and, in RESP3, `HELLO 3`; no `FLUSHALL`).
//! A timeout or malformed reply skips the rest of that pass. Cases share one pair of servers, so
//! a case that changes server state (`CONFIG SET`, `CLIENT PAUSE`) must restore it.
//!
//! Environment: `COMPAT_FILTER=substr` runs only the cases whose name contains it;
//! `COMPAT_DUMP=1` prints every line with redis's reply; `COMPAT_SELFTEST=1` as above;
//! `COMPAT_DUT_ARGS="--flag value"` appends arguments to the server under test's command line;
//! `COMPAT_PROPTEST_CASES=N` sets the randomized test's case count (default 64).

pub mod cases;
pub mod conn;
pub mod resp;
pub mod server;
pub mod session;

pub use cases::{
    load_dir, parse_cases, run_case, run_dir_or_panic, run_files, Action, Case, CaseFile, Compare,
    Got, Line, Mismatch, Pair, Proto, Report,
};
pub use conn::{encode_command, is_closed_error, RespConn};
pub use resp::{escape, frame_end, sort_reply, sort_reply_deep, split_aggregate, unescape_raw};
pub use server::{
    damselfly_bin, redis_server_bin, selftest, workspace_root, ServerKind, ServerProc,
};
pub use session::{assert_same_session, canonical, run_session};

/// The directory holding the case files (`crates/compat/cases`).
pub fn cases_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cases")
}
