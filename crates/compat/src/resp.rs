//! Framing of raw RESP2/RESP3 replies: where one complete reply ends, how to split an aggregate
//! into its top-level elements, and how to print bytes readably.

/// Why a byte stream is not a well-formed RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError(pub String);

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    if from >= buf.len() {
        return None;
    }
    buf[from..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| from + i)
}

fn parse_len(line: &[u8], at: usize) -> Result<i64, FrameError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| FrameError(format!("bad length {} at byte {at}", escape(line))))
}

/// Where the complete reply starting at `start` ends (exclusive index), `Ok(None)` when more
/// bytes are needed. Understands every RESP2/RESP3 type: `+ - : $ * _ , # ! = ( % ~ | >`,
/// nested aggregates, the null bulk `$-1` and null array `*-1`, and attributes (`|`, which are
/// followed by the reply they annotate: both together form one reply).
pub fn frame_end(buf: &[u8], start: usize) -> Result<Option<usize>, FrameError> {
    if start >= buf.len() {
        return Ok(None);
    }
    let t = buf[start];
    let Some(le) = find_crlf(buf, start + 1) else {
        return Ok(None);
    };
    let line = &buf[start + 1..le];
    let after = le + 2;
    match t {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(after)),
        b'$' | b'!' | b'=' => {
            let n = parse_len(line, start)?;
            if n == -1 && t == b'$' {
                return Ok(Some(after));
            }
            if n < 0 {
                return Err(FrameError(format!(
                    "negative length {n} for type '{}'",
                    t as char
                )));
            }
            let end = after + n as usize + 2;
            if buf.len() < end {
                return Ok(None);
            }
            if &buf[end - 2..end] != b"\r\n" {
                return Err(FrameError(format!(
                    "bulk payload at byte {start} not followed by CRLF"
                )));
            }
            Ok(Some(end))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = parse_len(line, start)?;
            if n == -1 && t == b'*' {
                return Ok(Some(after));
            }
            if n < 0 {
                return Err(FrameError(format!(
                    "negative count {n} for type '{}'",
                    t as char
                )));
            }
            let count = if t == b'%' || t == b'|' { 2 * n } else { n };
            let mut p = after;
            for _ in 0..count {
                match frame_end(buf, p)? {
                    Some(e) => p = e,
                    None => return Ok(None),
                }
            }
            if t == b'|' {
                // An attribute is followed by the reply it annotates.
                return frame_end(buf, p);
            }
            Ok(Some(p))
        }
        other => Err(FrameError(format!(
            "unknown RESP type byte {} at byte {start}",
            escape(&[other])
        ))),
    }
}

/// Splits `reply` (exactly one complete reply) into its header line and top-level units. For
/// arrays, sets and pushes a unit is an element; for maps a unit is a key+value pair. Returns
/// `None` for non-aggregates (and null arrays).
pub fn split_aggregate(reply: &[u8]) -> Option<(&[u8], Vec<&[u8]>)> {
    let t = *reply.first()?;
    if !matches!(t, b'*' | b'~' | b'>' | b'%') {
        return None;
    }
    let le = find_crlf(reply, 1)?;
    let n = std::str::from_utf8(&reply[1..le])
        .ok()?
        .parse::<i64>()
        .ok()?;
    if n < 0 {
        return None;
    }
    let per_unit = if t == b'%' { 2 } else { 1 };
    let header = &reply[..le + 2];
    let mut units = Vec::with_capacity(n as usize);
    let mut p = le + 2;
    for _ in 0..n {
        let unit_start = p;
        for _ in 0..per_unit {
            p = frame_end(reply, p).ok()??;
        }
        units.push(&reply[unit_start..p]);
    }
    Some((header, units))
}

/// The reply with its top-level elements (or map pairs) sorted bytewise; non-aggregates are
/// returned unchanged.
pub fn sort_reply(reply: &[u8]) -> Vec<u8> {
    match split_aggregate(reply) {
        Some((header, mut units)) => {
            units.sort();
            let mut out = header.to_vec();
            for u in units {
                out.extend_from_slice(u);
            }
            out
        }
        None => reply.to_vec(),
    }
}

/// The reply with the elements (map pairs) of every aggregate, at every depth, sorted bytewise:
/// for replies whose nested order is unspecified (COMMAND INFO's and COMMAND DOCS's
/// subcommands come from a hash table). Non-aggregates are returned unchanged.
pub fn sort_reply_deep(reply: &[u8]) -> Vec<u8> {
    match split_aggregate(reply) {
        Some((header, units)) => {
            let mut units: Vec<Vec<u8>> = units
                .into_iter()
                .map(|u| {
                    // A map pair is two frames: sort inside each.
                    let mut out = Vec::with_capacity(u.len());
                    let mut p = 0;
                    while p < u.len() {
                        let e = match frame_end(u, p) {
                            Ok(Some(e)) => e,
                            _ => u.len(),
                        };
                        out.extend(sort_reply_deep(&u[p..e]));
                        p = e;
                    }
                    out
                })
                .collect();
            units.sort();
            let mut out = header.to_vec();
            for u in units {
                out.extend(u);
            }
            out
        }
        None => reply.to_vec(),
    }
}

