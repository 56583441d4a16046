//! The case-file parser and runner (the format is documented in the crate root and in
//! `cases/README.md`).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::conn::{is_closed_error, RespConn};
use crate::resp::{escape, is_scan_shaped, sort_reply, unescape_raw};
use crate::server::ServerProc;

/// How long `!raw` and `!noreply` lines wait for silence.
pub const SILENCE: Duration = Duration::from_millis(300);

/// The protocol of one pass over a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// RESP2 (the default on a new connection).
    Resp2,
    /// RESP3 (after `HELLO 3`).
    Resp3,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Resp2 => "RESP2",
            Proto::Resp3 => "RESP3",
        })
    }
}

/// How a line's replies are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Byte for byte.
    Exact,
    /// `!sort`: after sorting the top-level elements (map: pairs).
    Sort,
    /// `!type`: only the RESP type byte.
    Type,
    /// `!ignore`: not at all (the reply is still read).
    Ignore,
    /// `!scan`: both are 2-element arrays whose first element is a bulk string (else exact).
    Scan,
    /// `!noreply`: the command gets no reply; compare what arrives within 300 ms (nothing).
    NoReply,
}

/// What a line does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A command sent as a RESP array.
    Cmd(Vec<Vec<u8>>),
    /// `!raw`: bytes sent as they are; everything until close or 300 ms of silence is compared.
    Raw(Vec<u8>),
    /// `!sleep N`: sleep N milliseconds.
    Sleep(u64),
}

/// One line of a case.
#[derive(Debug, Clone)]
pub struct Line {
    /// 1-based line number in the file.
    pub line_no: usize,
    /// The line as written.
    pub text: String,
    /// What to send.
    pub action: Action,
    /// How to compare.
    pub compare: Compare,
    /// `!resp2`/`!resp3`: only in that pass.
    pub only: Option<Proto>,
}

/// One `=== name` case.
#[derive(Debug, Clone)]
pub struct Case {
    /// The name after `===`.
    pub name: String,
    /// Line number of the `===` line.
    pub line_no: usize,
    /// Its lines.
    pub lines: Vec<Line>,
}

/// A parsed case file.
#[derive(Debug, Clone)]
pub struct CaseFile {
    /// The file name (e.g. `strings.txt`).
    pub name: String,
    /// Its cases, in order.
    pub cases: Vec<Case>,
}

/// Parses one case file; errors name the file and line.
pub fn parse_cases(file: &str, text: &str) -> Result<Vec<Case>, String> {
    let mut cases: Vec<Case> = Vec::new();
    for (i, raw_line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw_line.trim_end_matches('\r');
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix("===") {
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("{file}:{line_no}: a case needs a name after ==="));
            }
            if cases.iter().any(|c| c.name == name) {
                return Err(format!("{file}:{line_no}: duplicate case name {name:?}"));
            }
            cases.push(Case {
                name: name.to_string(),
                line_no,
                lines: Vec::new(),
            });
            continue;
        }
        let Some(case) = cases.last_mut() else {
            return Err(format!(
                "{file}:{line_no}: command before the first `=== name` line"
            ));
        };
        let mut rest = trimmed;
        let mut compare = Compare::Exact;
        let mut only = None;
        let mut action = None;
        while let Some(r) = rest.strip_prefix('!') {
            let (word, tail) = match r.find(' ') {
                Some(sp) => (&r[..sp], &r[sp + 1..]),
                None => (r, ""),
            };
            let mut set_compare = |c: Compare| -> Result<(), String> {
                if compare != Compare::Exact {
                    return Err(format!("{file}:{line_no}: two comparison prefixes"));
                }
                compare = c;
                Ok(())
            };
            match word {
                "sort" => set_compare(Compare::Sort)?,
                "type" => set_compare(Compare::Type)?,
                "ignore" => set_compare(Compare::Ignore)?,
                "scan" => set_compare(Compare::Scan)?,
                "noreply" => set_compare(Compare::NoReply)?,
                "resp2" => only = Some(Proto::Resp2),
                "resp3" => only = Some(Proto::Resp3),
                "raw" => {
                    let bytes = unescape_raw(tail).map_err(|e| format!("{file}:{line_no}: {e}"))?;
                    action = Some(Action::Raw(bytes));
                    rest = "";
                    break;
                }
                "sleep" => {
                    let ms = tail
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| format!("{file}:{line_no}: !sleep needs milliseconds"))?;
                    action = Some(Action::Sleep(ms));
                    rest = "";
                    break;
                }
                other => return Err(format!("{file}:{line_no}: unknown prefix !{other}")),
            }
            rest = tail.trim_start();
        }
        let action = match action {
            Some(a) => {
                if matches!(a, Action::Raw(_)) && compare != Compare::Exact {
                    return Err(format!("{file}:{line_no}: !raw takes no comparison prefix"));
                }
                a
            }
            None => {
                let args = damselfly_resp::split_args(rest.as_bytes())
                    .ok_or_else(|| format!("{file}:{line_no}: unbalanced quotes"))?;
                if args.is_empty() {
                    return Err(format!("{file}:{line_no}: empty command"));
                }
                Action::Cmd(args)
            }
        };
        case.lines.push(Line {
            line_no,
            text: trimmed.to_string(),
            action,
            compare,
            only,
        });
    }
    Ok(cases)
}

