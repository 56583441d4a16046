//! Request parser: turns the bytes a client sent into commands (argument vectors).
//!
//! We write this ourselves rather than use a RESP crate because the server needs three things
//! together that no crate gives: zero-copy argument slices (`Bytes` views into the read buffer,
//! cheap to send to another shard), Redis's exact protocol error texts and limits, and resumable
//! parsing of a half-received request.
//!
//! Two request forms exist, as in Redis (`networking.c`, `processMultibulkBuffer` and
//! `processInlineBuffer`):
//!
//! ```text
//! *2\r\n$3\r\nGET\r\n$3\r\nkey\r\n      multibulk: what every client library sends
//! GET key\r\n                           inline: what telnet/nc users type (quotes allowed)
//! ```
//!
//! # Why incremental
//!
//! A request can be far larger than one read: `MSET` with a million arguments is ~100 MB and
//! arrives in thousands of 16-64 KB reads. A parser that starts over at the `*N` line on every
//! read does work quadratic in the request size, and one client can stall its shard thread for
//! minutes. So, like Redis (which keeps `multibulklen`, `bulklen` and `argv` in the client), a
//! [`RequestParser`] lives with the connection and keeps where it stopped: how many arguments are
//! still missing, the length of the current argument once its `$len` line was read, the
//! arguments completed so far, and how far the search for the end of an unfinished line already
//! went. Each received byte is examined a bounded number of times however the bytes are split
//! across reads: the work per request is O(its bytes) plus O(1) per call.
//!
//! # Invariant
//!
//! Between calls, the parser's state plus the buffer's contents describe exactly the bytes
//! received and not yet returned as commands. Whatever the parser understood (the `*N` line,
//! complete arguments, the `$len` line of the current argument) is taken off the front of the
//! buffer (complete arguments become `Bytes` views of it, without copying); the buffer holds only
//! the unparsed tail, which starts with the unfinished line or the unfinished bulk data.
//! [`RequestParser::pending_len`] counts the bytes taken but not yet returned, so
//! `buf.len() + pending_len()` is what a re-parsing parser would have left in its buffer.
//!
//! The caller may only append to the buffer between calls (what `read_buf` does); a buffer that
//! is cleared or replaced needs [`RequestParser::reset`]. A protocol error is final: the
//! connection replies with the error and closes, and the parser's state is then unspecified.

use bytes::{Buf, Bytes, BytesMut};

/// Largest inline request, and largest `*N`/`$N` header line, Redis accepts (`PROTO_INLINE_MAX_SIZE`).
pub const INLINE_MAX_SIZE: usize = 64 * 1024;

/// Limits a parser enforces; mirrors Redis's config of the same names.
#[derive(Clone, Copy, Debug)]
pub struct ParserLimits {
    /// `proto-max-bulk-len`: the largest single argument (default 512mb).
    pub max_bulk_len: i64,
    /// Largest argument count of a multibulk request (Redis: INT_MAX; Dragonfly: 65536).
    pub max_multibulk_len: i64,
}

impl Default for ParserLimits {
    fn default() -> Self {
        ParserLimits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: i32::MAX as i64,
        }
    }
}

/// A protocol violation; the connection must send `-ERR <text>` and close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub &'static str);

impl ProtocolError {
    /// The error line Redis sends, without the `-` and CRLF.
    pub fn message(&self) -> String {
        format!("ERR Protocol error: {}", self.0)
    }
}

/// Outcome of one parse attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// One complete request. An empty vector means an empty request (blank inline line, `*0`),
    /// which Redis silently skips.
    Command(Vec<Bytes>),
    /// More bytes are needed. `need` is a lower bound on the buffer length (of the unparsed tail
    /// left in the buffer) required before another attempt can make progress, 0 when unknown.
    /// It is set while a bulk argument's data is arriving: the buffer then starts at that data
    /// and `need` is its length plus the CRLF, so the caller can skip parse attempts and
    /// reserve capacity for the whole argument at once (as Redis pre-sizes its query buffer
    /// for big arguments).
    Incomplete { need: usize },
}

/// Parser state kept by a connection between reads; see the module documentation.
#[derive(Debug, Default)]
pub struct RequestParser {
    /// A multibulk request is in progress: its `*N` line was taken off the buffer.
    in_multibulk: bool,
    /// Arguments of that request not yet complete (the current one included).
    remaining: usize,
    /// Length of the current argument once its `$len` line was taken off the buffer.
    bulk_len: Option<usize>,
    /// The request's arguments completed so far.
    args: Vec<Bytes>,
    /// Bytes of the request in progress taken off the buffer (lines, arguments, their CRLFs).
    taken: usize,
    /// How many leading bytes of the buffer are known to hold no end of the unfinished line that
    /// starts the buffer (`'\r'` of a multibulk line, `'\n'` of an inline request): the search
    /// resumes there. Nonzero only after an attempt stopped inside such a line.
    scanned: usize,
    /// The unfinished line at the front of the buffer has a NUL before its end. Redis finds line
    /// ends with `strchr`, which stops at a NUL, so for Redis that line never ends: the
    /// connection waits until the line is too big (and then gets its protocol error). Sticky:
    /// the line is never taken off the buffer.
    nul_in_line: bool,
    /// Scratch: (start, end) of the arguments completed in this call, as offsets into the buffer.
    spans: Vec<(usize, usize)>,
    /// Bytes read by line searches, integer parsing and inline splitting (work accounting).
    examined: u64,
}

