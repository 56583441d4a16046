//! Redis glob-style pattern matching: an exact port of Redis 7.0's
//! `stringmatchlen` (`util.c`), as used by KEYS, SCAN MATCH, PSUBSCRIBE,
//! CONFIG GET and friends.
//!
//! Syntax (all of it byte-oriented, no UTF-8 awareness, like Redis):
//!
//! * `*` matches any run of bytes; consecutive stars collapse into one.
//! * `?` matches exactly one byte.
//! * `[abc]`, `[^abc]` (negated), `[a-z]` (ranges; reversed ranges such as
//!   `[z-a]` are accepted and mean the same as `[a-z]`), `\x` inside brackets
//!   matches `x` literally.
//! * `\x` outside brackets matches `x` literally; a trailing lone `\`
//!   matches a `\`.
//! * With `nocase`, bytes are compared after ASCII lower-casing (the C
//!   locale `tolower`; bytes >= 0x80 are left alone).
//!
//! Quirks reproduced on purpose, because they are observable through
//! KEYS / SCAN / PSUBSCRIBE / CONFIG GET:
//!
//! * `stringmatchlen` only reports a match when pattern and string run out
//!   together, and its main loop does not run at all on an empty string, so
//!   `*` (or `**`) does **not** match `""`. Redis special-cases the
//!   single-`*` pattern in KEYS and SCAN; callers that want `KEYS *` to list
//!   an empty key must do the same.
//! * An unterminated `[` set extends to the end of the pattern: `[abc`
//!   behaves like `[abc]`, and `[` alone never matches; `[^` matches any
//!   single byte.
//! * In `[a-]` the `-` is taken as a range up to `]`, i.e. `[a-]` is the
//!   (reversed) range `]..=a` and the set is unterminated.
//! * Range bounds are compared as C `char`, which is signed on x86-64 and
//!   what Redis is built with: bytes >= 0x80 sort *before* ASCII, so
//!   `[a-\xff]` is the range `\xff..=a` (-1..=97) and matches `0` but not
//!   `b`.
//! * With `nocase`, range bounds are lower-cased after being ordered, so
//!   `[A-z]` with `nocase` is `[a-z]` (no `[`, `_`, ...), and an escaped
//!   byte inside brackets (`[\A]`) is compared case-sensitively.
//!
//! Redis 7.0.10+ guards against exponential backtracking
//! (`skipLongerMatches`, CVE-2022-36021): once a `*` has tried every
//! remaining suffix of the string without success, no earlier `*` needs to
//! try a longer match, so the whole match fails at once. Because of that
//! guard, only the innermost `*` is ever resumed; this port therefore runs
//! iteratively with a single backtrack point. The result is identical to the
//! recursive C code, the running time is O(pattern × string) in the worst
//! case, and the stack depth is constant (a long `*a*a*a...` pattern cannot
//! overflow a small thread stack).

/// Does `string` match the Redis glob `pattern`? (`stringmatchlen`.)
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut outcome = run(pattern, 0, string, 0, nocase);
    // The innermost `*` seen so far: (pattern index just after it, index of
    // the string position its remainder is being tried at).
    let mut star: Option<(usize, usize)> = None;
    loop {
        match outcome {
            Outcome::Done(true) => return true,
            Outcome::Done(false) => match star.as_mut() {
                None => return false,
                Some((rest, at)) => {
                    *at += 1;
                    if *at >= string.len() {
                        // The star exhausted the string: `skipLongerMatches`
                        // makes every enclosing level give up too.
                        return false;
                    }
                    outcome = run(pattern, *rest, string, *at, nocase);
                }
            },
            Outcome::Star { rest, at } => {
                star = Some((rest, at));
                outcome = run(pattern, rest, string, at, nocase);
            }
        }
    }
}

/// Result of running the non-recursive part of `stringmatchlen_impl`.
enum Outcome {
    /// The (sub)match finished with this result.
    Done(bool),
    /// A non-final `*` was reached while the string was not exhausted: the
    /// rest of the pattern (from `rest`) must be tried against every suffix
    /// of the string starting at `at`, `at + 1`, ..., `len - 1`.
    Star { rest: usize, at: usize },
}