/// Loads and parses every `*.txt` in `dir`, sorted by file name. Panics on a parse error.
pub fn load_dir(dir: &Path) -> Vec<CaseFile> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            let cases = parse_cases(&name, &text).unwrap_or_else(|e| panic!("{e}"));
            CaseFile { name, cases }
        })
        .collect()
}

/// The oracle and the server under test.
pub struct Pair {
    /// redis-server.
    pub oracle: ServerProc,
    /// damselfly (or redis when `COMPAT_SELFTEST=1`).
    pub dut: ServerProc,
}

impl Pair {
    /// Starts both servers (in parallel).
    pub fn start() -> Pair {
        std::thread::scope(|s| {
            let o = s.spawn(|| ServerProc::redis(&[]));
            let d = ServerProc::damselfly(&[]);
            let o = o.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            Pair { oracle: o, dut: d }
        })
    }

    /// Keeps both logs after drop and describes where they are.
    pub fn keep_logs(&mut self) -> String {
        self.oracle.keep_log();
        self.dut.keep_log();
        format!(
            "logs: {} = {}, {} = {}",
            self.oracle.label(),
            self.oracle.log_path().display(),
            self.dut.label(),
            self.dut.log_path().display()
        )
    }
}

/// What one side produced for one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    /// A reply (or for `!raw`/`!noreply`, all bytes received), and whether the server then
    /// closed the connection.
    Bytes(Vec<u8>, bool),
    /// The server closed the connection before replying.
    Closed,
    /// A timeout, a malformed reply or another I/O error.
    Failed(String),
}

impl fmt::Display for Got {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Got::Bytes(b, false) => f.write_str(&escape(b)),
            Got::Bytes(b, true) => write!(f, "{} then connection closed", escape(b)),
            Got::Closed => f.write_str("<connection closed by server>"),
            Got::Failed(e) => write!(f, "<error: {e}>"),
        }
    }
}

/// One difference between the oracle and the server under test.
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// Case file name.
    pub file: String,
    /// Case name.
    pub case: String,
    /// Which pass.
    pub proto: Proto,
    /// Line number (the `===` line for setup problems).
    pub line_no: usize,
    /// The line as written (or a description of the setup step).
    pub command: String,
    /// What redis produced.
    pub expected: Got,
    /// What the server under test produced.
    pub actual: Got,
    /// How the replies were compared.
    pub compare: Compare,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.compare {
            Compare::Exact => "",
            Compare::Sort => " (compared sorted)",
            Compare::Type => " (compared type byte only)",
            Compare::Scan => " (compared SCAN shape)",
            Compare::Ignore => "",
            Compare::NoReply => " (expected no reply)",
        };
        writeln!(
            f,
            "{}: case {:?} [{}] line {}: {}{how}",
            self.file, self.case, self.proto, self.line_no, self.command
        )?;
        if let (Got::Bytes(a, _), Got::Bytes(b, _)) = (&self.expected, &self.actual) {
            if a.len() + b.len() > 1200 {
                // Long replies: show where they start to differ rather than all of both.
                let at = a
                    .iter()
                    .zip(b.iter())
                    .position(|(x, y)| x != y)
                    .unwrap_or(a.len().min(b.len()));
                let from = at.saturating_sub(200);
                let window = |v: &[u8]| escape(&v[from.min(v.len())..(at + 400).min(v.len())]);
                writeln!(
                    f,
                    "    (long replies: {} and {} bytes, first difference at byte {at}; showing bytes {from}..)",
                    a.len(),
                    b.len()
                )?;
                writeln!(f, "    redis:     ...{}...", window(a))?;
                return write!(f, "    damselfly: ...{}...", window(b));
            }
        }
        writeln!(f, "    redis:     {}", self.expected)?;
        write!(f, "    damselfly: {}", self.actual)
    }
}