/// The scratch vector is dropped after a call that grew it beyond this many spans.
const SPANS_KEEP: usize = 1024;

impl RequestParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one request from the front of `buf`, resuming where the previous call stopped.
    /// Complete requests come back one per call; on `Incomplete`, whatever was understood has
    /// been taken off `buf` into the parser. `authenticated` = false applies Redis's tighter
    /// limits for clients that have not authenticated yet (at most 10 arguments of 16 KiB);
    /// limits are checked when the `*N` or `$len` line is read, as Redis does.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        limits: &ParserLimits,
        authenticated: bool,
    ) -> Result<Parsed, ProtocolError> {
        if !self.in_multibulk {
            if buf.is_empty() {
                self.scanned = 0;
                return Ok(Parsed::Incomplete { need: 0 });
            }
            if buf[0] != b'*' {
                return self.parse_inline(buf);
            }
        }
        self.parse_multibulk(buf, limits, authenticated)
    }

    /// Bytes taken off the buffer that belong to the request in progress (not yet returned).
    /// `buf.len() + pending_len()` is the client's whole query buffer.
    pub fn pending_len(&self) -> usize {
        self.taken
    }

    /// Total bytes examined so far (line searches, integer parsing, inline splitting); a work
    /// counter that tests use to check parsing stays linear however the input is split.
    pub fn bytes_examined(&self) -> u64 {
        self.examined
    }

    /// Forgets any partly parsed request (needed if the caller discards its buffer).
    pub fn reset(&mut self) {
        let examined = self.examined;
        *self = RequestParser {
            examined,
            ..RequestParser::default()
        };
    }

    /// Finds the `'\r'` ending the line that starts at `line`. Redis looks for '\r' and then
    /// skips two bytes without checking for '\n'; a '\r' that is the last byte counts as
    /// incomplete. On `None`, `scanned` records how far the search went so the next call
    /// resumes there (the caller then takes everything before `line` off the buffer).
    fn find_line_end(&mut self, buf: &[u8], line: usize) -> Option<usize> {
        let from = (line + self.scanned).min(buf.len());
        match self.find_end(b'\r', &buf[from..]) {
            Some(i) if from + i + 1 < buf.len() => {
                self.examined += (i + 1) as u64;
                self.scanned = 0;
                Some(from + i)
            }
            Some(i) => {
                // The '\r' is the last byte: resume on it.
                self.examined += (i + 1) as u64;
                self.scanned = from + i - line;
                None
            }
            None => {
                self.examined += (buf.len() - from) as u64;
                self.scanned = buf.len() - line;
                None
            }
        }
    }

    /// The first `end` in `hay` as C's `strchr` finds it: a NUL before it hides it, and every
    /// later byte of the line, for good (`nul_in_line`).
    fn find_end(&mut self, end: u8, hay: &[u8]) -> Option<usize> {
        if self.nul_in_line {
            return None;
        }
        let i = line_end_or_nul(end, hay)?;
        if hay[i] == 0 {
            self.nul_in_line = true;
            return None;
        }
        Some(i)
    }

    fn parse_multibulk(
        &mut self,
        buf: &mut BytesMut,
        limits: &ParserLimits,
        authenticated: bool,
    ) -> Result<Parsed, ProtocolError> {
        let mut pos = 0;
        if !self.in_multibulk {
            let Some(nl) = self.find_line_end(buf, 0) else {
                if buf.len() > INLINE_MAX_SIZE {
                    return Err(ProtocolError("too big mbulk count string"));
                }
                return Ok(Parsed::Incomplete { need: 0 });
            };
            self.examined += (nl - 1) as u64;
            let count = match parse_i64_strict(&buf[1..nl]) {
                Some(n) if n <= i32::MAX as i64 && n <= limits.max_multibulk_len => n,
                _ => return Err(ProtocolError("invalid multibulk length")),
            };
            if count > 10 && !authenticated {
                return Err(ProtocolError("unauthenticated multibulk length"));
            }
            pos = nl + 2;
            if count <= 0 {
                buf.advance(pos);
                return Ok(Parsed::Command(Vec::new()));
            }
            self.in_multibulk = true;
            self.remaining = count as usize;
            self.bulk_len = None;
        }
        self.spans.clear();
        let need = loop {
            if self.remaining == 0 {
                return Ok(Parsed::Command(self.finish(buf, pos)));
            }
            let len = match self.bulk_len {
                Some(len) => len,
                None => {
                    if pos >= buf.len() {
                        break 0;
                    }
                    // The line's end first, then its type byte, in Redis's order: a line
                    // not starting with '$' is an error only once it is complete.
                    let Some(nl) = self.find_line_end(buf, pos) else {
                        if buf.len() - pos > INLINE_MAX_SIZE {
                            return Err(ProtocolError("too big bulk count string"));
                        }
                        break 0;
                    };
                    if buf[pos] != b'$' {
                        return Err(ProtocolError(expected_dollar(buf[pos])));
                    }
                    self.examined += (nl - pos - 1) as u64;
                    let len = match parse_i64_strict(&buf[pos + 1..nl]) {
                        Some(n) if n >= 0 && n <= limits.max_bulk_len => n as usize,
                        _ => return Err(ProtocolError("invalid bulk length")),
                    };
                    if len > 16384 && !authenticated {
                        return Err(ProtocolError("unauthenticated bulk length"));
                    }
                    pos = nl + 2;
                    self.bulk_len = Some(len);
                    len
                }
            };
            // The data is skipped by length, never scanned (Redis does not check its CRLF).
            let end = pos + len;
            if end + 2 > buf.len() {
                // Once `pos` is taken off, the buffer starts at the data.
                break len + 2;
            }
            self.spans.push((pos, end));
            pos = end + 2;
            self.bulk_len = None;
            self.remaining -= 1;
        };
        // Incomplete: take what was understood (up to `pos`) off the buffer.
        if self.spans.is_empty() {
            buf.advance(pos);
        } else {
            let frame = buf.split_to(pos).freeze();
            if self.args.capacity() == 0 {
                self.args
                    .reserve((self.spans.len() + self.remaining).min(SPANS_KEEP));
            }
            self.args
                .extend(self.spans.iter().map(|&(s, e)| frame.slice(s..e)));
            self.drop_big_scratch();
        }
        self.taken += pos;
        Ok(Parsed::Incomplete { need })
    }

    /// The request is complete at `pos`: returns its arguments and goes back to idle.
    fn finish(&mut self, buf: &mut BytesMut, pos: usize) -> Vec<Bytes> {
        let frame = buf.split_to(pos).freeze();
        let mut args = std::mem::take(&mut self.args);
        if args.is_empty() {
            args = Vec::with_capacity(self.spans.len());
        } else {
            args.reserve_exact(self.spans.len());
        }
        args.extend(self.spans.iter().map(|&(s, e)| frame.slice(s..e)));
        self.drop_big_scratch();
        self.in_multibulk = false;
        self.bulk_len = None;
        self.taken = 0;
        self.scanned = 0;
        args
    }

    fn drop_big_scratch(&mut self) {
        if self.spans.capacity() > SPANS_KEEP {
            self.spans = Vec::new();
        }
    }

    fn parse_inline(&mut self, buf: &mut BytesMut) -> Result<Parsed, ProtocolError> {
        let from = self.scanned.min(buf.len());
        let Some(i) = self.find_end(b'\n', &buf[from..]) else {
            self.examined += (buf.len() - from) as u64;
            self.scanned = buf.len();
            if buf.len() > INLINE_MAX_SIZE {
                return Err(ProtocolError("too big inline request"));
            }
            return Ok(Parsed::Incomplete { need: 0 });
        };
        let nl = from + i;
        self.scanned = 0;
        let mut end = nl;
        if end > 0 && buf[end - 1] == b'\r' {
            end -= 1;
        }
        self.examined += (i + 1 + end) as u64;
        let args = split_args(&buf[..end]).ok_or(ProtocolError("unbalanced quotes in request"))?;
        buf.advance(nl + 1);
        Ok(Parsed::Command(args.into_iter().map(Bytes::from).collect()))
    }
}