/// True when `reply` is a 2-element array whose first element is a bulk string (SCAN's shape).
pub fn is_scan_shaped(reply: &[u8]) -> bool {
    match split_aggregate(reply) {
        Some((header, units)) => {
            header[0] == b'*'
                && units.len() == 2
                && units[0].first() == Some(&b'$')
                && units[0] != b"$-1\r\n"
        }
        None => false,
    }
}

/// Bytes as a double-quoted string: printable ASCII as is, `\r \n \t \\ \"` escaped, anything
/// else as `\xHH`. Long values are shown whole.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

/// Reverses the escapes used by `!raw` lines: `\r \n \t \0 \\ \" \xHH`, and `\{N:c}` for N copies of
/// the character `c` (long lines without long case files); any other backslash is kept
/// literally.
pub fn unescape_raw(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'0' => out.push(0),
                b'\\' => out.push(b'\\'),
                b'"' => out.push(b'"'),
                b'{' => {
                    let close = s[i..]
                        .find('}')
                        .ok_or_else(|| format!("unterminated \\{{N:c}} escape in {s:?}"))?;
                    let body = &s[i + 2..i + close];
                    let (n, c) = body
                        .split_once(':')
                        .filter(|(_, c)| c.chars().count() == 1)
                        .ok_or_else(|| format!("bad \\{{N:c}} escape in {s:?}"))?;
                    let n: usize = n
                        .parse()
                        .map_err(|_| format!("bad \\{{N:c}} count in {s:?}"))?;
                    let mut ch = [0u8; 4];
                    out.extend(
                        c.chars()
                            .next()
                            .unwrap_or('?')
                            .encode_utf8(&mut ch)
                            .as_bytes()
                            .repeat(n),
                    );
                    i += close + 1;
                    continue;
                }
                b'x' => {
                    let hex = b
                        .get(i + 2..i + 4)
                        .ok_or_else(|| format!("truncated \\x escape in {s:?}"))?;
                    let hex =
                        std::str::from_utf8(hex).map_err(|_| format!("bad \\x escape in {s:?}"))?;
                    out.push(
                        u8::from_str_radix(hex, 16)
                            .map_err(|_| format!("bad \\x escape in {s:?}"))?,
                    );
                    i += 4;
                    continue;
                }
                _ => {
                    out.push(b'\\');
                    i += 1;
                    continue;
                }
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(s: &[u8]) -> Option<usize> {
        frame_end(s, 0).unwrap()
    }

    #[test]
    fn frames_every_type() {
        for r in [
            &b"+OK\r\n"[..],
            b"-ERR x\r\n",
            b":-12\r\n",
            b"$-1\r\n",
            b"$0\r\n\r\n",
            b"$3\r\na\r\n\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
            b"_\r\n",
            b",3.5\r\n",
            b"#t\r\n",
            b"!3\r\nERR\r\n",
            b"=7\r\ntxt:abc\r\n",
            b"(123456789012345678901234567890\r\n",
            b"%1\r\n+a\r\n:1\r\n",
            b"~2\r\n+a\r\n+b\r\n",
            b"|1\r\n+k\r\n+v\r\n:5\r\n",
            b">2\r\n+message\r\n+x\r\n",
        ] {
            assert_eq!(whole(r), Some(r.len()), "{}", escape(r));
            for cut in 0..r.len() {
                assert_eq!(whole(&r[..cut]), None, "{} cut at {cut}", escape(r));
            }
        }
        assert!(frame_end(b"?x\r\n", 0).is_err());
        assert!(frame_end(b"$3\r\nabcde\r\n", 0).is_err());
    }

    #[test]
    fn sorts_and_scans() {
        assert_eq!(
            sort_reply(b"*2\r\n$1\r\nb\r\n$1\r\na\r\n"),
            b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"
        );
        assert_eq!(
            sort_reply(b"%2\r\n+b\r\n:1\r\n+a\r\n:2\r\n"),
            b"%2\r\n+a\r\n:2\r\n+b\r\n:1\r\n"
        );
        assert_eq!(sort_reply(b":1\r\n"), b":1\r\n");
        assert!(is_scan_shaped(b"*2\r\n$1\r\n0\r\n*0\r\n"));
        assert!(!is_scan_shaped(b"-ERR invalid cursor\r\n"));
    }

    #[test]
    fn escapes() {
        assert_eq!(escape(b"$-1\r\n"), "\"$-1\\r\\n\"");
        assert_eq!(unescape_raw("*1\\r\\n\\x41\\q").unwrap(), b"*1\r\nA\\q");
        assert_eq!(unescape_raw("a\\{3:v}b\\{0:x}\\{2::}").unwrap(), b"avvvb::");
        assert!(unescape_raw("\\{3:vv}").is_err());
        assert!(unescape_raw("\\{x:v}").is_err());
        assert!(unescape_raw("\\{3:v").is_err());
    }
}