/// The outcome of a run over case files.
#[derive(Debug, Default)]
pub struct Report {
    /// Files run.
    pub files: usize,
    /// Cases run (each in two passes).
    pub cases: usize,
    /// Lines whose replies were compared (over both passes).
    pub compared: usize,
    /// Every difference.
    pub mismatches: Vec<Mismatch>,
    /// Cases skipped because they use a command the server under test does not implement yet
    /// while the oracle does (e.g. RPUSH to set up a WRONGTYPE check before lists exist):
    /// (file, case, command).
    pub pending: Vec<(String, String, String)>,
}

impl Report {
    /// All mismatches followed by a count line.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for m in &self.mismatches {
            s.push_str(&m.to_string());
            s.push_str("\n\n");
        }
        for (f, c, cmd) in &self.pending {
            s.push_str(&format!(
                "pending: {f}: case \"{c}\" uses {cmd}, not implemented yet\n"
            ));
        }
        s.push_str(&format!("{} pending case(s); ", self.pending.len()));
        s.push_str(&format!(
            "{} mismatch(es); {} file(s), {} case(s), {} replies compared over RESP2 and RESP3",
            self.mismatches.len(),
            self.files,
            self.cases,
            self.compared
        ));
        s
    }
}

fn dump() -> bool {
    std::env::var("COMPAT_DUMP")
        .map(|v| v == "1")
        .unwrap_or(false)
}

fn got_of(r: io::Result<Vec<u8>>) -> Got {
    match r {
        Ok(b) => Got::Bytes(b, false),
        Err(e) if is_closed_error(&e) => Got::Closed,
        Err(e) => Got::Failed(e.to_string()),
    }
}

fn both<T: Send>(
    a: &mut RespConn,
    b: &mut RespConn,
    f: impl Fn(&mut RespConn) -> T + Sync,
) -> (T, T) {
    std::thread::scope(|s| {
        let h = s.spawn(|| f(b));
        let ra = f(a);
        (
            ra,
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
        )
    })
}

fn silence_read(c: &mut RespConn) -> Got {
    match c.read_until_close_or_silence(SILENCE, Duration::from_secs(5)) {
        Ok((b, closed)) => Got::Bytes(b, closed),
        Err(e) => Got::Failed(e.to_string()),
    }
}

fn setup_conn(server: &ServerProc, proto: Proto, flush: bool) -> Result<RespConn, String> {
    let mut c = RespConn::connect(server.addr())
        .map_err(|e| format!("{}: connect: {e}", server.label()))?;
    let mut step = |args: &[&str], ok: &dyn Fn(&[u8]) -> bool| -> Result<(), String> {
        let r = c
            .call(args)
            .map_err(|e| format!("{}: {}: {e}", server.label(), args.join(" ")))?;
        if !ok(&r) {
            return Err(format!(
                "{}: {} replied {}",
                server.label(),
                args.join(" "),
                escape(&r)
            ));
        }
        Ok(())
    };
    if flush {
        step(&["FLUSHALL"], &|r| r == b"+OK\r\n")?;
    }
    step(&["SELECT", "0"], &|r| r == b"+OK\r\n")?;
    if proto == Proto::Resp3 {
        step(&["HELLO", "3"], &|r| r.first() == Some(&b'%'))?;
    }
    Ok(c)
}