#[inline]
fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// The first `end` byte or NUL in `hay` (what C's `strchr(hay, end)` stops at).
#[inline]
fn line_end_or_nul(end: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == end || b == 0)
}

/// Parses a decimal integer exactly as Redis's `string2ll` does: optional '-', no '+', no
/// leading zeros (except "0"), no spaces, must fit i64.
pub fn parse_i64_strict(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s.len() == 1 && s[0] == b'0' {
        return Some(0);
    }
    let (neg, digits) = if s[0] == b'-' {
        (true, &s[1..])
    } else {
        (false, s)
    };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

/// Redis's message for a multibulk element that does not start with '$': "expected '$', got
/// '%c'", with CR and LF turned into spaces (Redis keeps error lines single-line) and a NUL
/// ending the string (its printf-built message is a C string). A byte of 0x80 or above cannot
/// go into our `&str` messages: those get "something else" (a deliberate difference, see
/// docs/compatibility.md).
fn expected_dollar(got: u8) -> &'static str {
    static TABLE: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        (0u8..128)
            .map(|b| {
                let msg = match b {
                    0 => "expected '$', got '".to_string(),
                    b'\r' | b'\n' => "expected '$', got ' '".to_string(),
                    _ => format!("expected '$', got '{}'", b as char),
                };
                &*Box::leak(msg.into_boxed_str())
            })
            .collect()
    });
    table
        .get(got as usize)
        .copied()
        .unwrap_or("expected '$', got something else")
}

/// C's `isspace` in the C locale.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