/// C-locale `tolower` on a value that came from a (signed) `char`.
#[inline]
fn lower(c: i32) -> i32 {
    if (b'A' as i32..=b'Z' as i32).contains(&c) {
        c + 32
    } else {
        c
    }
}

/// A byte read as a C `char` (signed on the platforms Redis ships for).
#[inline]
fn schar(b: u8) -> i32 {
    b as i8 as i32
}

#[inline]
fn eq(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        lower(schar(a)) == lower(schar(b))
    } else {
        a == b
    }
}

/// The body of `stringmatchlen_impl` starting at pattern index `pi` and
/// string index `si`, up to the first `*` that needs backtracking.
fn run(p: &[u8], mut pi: usize, s: &[u8], mut si: usize, nocase: bool) -> Outcome {
    let plen = p.len();
    let slen = s.len();
    // C reads the NUL terminator just past the pattern in a few places.
    let at = |i: usize| -> u8 {
        if i < plen {
            p[i]
        } else {
            0
        }
    };
    while pi < plen && si < slen {
        match p[pi] {
            b'*' => {
                while pi < plen && at(pi + 1) == b'*' {
                    pi += 1;
                }
                if plen - pi == 1 {
                    return Outcome::Done(true);
                }
                return Outcome::Star {
                    rest: pi + 1,
                    at: si,
                };
            }
            b'?' => {
                si += 1;
            }
            b'[' => {
                pi += 1;
                let not = at(pi) == b'^';
                if not {
                    pi += 1;
                }
                let mut matched = false;
                let c = s[si];
                loop {
                    let remaining = plen - pi;
                    if at(pi) == b'\\' && remaining >= 2 {
                        pi += 1;
                        if p[pi] == c {
                            matched = true;
                        }
                    } else if at(pi) == b']' {
                        break;
                    } else if remaining == 0 {
                        pi -= 1;
                        break;
                    } else if remaining >= 3 && p[pi + 1] == b'-' {
                        let (mut start, mut end) = (schar(p[pi]), schar(p[pi + 2]));
                        let mut ch = schar(c);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = lower(start);
                            end = lower(end);
                            ch = lower(ch);
                        }
                        pi += 2;
                        if ch >= start && ch <= end {
                            matched = true;
                        }
                    } else if eq(p[pi], c, nocase) {
                        matched = true;
                    }
                    pi += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return Outcome::Done(false);
                }
                si += 1;
            }
            b => {
                let b = if b == b'\\' && plen - pi >= 2 {
                    pi += 1;
                    p[pi]
                } else {
                    b
                };
                if !eq(b, s[si], nocase) {
                    return Outcome::Done(false);
                }
                si += 1;
            }
        }
        pi += 1;
        if si == slen {
            while at(pi) == b'*' {
                pi += 1;
            }
            break;
        }
    }
    Outcome::Done(pi == plen && si == slen)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), false)
    }
    fn mi(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), true)
    }

    /// (pattern, string, case-sensitive result, nocase result).
    ///
    /// The case-sensitive column was checked against redis-server 7.0.15
    /// with `KEYS` (which calls `stringmatchlen(.., nocase=0)`), except for
    /// the `*`-only patterns against "", where KEYS special-cases `*`.
    const TABLE: &[(&[u8], &[u8], bool, bool)] = &[
        // literals
        (b"", b"", true, true),
        (b"", b"a", false, false),
        (b"a", b"", false, false),
        (b"abc", b"abc", true, true),
        (b"abc", b"abd", false, false),
        (b"abc", b"ab", false, false),
        (b"ab", b"abc", false, false),
        (b"abc", b"ABC", false, true),
        (b"ABC", b"abc", false, true),
        // star
        (b"*", b"", false, false),
        (b"**", b"", false, false),
        (b"*", b"a", true, true),
        (b"*", b"anything at all", true, true),
        (b"a*", b"a", true, true),
        (b"a*", b"abc", true, true),
        (b"a**", b"a", true, true),
        (b"a*b", b"ab", true, true),
        (b"a*b", b"axxxb", true, true),
        (b"a*b", b"axxxbc", false, false),
        (b"a*b*c", b"abc", true, true),
        (b"a*b*c", b"aXbYbZc", true, true),
        (b"a*b*c", b"aXbYbZ", false, false),
        (b"*a", b"a", true, true),
        (b"*a", b"ba", true, true),
        (b"*a", b"ab", false, false),
        (b"***a", b"bbba", true, true),
        (b"*.*", b"file.txt", true, true),
        (b"*.*", b"file", false, false),
        (b"h*llo", b"hllo", true, true),
        (b"h*llo", b"heeeello", true, true),
        (b"*ab*ab*", b"xxabyyab", true, true),
        (b"*ab*ab*", b"xxabyya", false, false),
        (b"*aa", b"aaa", true, true),
        (b"a*a*a", b"aa", false, false),
        (b"a*a*a", b"aaa", true, true),
        // question mark
        (b"?", b"", false, false),
        (b"?", b"a", true, true),
        (b"?", b"ab", false, false),
        (b"h?llo", b"hello", true, true),
        (b"h?llo", b"hllo", false, false),
        (b"??", b"ab", true, true),
        (b"*?", b"a", true, true),
        (b"?*", b"a", true, true),
        (b"*?", b"", false, false),
        (b"*??", b"a", false, false),
        // sets
        (b"h[ae]llo", b"hello", true, true),
        (b"h[ae]llo", b"hallo", true, true),
        (b"h[ae]llo", b"hillo", false, false),
        (b"h[ae]llo", b"hEllo", false, true),
        (b"h[^e]llo", b"hallo", true, true),
        (b"h[^e]llo", b"hello", false, false),
        (b"h[^e]llo", b"hEllo", true, false),
        (b"h[a-b]llo", b"hallo", true, true),
        (b"h[a-b]llo", b"hbllo", true, true),
        (b"h[a-b]llo", b"hcllo", false, false),
        (b"h[b-a]llo", b"hallo", true, true),
        (b"[z-a]", b"m", true, true),
        (b"[a-c]", b"B", false, true),
        (b"[A-C]", b"b", false, true),
        (b"[^a-c]", b"d", true, true),
        (b"[^a-c]", b"b", false, false),
        (b"[]", b"a", false, false),
        (b"[]", b"]", false, false),
        (b"[]]", b"]", false, false),
        (b"[]a]", b"a", false, false),
        (b"[\\]]", b"]", true, true),
        (b"[\\]a]", b"a", true, true),
        (b"[\\-]", b"-", true, true),
        (b"[a\\-z]", b"b", false, false),
        (b"[a\\-z]", b"-", true, true),
        (b"[\\^a]", b"^", true, true),
        (b"[^]", b"a", true, true),
        (b"[-a]", b"-", true, true),
        (b"[a-]", b"-", false, false),
        (b"[a-]", b"]", true, true),
        (b"[a-]", b"^", true, true),
        (b"[a-]x", b"^", true, true),
        (b"[!a]", b"!", true, true),
        (b"[!a]", b"b", false, false),
        (b"[abc", b"a", true, true),
        (b"[abc", b"d", false, false),
        (b"[abc", b"ab", false, false),
        (b"[", b"[", false, false),
        (b"[", b"", false, false),
        (b"[^", b"x", true, true),
        (b"[^", b"xy", false, false),
        (b"a[", b"a[", false, false),
        (b"a[", b"a", false, false),
        (b"[\\", b"\\", true, true),
        (b"[a-", b"-", true, true),
        (b"[a-", b"a", true, true),
        (b"[a-b", b"b", true, true),
        (b"*[ab]", b"xxb", true, true),
        (b"*[ab]*", b"xxbyy", true, true),
        (b"[[]", b"[", true, true),
        (b"[*]", b"*", true, true),
        (b"[*]", b"a", false, false),
        (b"[?]", b"?", true, true),
        // escapes
        (b"\\*", b"*", true, true),
        (b"\\*", b"a", false, false),
        (b"\\?", b"?", true, true),
        (b"\\[", b"[", true, true),
        (b"\\a", b"a", true, true),
        (b"\\a", b"A", false, true),
        (b"\\\\", b"\\", true, true),
        (b"\\", b"\\", true, true),
        (b"a\\", b"a\\", true, true),
        (b"a\\", b"a", false, false),
        (b"*\\*", b"ab*", true, true),
        (b"*\\*", b"ab", false, false),
        (b"h\\*llo", b"h*llo", true, true),
        (b"h\\*llo", b"hello", false, false),
        // escapes inside sets are case-sensitive even with nocase
        (b"[\\A]", b"a", false, false),
        (b"[\\a]", b"a", true, true),
        // nocase ranges are lower-cased after ordering
        (b"[A-z]", b"[", true, false),
        (b"[A-z]", b"_", true, false),
        (b"[A-z]", b"Q", true, true),
        (b"[Z-a]", b"[", true, false),
        // high bytes: signed char ordering
        (b"[a-\xff]", b"b", false, false),
        (b"[a-\xff]", b"0", true, true),
        (b"[a-\xff]", b"\xff", true, true),
        (b"[a-\xff]", b"\x80", false, false),
        (b"[\x80-\xff]", b"\x90", true, true),
        (b"[\x80-\xff]", b"a", false, false),
        (b"\xc3\xa9*", b"\xc3\xa9t\xc3\xa9", true, true),
        (b"\xc3\x89", b"\xc3\xa9", false, false),
        (b"?", b"\xc3\xa9", false, false),
        (b"??", b"\xc3\xa9", true, true),
        // NUL bytes are ordinary
        (b"a\0b", b"a\0b", true, true),
        (b"a?b", b"a\0b", true, true),
        (b"*\0", b"xx\0", true, true),
        (b"[\0]", b"\0", true, true),
        // redis keyspace-ish patterns
        (b"user:*", b"user:1000", true, true),
        (b"user:*:name", b"user:1000:name", true, true),
        (b"user:*:name", b"user:1000:age", false, false),
        (b"*max-*-entries*", b"hash-max-listpack-entries", true, true),
        (b"*max-*-entries*", b"maxmemory", false, false),
        (b"__keyspace@*__:*", b"__keyspace@0__:foo", true, true),
    ];

    #[test]
    fn table() {
        for &(p, s, cs, ci) in TABLE {
            assert_eq!(
                glob_match(p, s, false),
                cs,
                "pattern {:?} string {:?} (case-sensitive)",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(s)
            );
            assert_eq!(
                glob_match(p, s, true),
                ci,
                "pattern {:?} string {:?} (nocase)",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(s)
            );
        }
    }

    #[test]
    fn star_collapsing_and_trailing_stars() {
        assert!(m("a***", "a"));
        assert!(m("a***", "abc"));
        assert!(m("***", "abc"));
        assert!(m("*a***b***", "xaxxbxx"));
        assert!(!m("***", ""));
        assert!(m("a*?*", "ab"));
        assert!(!m("a*?*", "a"));
    }

    #[test]
    fn nocase_basics() {
        assert!(mi("HeLLo", "hello"));
        assert!(mi("h*O", "HELLO"));
        assert!(mi("[H]ello", "hello"));
        assert!(!m("[H]ello", "hello"));
        assert!(mi("MAXMEM*", "maxmemory-policy"));
    }

    #[test]
    fn pathological_patterns_are_fast() {
        // Without the skipLongerMatches guard this takes exponential time.
        let s = "a".repeat(10_000);
        let p = format!("{}b", "a*".repeat(200));
        let t = std::time::Instant::now();
        assert!(!m(&p, &s));
        let p2 = "*a".repeat(2_000) + "*b";
        assert!(!m(&p2, &s));
        let p3 = "*?".repeat(5_000);
        assert!(m(&p3, &s));
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn very_long_patterns_do_not_overflow_the_stack() {
        // One star group per 2 bytes: a recursive port would need ~500k
        // frames here; run it on a small stack to be sure.
        let h = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| {
                let p = "*a".repeat(500_000) + "*";
                let s = "a".repeat(500_000);
                let s2 = "a".repeat(499_999);
                (m(&p, &s), m(&p, &s2))
            })
            .unwrap();
        assert_eq!(h.join().unwrap(), (true, false));
    }

    /// Straight recursive transcription of the C code (with the
    /// skipLongerMatches guard), used as a reference for the iterative port.
    fn reference(p: &[u8], s: &[u8], nocase: bool) -> bool {
        fn at(p: &[u8], i: usize) -> u8 {
            p.get(i).copied().unwrap_or(0)
        }
        fn low(c: i32) -> i32 {
            if (65..=90).contains(&c) {
                c + 32
            } else {
                c
            }
        }
        fn imp(
            p: &[u8],
            mut pi: usize,
            s: &[u8],
            mut si: usize,
            nc: bool,
            skip: &mut bool,
        ) -> bool {
            let (plen, slen) = (p.len(), s.len());
            while pi < plen && si < slen {
                match p[pi] {
                    b'*' => {
                        while pi < plen && at(p, pi + 1) == b'*' {
                            pi += 1;
                        }
                        if plen - pi == 1 {
                            return true;
                        }
                        while si < slen {
                            if imp(p, pi + 1, s, si, nc, skip) {
                                return true;
                            }
                            if *skip {
                                return false;
                            }
                            si += 1;
                        }
                        *skip = true;
                        return false;
                    }
                    b'?' => si += 1,
                    b'[' => {
                        pi += 1;
                        let not = at(p, pi) == b'^';
                        if not {
                            pi += 1;
                        }
                        let mut mt = false;
                        loop {
                            let rem = plen - pi;
                            if at(p, pi) == b'\\' && rem >= 2 {
                                pi += 1;
                                if p[pi] == s[si] {
                                    mt = true;
                                }
                            } else if at(p, pi) == b']' {
                                break;
                            } else if rem == 0 {
                                pi -= 1;
                                break;
                            } else if rem >= 3 && p[pi + 1] == b'-' {
                                let mut a = p[pi] as i8 as i32;
                                let mut b = p[pi + 2] as i8 as i32;
                                let mut c = s[si] as i8 as i32;
                                if a > b {
                                    std::mem::swap(&mut a, &mut b);
                                }
                                if nc {
                                    a = low(a);
                                    b = low(b);
                                    c = low(c);
                                }
                                pi += 2;
                                if c >= a && c <= b {
                                    mt = true;
                                }
                            } else if (!nc && p[pi] == s[si])
                                || (nc && low(p[pi] as i8 as i32) == low(s[si] as i8 as i32))
                            {
                                mt = true;
                            }
                            pi += 1;
                        }
                        if not {
                            mt = !mt;
                        }
                        if !mt {
                            return false;
                        }
                        si += 1;
                    }
                    c => {
                        let mut c = c;
                        if c == b'\\' && plen - pi >= 2 {
                            pi += 1;
                            c = p[pi];
                        }
                        let ok = if nc {
                            low(c as i8 as i32) == low(s[si] as i8 as i32)
                        } else {
                            c == s[si]
                        };
                        if !ok {
                            return false;
                        }
                        si += 1;
                    }
                }
                pi += 1;
                if si == slen {
                    while at(p, pi) == b'*' {
                        pi += 1;
                    }
                    break;
                }
            }
            pi == plen && si == slen
        }
        let mut skip = false;
        imp(p, 0, s, 0, nocase, &mut skip)
    }

    /// Deterministic pseudo-random differential test against the recursive
    /// reference over a small, quirk-heavy alphabet.
    #[test]
    fn matches_recursive_reference() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        const PAT: &[u8] = b"ab*?[]^-\\Ax\xff";
        const STR: &[u8] = b"abAB-]^\\x\xff";
        for _ in 0..200_000 {
            let pl = (next() % 8) as usize;
            let sl = (next() % 7) as usize;
            let p: Vec<u8> = (0..pl)
                .map(|_| PAT[(next() % PAT.len() as u64) as usize])
                .collect();
            let s: Vec<u8> = (0..sl)
                .map(|_| STR[(next() % STR.len() as u64) as usize])
                .collect();
            for nc in [false, true] {
                assert_eq!(
                    glob_match(&p, &s, nc),
                    reference(&p, &s, nc),
                    "pattern {:?} string {:?} nocase {}",
                    String::from_utf8_lossy(&p),
                    String::from_utf8_lossy(&s),
                    nc
                );
            }
        }
    }
}