/// Runs `case` once in `proto`, appending differences to `out`; returns how many lines were
/// compared.
pub fn run_case(
    pair: &Pair,
    file: &str,
    case: &Case,
    proto: Proto,
    out: &mut Vec<Mismatch>,
) -> usize {
    let mismatch =
        |line_no: usize, command: &str, expected: Got, actual: Got, compare: Compare| Mismatch {
            file: file.to_string(),
            case: case.name.clone(),
            proto,
            line_no,
            command: command.to_string(),
            expected,
            actual,
            compare,
        };
    let open = |flush: bool| -> Result<(RespConn, RespConn), Box<Mismatch>> {
        let o = setup_conn(&pair.oracle, proto, flush);
        let d = setup_conn(&pair.dut, proto, flush);
        match (o, d) {
            (Ok(o), Ok(d)) => Ok((o, d)),
            (o, d) => Err(Box::new(mismatch(
                case.line_no,
                "<setup: connect, FLUSHALL, SELECT 0, HELLO 3 in RESP3>",
                o.err()
                    .map(Got::Failed)
                    .unwrap_or(Got::Bytes(b"ok".to_vec(), false)),
                d.err()
                    .map(Got::Failed)
                    .unwrap_or(Got::Bytes(b"ok".to_vec(), false)),
                Compare::Exact,
            ))),
        }
    };
    let (mut o, mut d) = match open(true) {
        Ok(c) => c,
        Err(m) => {
            out.push(*m);
            return 0;
        }
    };
    let mut dead = false;
    let mut compared = 0;
    if dump() {
        eprintln!("=== {file} {} [{proto}]", case.name);
    }
    for line in &case.lines {
        if line.only.is_some_and(|p| p != proto) {
            continue;
        }
        if let Action::Sleep(ms) = line.action {
            std::thread::sleep(Duration::from_millis(ms));
            continue;
        }
        if dead {
            match open(false) {
                Ok((a, b)) => (o, d) = (a, b),
                Err(m) => {
                    out.push(*m);
                    return compared;
                }
            }
            dead = false;
        }
        let (go, gd) = match &line.action {
            Action::Raw(bytes) => {
                let so = o.send_raw(bytes);
                let sd = d.send_raw(bytes);
                let (go, gd) = both(&mut o, &mut d, silence_read);
                let go = if let Err(e) = so {
                    Got::Failed(format!("send: {e}"))
                } else {
                    go
                };
                let gd = if let Err(e) = sd {
                    Got::Failed(format!("send: {e}"))
                } else {
                    gd
                };
                (go, gd)
            }
            Action::Cmd(args) if line.compare == Compare::NoReply => {
                let so = o.send(args);
                let sd = d.send(args);
                let (go, gd) = both(&mut o, &mut d, silence_read);
                let go = if let Err(e) = so {
                    Got::Failed(format!("send: {e}"))
                } else {
                    go
                };
                let gd = if let Err(e) = sd {
                    Got::Failed(format!("send: {e}"))
                } else {
                    gd
                };
                (go, gd)
            }
            Action::Cmd(args) => {
                let so = o.send(args);
                let sd = d.send(args);
                let go = match so {
                    Ok(()) => got_of(o.read_reply()),
                    Err(e) if is_closed_error(&e) => Got::Closed,
                    Err(e) => Got::Failed(format!("send: {e}")),
                };
                let gd = match sd {
                    Ok(()) => got_of(d.read_reply()),
                    Err(e) if is_closed_error(&e) => Got::Closed,
                    Err(e) => Got::Failed(format!("send: {e}")),
                };
                if args[0].eq_ignore_ascii_case(b"QUIT") {
                    // QUIT closes after its reply: wait for that, and compare it too.
                    let (co, cd) = both(&mut o, &mut d, |c| c.is_closed(Duration::from_secs(1)));
                    let mark = |g: Got, closed: bool| match g {
                        Got::Bytes(b, _) => Got::Bytes(b, closed),
                        other => other,
                    };
                    (mark(go, co), mark(gd, cd))
                } else {
                    (go, gd)
                }
            }
            Action::Sleep(_) => unreachable!(),
        };
        if dump() {
            eprintln!("{:>4} {}\n     -> {go}", line.line_no, line.text);
        }
        compared += 1;
        let equal = match (&go, &gd) {
            (Got::Bytes(a, ca), Got::Bytes(b, cb)) => {
                ca == cb
                    && match line.compare {
                        Compare::Exact | Compare::NoReply => a == b,
                        Compare::Sort => sort_reply(a) == sort_reply(b),
                        Compare::Type => a.first() == b.first(),
                        Compare::Ignore => true,
                        Compare::Scan => (is_scan_shaped(a) && is_scan_shaped(b)) || a == b,
                    }
            }
            (Got::Closed, Got::Closed) => true,
            _ => false,
        };
        let failed = matches!(go, Got::Failed(_)) || matches!(gd, Got::Failed(_));
        let closed = |g: &Got| matches!(g, Got::Closed | Got::Bytes(_, true));
        if closed(&go) || closed(&gd) {
            dead = true;
        }
        if !equal {
            out.push(mismatch(line.line_no, &line.text, go, gd, line.compare));
        }
        if failed {
            // Replies can no longer be matched to commands: give up on this pass.
            out.push(mismatch(
                line.line_no,
                "<rest of the case skipped after an I/O error>",
                Got::Bytes(Vec::new(), false),
                Got::Bytes(Vec::new(), false),
                Compare::Exact,
            ));
            return compared;
        }
    }
    compared
}

