//! Request parser: turns the bytes a client sent into commands (argument vectors).
//!
//! We write this ourselves rather than use a RESP crate because the server needs three things
//! together that no crate gives: zero-copy argument slices (`Bytes` views into the read buffer,
//! cheap to send to another shard), Redis's exact protocol error texts and limits, and resumable
//! parsing of a half-received request without rescanning a huge bulk on every read.
//!
//! Two request forms exist, as in Redis (`networking.c`, `processMultibulkBuffer` and
//! `processInlineBuffer`):
//!
//! ```text
//! *2\r\n$3\r\nGET\r\n$3\r\nkey\r\n      multibulk: what every client library sends
//! GET key\r\n                           inline: what telnet/nc users type (quotes allowed)
//! ```
//!
//! Invariant: `parse` either consumes exactly one whole request from the front of the buffer, or
//! consumes nothing. A protocol error is final: the connection replies with the error and closes.

use bytes::{Bytes, BytesMut};

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
    /// More bytes are needed; `need` is a lower bound on the total buffer length required
    /// before it is worth trying again (0 when unknown).
    Incomplete { need: usize },
}

/// Parses one request from the front of `buf`. `authenticated` = false applies Redis's tighter
/// limits for clients that have not authenticated yet (at most 10 arguments of 16 KiB).
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
    // Redis looks for '\r' and then assumes '\n' follows; we look for "\r\n" but treat a lone '\r'
    // at the end as incomplete.
    // Redis does not check the byte after '\r'; it just skips two bytes.
    let at = from + memchr(b'\r', &buf[from..])?;
    if at + 1 >= buf.len() {
        return None;
    }
    Some(at)
}

#[inline]
fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
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
        if buf[pos] != b'$' {
            return Err(ProtocolError(expected_dollar(buf[pos])));
        }
        let Some(nl) = find_crlf_line(buf, pos) else {
            if buf.len() - pos > INLINE_MAX_SIZE {
                return Err(ProtocolError("too big bulk count string"));
            }
            return Ok(Parsed::Incomplete { need: 0 });
        };
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

/// Redis's message for a multibulk element that does not start with '$'.
fn expected_dollar(got: u8) -> &'static str {
    // Redis formats "expected '$', got '%c'"; the set of bytes is finite, so we keep a table of
    // static strings for the printable ones and fall back to a generic one.
    const TABLE: [&str; 95] = [
        "expected '$', got ' '",
        "expected '$', got '!'",
        "expected '$', got '\"'",
        "expected '$', got '#'",
        "expected '$', got '$'",
        "expected '$', got '%'",
        "expected '$', got '&'",
        "expected '$', got '''",
        "expected '$', got '('",
        "expected '$', got ')'",
        "expected '$', got '*'",
        "expected '$', got '+'",
        "expected '$', got ','",
        "expected '$', got '-'",
        "expected '$', got '.'",
        "expected '$', got '/'",
        "expected '$', got '0'",
        "expected '$', got '1'",
        "expected '$', got '2'",
        "expected '$', got '3'",
        "expected '$', got '4'",
        "expected '$', got '5'",
        "expected '$', got '6'",
        "expected '$', got '7'",
        "expected '$', got '8'",
        "expected '$', got '9'",
        "expected '$', got ':'",
        "expected '$', got ';'",
        "expected '$', got '<'",
        "expected '$', got '='",
        "expected '$', got '>'",
        "expected '$', got '?'",
        "expected '$', got '@'",
        "expected '$', got 'A'",
        "expected '$', got 'B'",
        "expected '$', got 'C'",
        "expected '$', got 'D'",
        "expected '$', got 'E'",
        "expected '$', got 'F'",
        "expected '$', got 'G'",
        "expected '$', got 'H'",
        "expected '$', got 'I'",
        "expected '$', got 'J'",
        "expected '$', got 'K'",
        "expected '$', got 'L'",
        "expected '$', got 'M'",
        "expected '$', got 'N'",
        "expected '$', got 'O'",
        "expected '$', got 'P'",
        "expected '$', got 'Q'",
        "expected '$', got 'R'",
        "expected '$', got 'S'",
        "expected '$', got 'T'",
        "expected '$', got 'U'",
        "expected '$', got 'V'",
        "expected '$', got 'W'",
        "expected '$', got 'X'",
        "expected '$', got 'Y'",
        "expected '$', got 'Z'",
        "expected '$', got '['",
        "expected '$', got '\\'",
        "expected '$', got ']'",
        "expected '$', got '^'",
        "expected '$', got '_'",
        "expected '$', got '`'",
        "expected '$', got 'a'",
        "expected '$', got 'b'",
        "expected '$', got 'c'",
        "expected '$', got 'd'",
        "expected '$', got 'e'",
        "expected '$', got 'f'",
        "expected '$', got 'g'",
        "expected '$', got 'h'",
        "expected '$', got 'i'",
        "expected '$', got 'j'",
        "expected '$', got 'k'",
        "expected '$', got 'l'",
        "expected '$', got 'm'",
        "expected '$', got 'n'",
        "expected '$', got 'o'",
        "expected '$', got 'p'",
        "expected '$', got 'q'",
        "expected '$', got 'r'",
        "expected '$', got 's'",
        "expected '$', got 't'",
        "expected '$', got 'u'",
        "expected '$', got 'v'",
        "expected '$', got 'w'",
        "expected '$', got 'x'",
        "expected '$', got 'y'",
        "expected '$', got 'z'",
        "expected '$', got '{'",
        "expected '$', got '|'",
        "expected '$', got '}'",
        "expected '$', got '~'",
    ];
    if (b' '..=b'~').contains(&got) {
        TABLE[(got - b' ') as usize]
    } else {
        "expected '$', got something else"
    }
}

