//! Reply builder: writes replies straight into an output buffer in the connection's protocol.
//!
//! Every reply goes through one `ReplyBuilder`, which knows whether the client speaks RESP2 or
//! RESP3 (`HELLO 3`) and picks the wire form: a null is `$-1` or `_`, a map is a flat array of
//! 2N or `%N`, a double is a bulk string or `,`. Command code states what it means ("a map of
//! two entries"), never the bytes, so a command cannot answer in the wrong protocol.
//!
//! Invariant: each call appends exactly one RESP element (or a header that the caller follows
//! with exactly the announced number of elements).

/// The protocol a connection negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

/// Appends RESP replies to a byte buffer.
#[derive(Debug, Default)]
pub struct ReplyBuilder {
    pub buf: Vec<u8>,
    pub proto: Protocol,
    /// Errors emitted since the last `take_error_count`, for INFO errorstats.
    pub errors: u32,
}

fn push_int(buf: &mut Vec<u8>, v: i64) {
    let mut tmp = [0u8; 20];
    let mut n = v.unsigned_abs();
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        buf.push(b'-');
    }
    buf.extend_from_slice(&tmp[i..]);
}

impl ReplyBuilder {
    pub fn new(proto: Protocol) -> Self {
        ReplyBuilder {
            buf: Vec::new(),
            proto,
            errors: 0,
        }
    }

    pub fn is_resp3(&self) -> bool {
        self.proto == Protocol::Resp3
    }

    fn header(&mut self, prefix: u8, n: i64) {
        self.buf.push(prefix);
        push_int(&mut self.buf, n);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `+OK`
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// A status reply: `+<s>`. `s` must not contain CR or LF.
    pub fn simple(&mut self, s: &str) {
        self.buf.push(b'+');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An error reply; `msg` is the full text including its prefix (`ERR ...`, `WRONGTYPE ...`).
    /// Newlines are replaced by spaces as Redis does, so the reply stays one line.
    pub fn error(&mut self, msg: &str) {
        self.error_bytes(msg.as_bytes());
    }

    /// `error` for a text that carries client bytes verbatim (not necessarily UTF-8), as
    /// Redis echoes them in "unknown command" errors.
    pub fn error_bytes(&mut self, msg: &[u8]) {
        self.errors += 1;
        self.buf.push(b'-');
        for &b in msg {
            self.buf
                .push(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn int(&mut self, v: i64) {
        self.buf.push(b':');
        push_int(&mut self.buf, v);
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn bulk(&mut self, data: &[u8]) {
        self.header(b'$', data.len() as i64);
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A bulk string holding the decimal form of `v` (what GET returns for an integer value).
    pub fn bulk_int(&mut self, v: i64) {
        let mut tmp = Vec::with_capacity(20);
        push_int(&mut tmp, v);
        self.bulk(&tmp);
    }

    /// The null bulk string: `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        if self.is_resp3() {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }

    /// The null array: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        if self.is_resp3() {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"*-1\r\n");
        }
    }

    pub fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }

    /// A map of `n` key/value pairs: `%n` in RESP3, a flat array of `2n` in RESP2.
    pub fn map(&mut self, n: usize) {
        if self.is_resp3() {
            self.header(b'%', n as i64);
        } else {
            self.header(b'*', 2 * n as i64);
        }
    }

    /// A set of `n` elements: `~n` in RESP3, an array in RESP2.
    pub fn set(&mut self, n: usize) {
        if self.is_resp3() {
            self.header(b'~', n as i64);
        } else {
            self.header(b'*', n as i64);
        }
    }

    /// A push message header (`>n`), RESP3 only; RESP2 gets an array.
    pub fn push(&mut self, n: usize) {
        if self.is_resp3() {
            self.header(b'>', n as i64);
        } else {
            self.header(b'*', n as i64);
        }
    }

    /// A double as Redis 7.0's `addReplyDouble`: `%.17g`, bulk in RESP2, `,` in RESP3.
    pub fn double(&mut self, d: f64) {
        let s = format_double(d);
        if self.is_resp3() {
            self.buf.push(b',');
            self.buf.extend_from_slice(s.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s.as_bytes());
        }
    }

    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    pub fn boolean(&mut self, b: bool) {
        if self.is_resp3() {
            self.buf
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }

    /// A verbatim string (`=len\r\ntxt:...`) in RESP3, a bulk string in RESP2.
    pub fn verbatim(&mut self, data: &[u8]) {
        if self.is_resp3() {
            self.header(b'=', data.len() as i64 + 4);
            self.buf.extend_from_slice(b"txt:");
            self.buf.extend_from_slice(data);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(data);
        }
    }

    /// Appends bytes already encoded for this protocol (from a shard's reply buffer).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
}

/// Formats a double like C's `printf("%.17g")` with Redis's inf/nan spelling.
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    format_g(d, 17)
}

/// C's `%.<prec>g` for a finite double.
pub fn format_g(d: f64, prec: usize) -> String {
    let prec = prec.max(1);
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Scientific form with prec significant digits gives the exponent after rounding.
    let sci = format!("{:.*e}", prec - 1, d);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", mant, sign, exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, d)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_depends_on_protocol() {
        let mut r2 = ReplyBuilder::new(Protocol::Resp2);
        r2.null();
        r2.null_array();
        r2.map(1);
        assert_eq!(r2.buf, b"$-1\r\n*-1\r\n*2\r\n");
        let mut r3 = ReplyBuilder::new(Protocol::Resp3);
        r3.null();
        r3.null_array();
        r3.map(1);
        assert_eq!(r3.buf, b"_\r\n_\r\n%1\r\n");
    }

    #[test]
    fn ints_and_bulks() {
        let mut r = ReplyBuilder::default();
        r.int(i64::MIN);
        r.bulk(b"hi");
        r.bulk_int(-5);
        assert_eq!(r.buf, b":-9223372036854775808\r\n$2\r\nhi\r\n$2\r\n-5\r\n");
    }

    #[test]
    fn errors_are_single_line() {
        let mut r = ReplyBuilder::default();
        r.error("ERR a\nb");
        assert_eq!(r.buf, b"-ERR a b\r\n");
        assert_eq!(r.errors, 1);
    }

    #[test]
    fn percent_g_matches_c() {
        assert_eq!(format_g(3.0, 17), "3");
        assert_eq!(format_g(0.1, 17), "0.10000000000000001");
        assert_eq!(format_g(1e20, 17), "1e+20");
        assert_eq!(format_g(1.5e-5, 17), "1.5e-05");
        assert_eq!(format_g(123456.0, 6), "123456");
        assert_eq!(format_g(1234567.0, 6), "1.23457e+06");
        assert_eq!(format_double(f64::INFINITY), "inf");
    }
}