/// Runs every case of `files` whose name contains `filter` in RESP2 and RESP3 against `pair`.
///
/// When a server process dies, the death is reported as a mismatch (with the end of its log) and
/// the server is restarted, up to `MAX_RESTARTS` times; then the run stops.
pub fn run_files(pair: &mut Pair, files: &[CaseFile], filter: Option<&str>) -> Report {
    let mut report = Report::default();
    let mut restarts = 0;
    let mut known: std::collections::HashMap<Vec<u8>, bool> = std::collections::HashMap::new();
    for f in files {
        let mut any = false;
        for case in &f.cases {
            if filter.is_some_and(|flt| !case.name.contains(flt)) {
                continue;
            }
            any = true;
            if let Some(cmd) = unimplemented_command(pair, case, &mut known) {
                report
                    .pending
                    .push((f.name.clone(), case.name.clone(), cmd));
                continue;
            }
            report.cases += 1;
            for proto in [Proto::Resp2, Proto::Resp3] {
                report.compared += run_case(pair, &f.name, case, proto, &mut report.mismatches);
                for (server, is_oracle) in [(&mut pair.oracle, true), (&mut pair.dut, false)] {
                    let Some(why) = server.exited() else { continue };
                    let died = Got::Failed(why);
                    let alive = Got::Bytes(b"(running)".to_vec(), false);
                    let (expected, actual) = if is_oracle {
                        (died, alive)
                    } else {
                        (alive, died)
                    };
                    report.mismatches.push(Mismatch {
                        file: f.name.clone(),
                        case: case.name.clone(),
                        proto,
                        line_no: case.line_no,
                        command: "<server process exited during this case>".to_string(),
                        expected,
                        actual,
                        compare: Compare::Exact,
                    });
                    restarts += 1;
                    if restarts > MAX_RESTARTS {
                        report.files += 1;
                        return report;
                    }
                    server.restart();
                }
            }
        }
        if any {
            report.files += 1;
        }
    }
    report
}

/// What a `COMMAND INFO name` reply (RESP2, one name) says: `Some(false)` for a null entry (the
/// server does not know the command), `Some(true)` for a non-null entry, `None` for anything
/// else (an error reply, say).
fn command_info_known(reply: &[u8]) -> Option<bool> {
    match reply {
        b"*1\r\n*-1\r\n" | b"*1\r\n$-1\r\n" | b"*1\r\n_\r\n" => Some(false),
        r if r.starts_with(b"*1\r\n*") => Some(true),
        _ => None,
    }
}

/// Asks the server at `addr` whether it knows the command `name` (see `command_info_known`);
/// `None` when it cannot be asked.
fn server_knows(addr: std::net::SocketAddr, name: &[u8]) -> Option<bool> {
    let mut c = RespConn::connect(addr).ok()?;
    let r = c.call(&[b"COMMAND".as_slice(), b"INFO", name]).ok()?;
    command_info_known(&r)
}

/// The first command of `case` for which `is_pending(lowercased name)` holds, upper-cased;
/// answers are cached in `known` (name -> runnable), so each name is asked about once per run.
fn first_pending_command(
    case: &Case,
    known: &mut std::collections::HashMap<Vec<u8>, bool>,
    mut is_pending: impl FnMut(&[u8]) -> bool,
) -> Option<String> {
    for line in &case.lines {
        let Action::Cmd(args) = &line.action else {
            continue;
        };
        let Some(name) = args.first() else { continue };
        let name = name.to_ascii_lowercase();
        let runnable = *known
            .entry(name.clone())
            .or_insert_with(|| !is_pending(&name));
        if !runnable {
            return Some(String::from_utf8_lossy(&name).to_uppercase());
        }
    }
    None
}

/// The first command of `case` that is not implemented yet, if any: one that the server under
/// test does not know at all (its `COMMAND INFO` entry is null) while the oracle does (a
/// non-null entry). A command neither knows (`FOO`, sent on purpose to compare the unknown
/// command error) does not make a case pending, nor does one a server cannot be asked about.
/// Results are cached in `known`.
fn unimplemented_command(
    pair: &Pair,
    case: &Case,
    known: &mut std::collections::HashMap<Vec<u8>, bool>,
) -> Option<String> {
    first_pending_command(case, known, |name| {
        server_knows(pair.dut.addr(), name) == Some(false)
            && server_knows(pair.oracle.addr(), name) == Some(true)
    })
}