fn parse_inline(buf: &mut BytesMut) -> Result<Parsed, ProtocolError> {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > INLINE_MAX_SIZE {
            return Err(ProtocolError("too big inline request"));
        }
        return Ok(Parsed::Incomplete { need: 0 });
    };
    let mut end = nl;
    if end > 0 && buf[end - 1] == b'\r' {
        end -= 1;
    }
    let args = split_args(&buf[..end]).ok_or(ProtocolError("unbalanced quotes in request"))?;
    let _ = buf.split_to(nl + 1);
    Ok(Parsed::Command(args.into_iter().map(Bytes::from).collect()))
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

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut buf = BytesMut::from(input);
        let mut out = vec![];
        loop {
            match parse(&mut buf, &ParserLimits::default(), true)? {
                Parsed::Command(args) => out.push(args.iter().map(|a| a.to_vec()).collect()),
                Parsed::Incomplete { .. } => return Ok(out),
            }
        }
    }

    #[test]
    fn multibulk_pipeline() {
        let cmds = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(
            cmds,
            vec![vec![b"GET".to_vec(), b"k".to_vec()], vec![b"PING".to_vec()]]
        );
    }

    #[test]
    fn incomplete_consumes_nothing() {
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$10\r\nabc"[..]);
        let r = parse(&mut buf, &ParserLimits::default(), true).unwrap();
        assert_eq!(
            r,
            Parsed::Incomplete {
                need: 4 + 9 + 5 + 12
            }
        );
        assert_eq!(buf.len(), 21);
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

    proptest::proptest! {
        #[test]
        fn any_bytes_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_all(&data);
        }

        #[test]
        fn roundtrip_multibulk(args in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..40), 1..8)) {
            let mut wire = format!("*{}\r\n", args.len()).into_bytes();
            for a in &args {
                wire.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                wire.extend_from_slice(a);
                wire.extend_from_slice(b"\r\n");
            }
            // Feed byte by byte: must yield exactly one command at the end.
            let mut buf = BytesMut::new();
            let mut got = None;
            for b in wire {
                buf.extend_from_slice(&[b]);
                if let Parsed::Command(c) = parse(&mut buf, &ParserLimits::default(), true).unwrap() {
                    got = Some(c);
                }
            }
            let got: Vec<Vec<u8>> = got.unwrap().iter().map(|a| a.to_vec()).collect();
            proptest::prop_assert_eq!(got, args);
        }
    }
}