/// Splits a line into arguments like Redis's `sdssplitargs`: whitespace separates, "double
/// quotes" allow `\n \r \t \b \a \\ \" \xHH`, 'single quotes' allow `\'`. A closing quote must be
/// followed by whitespace or the end. Returns `None` on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // Redis runs sdssplitargs over a C string: a NUL byte ends the line.
    let line = match memchr(0, line) {
        Some(z) => &line[..z],
        None => line,
    };
    let mut out = Vec::new();
    let mut p = 0;
    let n = line.len();
    loop {
        while p < n && is_c_space(line[p]) {
            p += 1;
        }
        if p >= n {
            return Some(out);
        }
        let mut cur = Vec::new();
        let mut inq = false;
        let mut insq = false;
        loop {
            if inq {
                if p >= n {
                    return None;
                }
                if line[p] == b'\\'
                    && p + 3 < n
                    && line[p + 1] == b'x'
                    && is_hex(line[p + 2])
                    && is_hex(line[p + 3])
                {
                    cur.push(hex_val(line[p + 2]) * 16 + hex_val(line[p + 3]));
                    p += 3;
                } else if line[p] == b'\\' && p + 1 < n {
                    p += 1;
                    let c = match line[p] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    };
                    cur.push(c);
                } else if line[p] == b'"' {
                    if p + 1 < n && !is_c_space(line[p + 1]) {
                        return None;
                    }
                    p += 1;
                    break;
                } else {
                    cur.push(line[p]);
                }
            } else if insq {
                if p >= n {
                    return None;
                }
                if line[p] == b'\\' && p + 1 < n && line[p + 1] == b'\'' {
                    p += 1;
                    cur.push(b'\'');
                } else if line[p] == b'\'' {
                    if p + 1 < n && !is_c_space(line[p + 1]) {
                        return None;
                    }
                    p += 1;
                    break;
                } else {
                    cur.push(line[p]);
                }
            } else {
                if p >= n {
                    break;
                }
                match line[p] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        break;
                    }
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            p += 1;
        }
        out.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Cmds = Vec<Vec<Vec<u8>>>;

    fn owned(args: &[Bytes]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.to_vec()).collect()
    }

    fn parse_all(input: &[u8]) -> Result<Cmds, ProtocolError> {
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(input);
        let mut out = vec![];
        loop {
            match p.parse(&mut buf, &ParserLimits::default(), true)? {
                Parsed::Command(args) => out.push(owned(&args)),
                Parsed::Incomplete { .. } => return Ok(out),
            }
        }
    }

    /// The parser before it was made incremental: stateless, re-parses a request from its `*N`
    /// line on every attempt and consumes nothing on `Incomplete` (`need` counted from the
    /// request's first byte). Kept as the reference the incremental parser must agree with.
    mod reference {
        use super::super::{
            expected_dollar, line_end_or_nul, parse_i64_strict, split_args, Parsed, ParserLimits,
            ProtocolError, INLINE_MAX_SIZE,
        };
        use bytes::{Bytes, BytesMut};

        pub fn parse(
            buf: &mut BytesMut,
            limits: &ParserLimits,
            authenticated: bool,
        ) -> Result<Parsed, ProtocolError> {
            if buf.is_empty() {
                return Ok(Parsed::Incomplete { need: 0 });
            }
            if buf[0] == b'*' {
                parse_multibulk(buf, limits, authenticated)
            } else {
                parse_inline(buf)
            }
        }

        fn find_crlf_line(buf: &[u8], from: usize) -> Option<usize> {
            let at = from + line_end_or_nul(b'\r', &buf[from..])?;
            if buf[at] == 0 {
                return None;
            }
            if at + 1 >= buf.len() {
                return None;
            }
            Some(at)
        }

        fn parse_multibulk(
            buf: &mut BytesMut,
            limits: &ParserLimits,
            authenticated: bool,
        ) -> Result<Parsed, ProtocolError> {
            let Some(nl) = find_crlf_line(buf, 0) else {
                if buf.len() > INLINE_MAX_SIZE {
                    return Err(ProtocolError("too big mbulk count string"));
                }
                return Ok(Parsed::Incomplete { need: 0 });
            };
            let count = match parse_i64_strict(&buf[1..nl]) {
                Some(n) if n <= i32::MAX as i64 && n <= limits.max_multibulk_len => n,
                _ => return Err(ProtocolError("invalid multibulk length")),
            };
            if count > 10 && !authenticated {
                return Err(ProtocolError("unauthenticated multibulk length"));
            }
            let mut pos = nl + 2;
            if count <= 0 {
                let _ = buf.split_to(pos);
                return Ok(Parsed::Command(Vec::new()));
            }
            let count = count as usize;
            let mut spans: Vec<(usize, usize)> = Vec::with_capacity(count.min(1024));
            for _ in 0..count {
                if pos >= buf.len() {
                    return Ok(Parsed::Incomplete { need: 0 });
                }
                let Some(nl) = find_crlf_line(buf, pos) else {
                    if buf.len() - pos > INLINE_MAX_SIZE {
                        return Err(ProtocolError("too big bulk count string"));
                    }
                    return Ok(Parsed::Incomplete { need: 0 });
                };
                if buf[pos] != b'$' {
                    return Err(ProtocolError(expected_dollar(buf[pos])));
                }
                let len = match parse_i64_strict(&buf[pos + 1..nl]) {
                    Some(n) if n >= 0 && n <= limits.max_bulk_len => n as usize,
                    _ => return Err(ProtocolError("invalid bulk length")),
                };
                if len > 16384 && !authenticated {
                    return Err(ProtocolError("unauthenticated bulk length"));
                }
                let start = nl + 2;
                let end = start + len;
                if end + 2 > buf.len() {
                    return Ok(Parsed::Incomplete { need: end + 2 });
                }
                spans.push((start, end));
                pos = end + 2;
            }
            let frame = buf.split_to(pos).freeze();
            Ok(Parsed::Command(
                spans.into_iter().map(|(s, e)| frame.slice(s..e)).collect(),
            ))
        }

        fn parse_inline(buf: &mut BytesMut) -> Result<Parsed, ProtocolError> {
            let Some(nl) = line_end_or_nul(b'\n', buf).filter(|&i| buf[i] != 0) else {
                if buf.len() > INLINE_MAX_SIZE {
                    return Err(ProtocolError("too big inline request"));
                }
                return Ok(Parsed::Incomplete { need: 0 });
            };
            let mut end = nl;
            if end > 0 && buf[end - 1] == b'\r' {
                end -= 1;
            }
            let args =
                split_args(&buf[..end]).ok_or(ProtocolError("unbalanced quotes in request"))?;
            let _ = buf.split_to(nl + 1);
            Ok(Parsed::Command(args.into_iter().map(Bytes::from).collect()))
        }
    }

    /// What the server's read loop does: append each chunk, skip parsing while `need` says a
    /// bulk is still arriving, otherwise parse every complete request. Returns the commands, the
    /// error if any, and the client's whole query buffer (`buf.len() + pending_len()`) after
    /// each chunk. `cut` gives the chunk sizes (cycled; 1 = byte by byte).
    struct Fed {
        cmds: Cmds,
        err: Option<ProtocolError>,
        qbuf: Vec<usize>,
        examined: u64,
    }

    fn feed(input: &[u8], cut: &[usize], limits: &ParserLimits, auth: bool) -> Fed {
        let mut p = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut need = 0;
        let mut fed = Fed {
            cmds: vec![],
            err: None,
            qbuf: vec![],
            examined: 0,
        };
        let mut at = 0;
        let mut i = 0;
        while at < input.len() {
            let n = cut[i % cut.len()].clamp(1, input.len() - at);
            i += 1;
            buf.extend_from_slice(&input[at..at + n]);
            at += n;
            if need <= buf.len() {
                loop {
                    match p.parse(&mut buf, limits, auth) {
                        Ok(Parsed::Command(args)) => fed.cmds.push(owned(&args)),
                        Ok(Parsed::Incomplete { need: nd }) => {
                            need = nd;
                            break;
                        }
                        Err(e) => {
                            fed.err = Some(e);
                            fed.examined = p.bytes_examined();
                            return fed;
                        }
                    }
                }
            }
            fed.qbuf.push(buf.len() + p.pending_len());
        }
        fed.examined = p.bytes_examined();
        fed
    }

    /// The same loop over the reference parser.
    fn feed_reference(input: &[u8], cut: &[usize], limits: &ParserLimits, auth: bool) -> Fed {
        let mut buf = BytesMut::new();
        let mut need = 0;
        let mut fed = Fed {
            cmds: vec![],
            err: None,
            qbuf: vec![],
            examined: 0,
        };
        let mut at = 0;
        let mut i = 0;
        while at < input.len() {
            let n = cut[i % cut.len()].clamp(1, input.len() - at);
            i += 1;
            buf.extend_from_slice(&input[at..at + n]);
            at += n;
            if need <= buf.len() {
                loop {
                    match reference::parse(&mut buf, limits, auth) {
                        Ok(Parsed::Command(args)) => fed.cmds.push(owned(&args)),
                        Ok(Parsed::Incomplete { need: nd }) => {
                            need = nd;
                            break;
                        }
                        Err(e) => {
                            fed.err = Some(e);
                            return fed;
                        }
                    }
                }
            }
            fed.qbuf.push(buf.len());
        }
        fed
    }

    fn multibulk(args: &[&[u8]]) -> Vec<u8> {
        let mut wire = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            wire.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            wire.extend_from_slice(a);
            wire.extend_from_slice(b"\r\n");
        }
        wire
    }

    #[test]
    fn multibulk_pipeline() {
        let cmds = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(
            cmds,
            vec![vec![b"GET".to_vec(), b"k".to_vec()], vec![b"PING".to_vec()]]
        );
    }

    /// (Was `incomplete_consumes_nothing`.) An incomplete request keeps every byte: what was
    /// understood moved into the parser, the rest stays in the buffer, and `need` counts from
    /// the start of the bulk data now at the front of the buffer.
    #[test]
    fn incomplete_keeps_every_byte() {
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$10\r\nabc"[..]);
        let r = p.parse(&mut buf, &ParserLimits::default(), true).unwrap();
        assert_eq!(r, Parsed::Incomplete { need: 10 + 2 });
        assert_eq!(&buf[..], b"abc");
        assert_eq!(buf.len() + p.pending_len(), 21);
        buf.extend_from_slice(b"defghij\r\n");
        let r = p.parse(&mut buf, &ParserLimits::default(), true).unwrap();
        assert_eq!(
            r,
            Parsed::Command(vec![
                Bytes::from_static(b"GET"),
                Bytes::from_static(b"abcdefghij")
            ])
        );
        assert!(buf.is_empty());
        assert_eq!(p.pending_len(), 0);
    }

    #[test]
    fn a_nul_before_the_line_end_stalls_the_line_as_in_redis() {
        // Redis finds line ends with strchr, which stops at a NUL: the line never ends, the
        // requests after it are not run, and the line is too big once over 64 KB.
        let limits = ParserLimits::default();
        for input in [
            &b"\0PING\r\nPING\r\n"[..],
            b"PI\0NG\r\nPING\r\n",
            b"*1\0\r\n$4\r\nPING\r\n",
            b"*1\r\n$4\0\r\nPING\r\n",
        ] {
            for cut in [&[1usize][..], &[3], &[1000]] {
                let fed = feed(input, cut, &limits, true);
                assert!(
                    fed.cmds.is_empty() && fed.err.is_none(),
                    "{input:?} {cut:?}"
                );
            }
        }
        // Requests before the line still run; a NUL inside bulk data is data.
        let fed = feed(
            b"PING\r\n*1\r\n$4\r\nPING\r\n\0x\r\nPING\r\n",
            &[4],
            &limits,
            true,
        );
        assert_eq!(fed.cmds.len(), 2);
        let fed = feed(b"*2\r\n$4\r\nECHO\r\n$2\r\n\0\0\r\n", &[1], &limits, true);
        assert_eq!(fed.cmds, vec![vec![b"ECHO".to_vec(), b"\0\0".to_vec()]]);
        let mut long = b"\0".to_vec();
        long.extend(std::iter::repeat_n(b'a', INLINE_MAX_SIZE + 10));
        long.extend_from_slice(b"\r\n");
        let fed = feed(&long, &[16 * 1024], &limits, true);
        assert_eq!(fed.err, Some(ProtocolError("too big inline request")));
        let mut long = b"*1\r\n$1\0".to_vec();
        long.extend(std::iter::repeat_n(b'1', INLINE_MAX_SIZE + 10));
        long.extend_from_slice(b"\r\n");
        let fed = feed(&long, &[16 * 1024], &limits, true);
        assert_eq!(fed.err, Some(ProtocolError("too big bulk count string")));
    }

    #[test]
    fn inline_with_quotes() {
        let cmds = parse_all(b"set \"a b\" 'c\\'d' \"\\x41\\n\"\r\n").unwrap();
        assert_eq!(
            cmds,
            vec![vec![
                b"set".to_vec(),
                b"a b".to_vec(),
                b"c'd".to_vec(),
                b"A\n".to_vec()
            ]]
        );
    }

    #[test]
    fn protocol_errors_have_redis_text() {
        assert_eq!(
            parse_all(b"*abc\r\n").unwrap_err().message(),
            "ERR Protocol error: invalid multibulk length"
        );
        assert_eq!(
            parse_all(b"*1\r\n+x\r\n").unwrap_err().message(),
            "ERR Protocol error: expected '$', got '+'"
        );
        assert_eq!(
            parse_all(b"*1\r\n$-5\r\n").unwrap_err().message(),
            "ERR Protocol error: invalid bulk length"
        );
        assert_eq!(
            parse_all(b"set \"a\r\n").unwrap_err().message(),
            "ERR Protocol error: unbalanced quotes in request"
        );
        let big = vec![b'a'; INLINE_MAX_SIZE + 1];
        assert_eq!(
            parse_all(&big).unwrap_err().message(),
            "ERR Protocol error: too big inline request"
        );
    }

    #[test]
    fn empty_requests_are_skipped() {
        assert_eq!(
            parse_all(b"\r\n*0\r\n*-1\r\n").unwrap(),
            vec![Vec::<Vec<u8>>::new(); 3]
        );
    }

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64_strict(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64_strict(b"9223372036854775808"), None);
        assert_eq!(parse_i64_strict(b"01"), None);
        assert_eq!(parse_i64_strict(b"+1"), None);
        assert_eq!(parse_i64_strict(b"-0"), None);
    }

    /// Errors found in the middle of a request that arrives in pieces carry the same text as
    /// when the bytes come at once, including the limits for unauthenticated clients and the
    /// header-line size limits.
    #[test]
    fn mid_stream_errors_match_one_shot() {
        let limits = ParserLimits::default();
        let mut long_bulk_line = b"*2\r\n$3\r\nGET\r\n$".to_vec();
        long_bulk_line.extend(std::iter::repeat_n(b'1', INLINE_MAX_SIZE + 10));
        let mut long_count_line = b"*".to_vec();
        long_count_line.extend(std::iter::repeat_n(b'1', INLINE_MAX_SIZE + 10));
        let mut long_inline = b"PING\r\nset k ".to_vec();
        long_inline.extend(std::iter::repeat_n(b'v', INLINE_MAX_SIZE + 10));
        let cases: Vec<(Vec<u8>, bool, &str)> = vec![
            (
                b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n+v\r\n".to_vec(),
                true,
                "expected '$', got '+'",
            ),
            (
                b"*2\r\n$3\r\nGET\r\n$1x\r\nk\r\n".to_vec(),
                true,
                "invalid bulk length",
            ),
            (
                b"*2\r\n$3\r\nGET\r\n$20000\r\n".to_vec(),
                false,
                "unauthenticated bulk length",
            ),
            (
                b"*1\r\n$4\r\nPING\r\n*11\r\n".to_vec(),
                false,
                "unauthenticated multibulk length",
            ),
            (
                b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*x\r\n".to_vec(),
                true,
                "invalid multibulk length",
            ),
            (long_bulk_line, true, "too big bulk count string"),
            (long_count_line, true, "too big mbulk count string"),
            (long_inline, true, "too big inline request"),
            (
                b"*1\r\n$4\r\nPING\r\nget \"k\r\n".to_vec(),
                true,
                "unbalanced quotes in request",
            ),
        ];
        for (input, auth, text) in cases {
            let whole = feed(&input, &[input.len()], &limits, auth);
            assert_eq!(whole.err, Some(ProtocolError(text)), "{text}");
            for cut in [&[1usize][..], &[3, 7, 1, 4096], &[4096]] {
                let got = feed(&input, cut, &limits, auth);
                assert_eq!(got.err, whole.err, "{text} cut {cut:?}");
                assert_eq!(got.cmds, whole.cmds, "{text} cut {cut:?}");
            }
        }
    }

    /// Linear work: a 200k-argument request fed in 4 KB reads (and a 20k one fed byte by byte)
    /// examines each byte a bounded number of times. The old parser re-scanned all of the
    /// request received so far on every read: ~600 reads x ~1.2 MB on average here.
    #[test]
    fn many_small_arguments_parse_in_linear_work() {
        let keys: Vec<Vec<u8>> = (0..200_000).map(|i| format!("k{i}").into_bytes()).collect();
        let mut args: Vec<&[u8]> = vec![b"MSET"];
        args.extend(keys.iter().map(|k| &k[..]));
        let mut input = multibulk(&args);
        input.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        let got = feed(&input, &[4096], &ParserLimits::default(), true);
        assert_eq!(got.err, None);
        assert_eq!(got.cmds.len(), 2);
        assert_eq!(got.cmds[0].len(), 200_001);
        assert_eq!(got.cmds[0][200_000], b"k199999");
        assert!(
            got.examined <= 2 * input.len() as u64,
            "examined {} bytes of {}",
            got.examined,
            input.len()
        );

        let small = multibulk(&args[..20_000]);
        let got = feed(&small, &[1], &ParserLimits::default(), true);
        assert_eq!(got.cmds.len(), 1);
        assert_eq!(got.cmds[0].len(), 20_000);
        assert!(got.examined <= 2 * small.len() as u64);

        // The same holds for a long inline request arriving byte by byte.
        let mut inline = b"SET k ".to_vec();
        inline.extend(std::iter::repeat_n(b'v', 60_000));
        inline.extend_from_slice(b"\r\n");
        let got = feed(&inline, &[1], &ParserLimits::default(), true);
        assert_eq!(got.cmds.len(), 1);
        assert!(got.examined <= 3 * inline.len() as u64);

        // And for a hostile header line growing byte by byte up to its 64 KiB limit.
        let mut hostile = b"*2\r\n$3\r\nGET\r\n$".to_vec();
        hostile.extend(std::iter::repeat_n(b'1', INLINE_MAX_SIZE + 10));
        let got = feed(&hostile, &[1], &ParserLimits::default(), true);
        assert_eq!(got.err, Some(ProtocolError("too big bulk count string")));
        assert!(got.examined <= 2 * hostile.len() as u64);
    }

    /// A big bulk: once its `$len` line is read the buffer starts at the data and `need` asks
    /// for all of it, so the caller skips attempts until it arrived and can size the buffer
    /// once; the argument is a view of the buffer, not a copy.
    #[test]
    fn big_bulk_waits_on_need_and_is_not_copied() {
        let value = vec![b'x'; 1 << 20];
        let input = multibulk(&[b"SET", b"key", &value]);
        let header = input.len() - value.len() - 2;
        let mut p = RequestParser::new();
        let mut buf = BytesMut::with_capacity(input.len());
        buf.extend_from_slice(&input[..header + 100]);
        let limits = ParserLimits::default();
        assert_eq!(
            p.parse(&mut buf, &limits, true).unwrap(),
            Parsed::Incomplete {
                need: value.len() + 2
            }
        );
        assert_eq!(buf.len(), 100);
        assert_eq!(p.pending_len(), header);
        let data_at = buf.as_ptr();
        buf.extend_from_slice(&input[header + 100..]);
        let Parsed::Command(args) = p.parse(&mut buf, &limits, true).unwrap() else {
            panic!("incomplete")
        };
        assert_eq!(args.len(), 3);
        assert_eq!(args[2].as_ptr(), data_at);
        assert_eq!(args[2], value);
        assert!(buf.is_empty());
    }

    /// Requests that arrive in one piece (most of them) still come out as views of one frame.
    #[test]
    fn one_shot_arguments_share_the_frame() {
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"[..]);
        let base = buf.as_ptr();
        let Parsed::Command(args) = p.parse(&mut buf, &ParserLimits::default(), true).unwrap()
        else {
            panic!("incomplete")
        };
        assert_eq!(args[0].as_ptr(), base.wrapping_add(8));
        assert_eq!(args[1].as_ptr(), base.wrapping_add(17));
    }

    /// Valid requests of every form, for the chunking properties.
    fn request() -> impl Strategy<Value = (Vec<u8>, Vec<Vec<u8>>)> {
        let bulk = prop::collection::vec(any::<u8>(), 0..40);
        let token = "[a-zA-Z0-9_:.-]{1,12}".prop_map(|s| s.into_bytes());
        prop_oneof![
            4 => prop::collection::vec(bulk, 1..12).prop_map(|args| {
                let refs: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
                (multibulk(&refs), args)
            }),
            2 => prop::collection::vec(token, 1..6).prop_map(|args| {
                let mut line = args.join(&b' ');
                line.extend_from_slice(b"\r\n");
                (line, args)
            }),
            1 => prop::sample::select(vec![
                (b"\r\n".to_vec(), vec![]),
                (b"\n".to_vec(), vec![]),
                (b"*0\r\n".to_vec(), vec![]),
                (b"*-1\r\n".to_vec(), vec![]),
                (b"get \"a b\" 'c'\r\n".to_vec(), vec![b"get".to_vec(), b"a b".to_vec(), b"c".to_vec()]),
                (b"ping\n".to_vec(), vec![b"ping".to_vec()]),
            ]),
        ]
    }

    /// Bytes that look like the protocol, valid or not, to exercise every error path.
    fn protocolish() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            4 => request().prop_map(|(wire, _)| wire),
            1 => prop::sample::select(vec![
                &b"*"[..], b"$", b"\r\n", b"\r", b"\n", b"*2\r\n", b"*11\r\n", b"*-5\r\n",
                b"$3\r\n", b"$0\r\n", b"$-1\r\n", b"$20000\r\n", b"$99\r\n", b"+x", b"*x\r\n",
                b"$01\r\n", b"\"", b"'", b" ", b"abc", b"\0",
            ])
            .prop_map(|b| b.to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..8),
        ];
        prop::collection::vec(piece, 0..10).prop_map(|p| p.concat())
    }

    fn cuts() -> impl Strategy<Value = Vec<usize>> {
        prop::collection::vec(1usize..64, 1..8)
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_all(&data);
        }

        #[test]
        fn roundtrip_multibulk(args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..8)) {
            let refs: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
            let wire = multibulk(&refs);
            // Feed byte by byte: must yield exactly one command at the end.
            let mut p = RequestParser::new();
            let mut buf = BytesMut::new();
            let mut got = None;
            for b in wire {
                buf.extend_from_slice(&[b]);
                if let Parsed::Command(c) = p.parse(&mut buf, &ParserLimits::default(), true).unwrap() {
                    got = Some(c);
                }
            }
            prop_assert_eq!(owned(&got.unwrap()), args);
        }

        /// A pipeline of valid requests (multibulk, inline, empty) gives the same commands fed
        /// byte by byte, in random chunk sizes, or at once; the query buffer is never lost.
        #[test]
        fn chunked_pipeline_equals_one_shot(
            reqs in prop::collection::vec(request(), 1..8),
            cut in cuts(),
        ) {
            let input: Vec<u8> = reqs.iter().flat_map(|(w, _)| w.clone()).collect();
            let expect: Cmds = reqs.iter().map(|(_, a)| a.clone()).collect();
            let limits = ParserLimits::default();
            prop_assert_eq!(&parse_all(&input).unwrap(), &expect);
            for cut in [&[1usize][..], &cut[..], &[input.len()][..]] {
                let got = feed(&input, cut, &limits, true);
                prop_assert_eq!(&got.err, &None);
                prop_assert_eq!(&got.cmds, &expect);
                prop_assert_eq!(got.qbuf.last().copied(), Some(0));
            }
        }

        /// Any protocol-like bytes, split anywhere, under tight or unauthenticated limits: the
        /// incremental parser returns the same commands and the same error as the re-parsing
        /// reference fed the same reads, and the whole query buffer (`buf.len() +
        /// pending_len()`) matches the reference's buffer after every read. The commands and the
        /// error also match a one-shot parse whenever the reference's do.
        #[test]
        fn matches_reference_however_split(
            input in protocolish(),
            cut in cuts(),
            auth in any::<bool>(),
            max_bulk_len in prop_oneof![Just(512i64 * 1024 * 1024), 0i64..48],
            max_multibulk_len in prop_oneof![Just(i32::MAX as i64), 0i64..12],
        ) {
            let limits = ParserLimits { max_bulk_len, max_multibulk_len };
            for cut in [&[1usize][..], &cut[..], &[input.len().max(1)][..]] {
                let want = feed_reference(&input, cut, &limits, auth);
                let got = feed(&input, cut, &limits, auth);
                prop_assert_eq!(&got.cmds, &want.cmds);
                prop_assert_eq!(&got.err, &want.err);
                prop_assert_eq!(&got.qbuf, &want.qbuf);
            }
        }
    }
}