/// How many times `run_files` restarts a dead server before giving up.
pub const MAX_RESTARTS: usize = 10;

/// Starts a pair, runs every case file in `dir` (honouring `COMPAT_FILTER`), and panics with the
/// full list of mismatches and a count line if there is any.
pub fn run_dir_or_panic(dir: &Path) {
    let files = load_dir(dir);
    let filter = std::env::var("COMPAT_FILTER")
        .ok()
        .filter(|s| !s.is_empty());
    let mut pair = Pair::start();
    let report = run_files(&mut pair, &files, filter.as_deref());
    if !report.mismatches.is_empty() {
        let logs = pair.keep_logs();
        panic!("\n{}\n{logs}\n", report.summary());
    }
    eprintln!("{}", report.summary());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixes_and_commands() {
        let text = "# comment\n\n=== one\nSET a \"b c\"\n!sort KEYS *\n!resp3 !type HELLO\n!raw PING\\r\\n\n!sleep 5\n!noreply CLIENT REPLY OFF\n=== two\n!scan SCAN 0\n";
        let cases = parse_cases("f.txt", text).unwrap();
        assert_eq!(cases.len(), 2);
        let l = &cases[0].lines;
        assert_eq!(
            l[0].action,
            Action::Cmd(vec![b"SET".to_vec(), b"a".to_vec(), b"b c".to_vec()])
        );
        assert_eq!(l[0].line_no, 4);
        assert_eq!(l[1].compare, Compare::Sort);
        assert_eq!(
            (l[2].compare, l[2].only),
            (Compare::Type, Some(Proto::Resp3))
        );
        assert_eq!(l[3].action, Action::Raw(b"PING\r\n".to_vec()));
        assert_eq!(l[4].action, Action::Sleep(5));
        assert_eq!(l[5].compare, Compare::NoReply);
        assert_eq!(cases[1].lines[0].compare, Compare::Scan);
    }

    #[test]
    fn rejects_bad_files() {
        assert!(parse_cases("f", "GET a\n").is_err());
        assert!(parse_cases("f", "=== a\nSET \"x\n").is_err());
        assert!(parse_cases("f", "=== a\n!bogus GET a\n").is_err());
        assert!(parse_cases("f", "=== a\n!sort !type GET a\n").is_err());
        assert!(parse_cases("f", "=== a\n=== a\n").is_err());
        assert!(parse_cases("f", "=== a\n!sleep x\n").is_err());
    }

    #[test]
    fn reads_command_info_replies() {
        assert_eq!(command_info_known(b"*1\r\n*-1\r\n"), Some(false));
        assert_eq!(command_info_known(b"*1\r\n$-1\r\n"), Some(false));
        assert_eq!(command_info_known(b"*1\r\n_\r\n"), Some(false));
        assert_eq!(
            command_info_known(b"*1\r\n*10\r\n$3\r\nget\r\n:2\r\n"),
            Some(true)
        );
        assert_eq!(command_info_known(b"-ERR unknown command\r\n"), None);
        assert_eq!(command_info_known(b""), None);
    }

    #[test]
    fn pending_commands_are_cached_and_reported_upper_case() {
        let text = "=== a\nSET k v\nfoo x\nRPush l x\nRPUSH l y\n=== b\n!raw PING\\r\\n\nGET k\n";
        let cases = parse_cases("f.txt", text).unwrap();
        let mut known = std::collections::HashMap::new();
        let mut asked: Vec<Vec<u8>> = Vec::new();
        // Stands in for "damselfly lacks it and redis has it": only rpush is pending.
        let mut is_pending = |name: &[u8]| {
            asked.push(name.to_vec());
            name == b"rpush"
        };
        assert_eq!(
            first_pending_command(&cases[0], &mut known, &mut is_pending),
            Some("RPUSH".to_string())
        );
        assert_eq!(
            first_pending_command(&cases[1], &mut known, &mut is_pending),
            None
        );
        assert_eq!(
            first_pending_command(&cases[0], &mut known, &mut is_pending),
            Some("RPUSH".to_string())
        );
        assert_eq!(
            asked,
            vec![
                b"set".to_vec(),
                b"foo".to_vec(),
                b"rpush".to_vec(),
                b"get".to_vec()
            ]
        );
    }
}
