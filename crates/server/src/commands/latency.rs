//! LATENCY LATEST|HISTORY|GRAPH|DOCTOR|RESET|HISTOGRAM|HELP (Redis's latency.c and
//! sparkline.c) over `crate::latency`.
//!
//! Events are looked up as Redis's C code sees its argument (up to the first NUL), exactly for
//! HISTORY and GRAPH, case-insensitively for RESET; HISTOGRAM looks commands up as COMMAND INFO
//! does (`config|get`, any case) and a container brings its subcommands.
//!
//! Invariant: the text of GRAPH and DOCTOR is Redis 7.0.15's byte for byte for the same
//! samples; where Redis walks a hash table (events, commands) we go in name order.

use super::{c_str, reply_help};
use crate::command::{LocalFut, TableBuilder};
use crate::conn::Conn;
use crate::coord::run_on_all;
use crate::latency::{Histogram, Sample, TimeSeries};
use bytes::Bytes;
use std::fmt::Write as _;

pub fn register(t: &mut TableBuilder) {
    t.conn("latency|latest", latest);
    t.conn("latency|history", history);
    t.conn("latency|graph", graph);
    t.conn("latency|doctor", doctor);
    t.conn("latency|reset", reset);
    t.coord("latency|histogram", histogram);
    t.conn("latency|help", help);
}

fn latest(c: &mut Conn, _args: &[Bytes]) {
    let events = sorted_events(c);
    c.out.array(events.len());
    for (name, ts) in &events {
        let last = ts.latest();
        c.out.array(4);
        c.out.bulk(name.as_bytes());
        c.out.int(last.time);
        c.out.int(last.latency as i64);
        c.out.int(ts.max as i64);
    }
}

fn sorted_events(c: &Conn) -> Vec<(String, TimeSeries)> {
    let mut events = c.globals.latency.events();
    events.sort_by(|a, b| a.0.cmp(&b.0));
    events
}

fn history(c: &mut Conn, args: &[Bytes]) {
    let samples = match c.globals.latency.event(c_str(&args[2])) {
        Some((_, ts)) => ts.samples(),
        None => Vec::new(),
    };
    c.out.array(samples.len());
    for s in &samples {
        c.out.array(2);
        c.out.int(s.time);
        c.out.int(s.latency as i64);
    }
}

fn graph(c: &mut Conn, args: &[Bytes]) {
    let event = c_str(&args[2]);
    match c.globals.latency.event(event) {
        Some((name, ts)) => {
            let text = render_graph(&name, &ts, unix_now());
            c.out.verbatim(text.as_bytes());
        }
        None => {
            // `error_bytes` turns CR and LF into spaces, as Redis's addReplyErrorFormat.
            let mut e = b"ERR No samples available for event '".to_vec();
            e.extend_from_slice(event);
            e.push(b'\'');
            c.out.error_bytes(&e);
        }
    }
}

fn unix_now() -> i64 {
    crate::shard::now_ms() as i64 / 1000
}

/// `latencyCommandGenSparkeline`: a title, 80 dashes, and the samples as an 80-column,
/// 4-row filled sparkline labelled with how long ago each sample was taken.
pub fn render_graph(event: &str, ts: &TimeSeries, now: i64) -> String {
    let samples = ts.samples();
    let min = samples.iter().map(|s| s.latency).min().unwrap_or(0);
    let max = samples.iter().map(|s| s.latency).max().unwrap_or(0);
    let mut out = format!(
        "{event} - high {max} ms, low {min} ms (all time high {} ms)\n",
        ts.max
    );
    out.push_str(&"-".repeat(GRAPH_COLS));
    out.push('\n');
    let labels: Vec<String> = samples.iter().map(|s| age_label(now - s.time)).collect();
    sparkline(&mut out, &samples, &labels, min, max);
    out
}

const GRAPH_COLS: usize = 80;
const GRAPH_ROWS: usize = 4;
const FILL_CHARSET: &[u8] = b"_o#";

fn age_label(elapsed: i64) -> String {
    if elapsed < 60 {
        format!("{elapsed}s")
    } else if elapsed < 3600 {
        format!("{}m", elapsed / 60)
    } else if elapsed < 3600 * 24 {
        format!("{}h", elapsed / 3600)
    } else {
        format!("{}d", elapsed / (3600 * 24))
    }
}

/// `sparklineRender(.., 80, 4, SPARKLINE_FILL)` over samples whose every label is non-empty.
fn sparkline(out: &mut String, samples: &[Sample], labels: &[String], min: u64, max: u64) {
    let mut start = 0;
    while start < samples.len() {
        let len = (samples.len() - start).min(GRAPH_COLS);
        if start != 0 {
            out.push('\n');
        }
        sparkline_range(
            out,
            &samples[start..start + len],
            &labels[start..start + len],
            min,
            max,
        );
        start += len;
    }
}

fn sparkline_range(out: &mut String, samples: &[Sample], labels: &[String], min: u64, max: u64) {
    let charset_len = FILL_CHARSET.len() as i64;
    let steps = charset_len * GRAPH_ROWS as i64;
    let relmax = if max == min { 1.0 } else { (max - min) as f64 };
    let rows = GRAPH_ROWS as i64;
    let mut row: i64 = 0;
    loop {
        let mut more = false;
        let mut chars = vec![b' '; samples.len()];
        for (j, s) in samples.iter().enumerate() {
            let relval = (s.latency - min) as f64;
            // C's `(int) (relval*steps)/relmax`, truncated again on assignment.
            let step = (((relval * steps as f64) as i64) as f64 / relmax) as i64;
            let step = step.clamp(0, steps - 1);
            if row < rows {
                let charidx = step - (rows - row - 1) * charset_len;
                more = true;
                if (0..charset_len).contains(&charidx) {
                    chars[j] = FILL_CHARSET[charidx as usize];
                } else if charidx >= charset_len {
                    chars[j] = b'|';
                }
            } else {
                // One blank line between the graph and the labels.
                if row - rows < 1 {
                    more = true;
                    break;
                }
                let label = labels[j].as_bytes();
                let at = (row - rows - 1) as usize;
                if at < label.len() {
                    more = true;
                    chars[j] = label[at];
                }
            }
        }
        if !more {
            break;
        }
        row += 1;
        out.push_str(&String::from_utf8_lossy(&chars));
        out.push('\n');
    }
}

fn doctor(c: &mut Conn, _args: &[Bytes]) {
    let (slower_than, hz) = {
        let cfg = c.globals.config();
        (cfg.get_int("slowlog_log_slower_than"), cfg.get_int("hz"))
    };
    let report = Report {
        events: sorted_events(c),
        threshold_ms: c.globals.latency.threshold_ms(),
        slowlog_slower_than: slower_than,
        hz,
        anon_huge_pages: anon_huge_pages_bytes(),
        now: unix_now(),
    };
    c.out.verbatim(report.render().as_bytes());
}

/// Redis's `THPGetAnonHugePagesSize`: the process's `AnonHugePages` over /proc/self/smaps.
fn anon_huge_pages_bytes() -> u64 {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    smaps
        .lines()
        .filter_map(|l| l.strip_prefix("AnonHugePages:"))
        .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .sum::<u64>()
        * 1024
}

/// What LATENCY DOCTOR reasons over.
pub struct Report {
    pub events: Vec<(String, TimeSeries)>,
    pub threshold_ms: u64,
    pub slowlog_slower_than: i64,
    pub hz: i64,
    pub anon_huge_pages: u64,
    pub now: i64,
}

/// `analyzeLatencyForEvent`: (samples, average, mean absolute deviation, period in seconds).
fn analyze(ts: &TimeSeries, now: i64) -> (u64, u64, u64, i64) {
    let samples = ts.samples();
    let n = samples.len() as u64;
    if n == 0 {
        return (0, 0, 0, 0);
    }
    let avg = samples.iter().map(|s| s.latency).sum::<u64>() / n;
    let oldest = samples.iter().map(|s| s.time).min().unwrap_or(now);
    let period = match now - oldest {
        0 => 1,
        p => p,
    };
    let mad = samples.iter().map(|s| avg.abs_diff(s.latency)).sum::<u64>() / n;
    (n, avg, mad, period)
}

impl Report {
    /// `createLatencyReport`, for the events we record (command, fast-command, expire-cycle).
    pub fn render(&self) -> String {
        let mut r = String::new();
        if self.events.is_empty() && self.threshold_ms == 0 {
            r.push_str("I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n");
            return r;
        }
        let mut advices = 0;
        let (mut slowlog_enabled, mut slowlog_tuning, mut slowlog_inspect) = (false, false, false);
        let (mut scheduler, mut hz, mut large_objects) = (false, false, false);
        for (num, (event, ts)) in self.events.iter().enumerate() {
            if num == 0 {
                r.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
            }
            let (n, avg, mad, period) = analyze(ts, self.now);
            let _ = write!(
                r,
                "{}. {}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} sec). Worst all time event {}ms.",
                num + 1,
                event,
                n,
                avg,
                mad,
                period as f64 / n as f64,
                ts.max
            );
            if event.eq_ignore_ascii_case("command") {
                if self.slowlog_slower_than < 0 {
                    slowlog_enabled = true;
                    advices += 1;
                } else if (self.slowlog_slower_than / 1000) as u64 > self.threshold_ms {
                    slowlog_tuning = true;
                    advices += 1;
                }
                slowlog_inspect = true;
                large_objects = true;
                advices += 2;
            }
            if event.eq_ignore_ascii_case("fast-command") {
                scheduler = true;
                advices += 1;
            }
            if event.eq_ignore_ascii_case("expire-cycle") {
                hz = true;
                large_objects = true;
                advices += 2;
            }
            r.push('\n');
        }
        let thp = self.anon_huge_pages > 0;
        if thp {
            advices += 1;
        }
        if self.events.is_empty() && advices == 0 {
            r.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n");
            return r;
        }
        if !self.events.is_empty() && advices == 0 {
            r.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
            return r;
        }
        r.push_str("\nI have a few advices for you:\n\n");
        let suggested = self.threshold_ms.saturating_mul(1000);
        if slowlog_enabled {
            let _ = writeln!(r, "- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {suggested}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.");
        }
        if slowlog_tuning {
            let _ = writeln!(r, "- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {suggested}'.");
        }
        if slowlog_inspect {
            r.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
        }
        if scheduler {
            r.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n\
                        \x20 1) Lower the system load.\n\
                        \x20 2) Use a computer / VM just for Redis if you are running other software in the same system.\n\
                        \x20 3) Check if you have a \"noisy neighbour\" problem.\n\
                        \x20 4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n\
                        \x20 5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n");
        }
        if hz && self.hz < 100 {
            r.push_str("- In order to make the Redis keys expiring process more incremental, try to set the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n");
        }
        if large_objects {
            r.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
        }
        if thp {
            r.push_str("- I detected a non zero amount of anonymous huge pages used by your process. This creates very serious latency events in different conditions, especially when Redis is persisting on disk. To disable THP support use the command 'echo never > /sys/kernel/mm/transparent_hugepage/enabled', make sure to also add it into /etc/rc.local so that the command will be executed again after a reboot. Note that even if you have already disabled THP, you still need to restart the Redis process to get rid of the huge pages already created.\n");
        }
        r
    }
}

fn reset(c: &mut Conn, args: &[Bytes]) {
    let n = if args.len() == 2 {
        c.globals.latency.reset(None)
    } else {
        args[2..]
            .iter()
            .map(|e| c.globals.latency.reset(Some(c_str(e))))
            .sum()
    };
    c.out.int(n as i64);
}

/// The commands LATENCY HISTOGRAM reports on: every one (`None`), or those named, each
/// followed by its subcommands, in request order (repeats repeat, unknown names are skipped).
fn histogram_targets(c: &Conn, args: &[Bytes]) -> Option<Vec<&'static str>> {
    if args.len() == 2 {
        return None;
    }
    let mut names = Vec::new();
    for a in &args[2..] {
        let Some(cmd) = super::server_cmds::find_command(c.table, a) else {
            continue;
        };
        names.push(cmd.name);
        names.extend(super::server_cmds::sorted_subs(cmd).iter().map(|s| s.name));
    }
    Some(names)
}

fn histogram(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        let targets = histogram_targets(c, &args);
        let wanted: Option<std::collections::HashSet<&'static str>> =
            targets.as_ref().map(|t| t.iter().copied().collect());
        let parts = run_on_all(c, move |sh| {
            sh.stats
                .cmdstats
                .iter()
                .filter(|(n, s)| {
                    s.hist.total() > 0 && wanted.as_ref().is_none_or(|w| w.contains(*n))
                })
                .map(|(n, s)| (*n, s.hist.clone()))
                .collect::<Vec<_>>()
        })
        .await;
        let mut merged: std::collections::BTreeMap<&'static str, Histogram> = Default::default();
        for (n, h) in parts.into_iter().flatten() {
            merged.entry(n).or_default().merge(&h);
        }
        let order: Vec<&'static str> = match targets {
            None => merged.keys().copied().collect(),
            Some(t) => t.into_iter().filter(|n| merged.contains_key(n)).collect(),
        };
        c.out.map(order.len());
        for n in order {
            let h = &merged[n];
            c.out.bulk(n.as_bytes());
            c.out.map(2);
            c.out.bulk(b"calls");
            c.out.int(h.total() as i64);
            c.out.bulk(b"histogram_usec");
            let cdf = h.cdf();
            c.out.map(cdf.len());
            for (usec, count) in cdf {
                c.out.int(usec);
                c.out.int(count as i64);
            }
        }
    })
}

fn help(c: &mut Conn, _args: &[Bytes]) {
    reply_help(
        c,
        &[
            "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
            "HELP",
            "    Prints this help.",
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::Monitor;

    fn series(samples: &[(i64, u64)]) -> TimeSeries {
        let m = Monitor::new(1, true);
        for &(t, l) in samples {
            m.add("command", l, t);
        }
        m.event(b"command").map(|(_, ts)| ts).unwrap()
    }

    #[test]
    fn graph_matches_redis_sparkline() {
        // Three samples 30 s, 2 min and 0 s ago, 10, 40 and 25 ms.
        let ts = series(&[(1000, 10), (1090, 40), (1120, 25)]);
        let g = render_graph("command", &ts, 1120);
        let want = "command - high 40 ms, low 10 ms (all time high 40 ms)\n".to_string()
            + &"-".repeat(80)
            + "\n"
            + " # \n"
            + " |_\n"
            + " ||\n"
            + "_||\n"
            + "   \n"
            + "230\n"
            + "m0s\n"
            + " s \n";
        assert_eq!(g, want);
    }

    #[test]
    fn graph_of_equal_samples_is_a_floor() {
        let ts = series(&[(1000, 7)]);
        let g = render_graph("fast-command", &ts, 1005);
        assert!(g.ends_with("-\n \n \n \n_\n \n5\ns\n"), "{g:?}");
    }

    #[test]
    fn doctor_texts() {
        let mut r = Report {
            events: Vec::new(),
            threshold_ms: 0,
            slowlog_slower_than: 10_000,
            hz: 10,
            anon_huge_pages: 0,
            now: 1000,
        };
        assert!(r.render().starts_with("I'm sorry, Dave"));
        r.threshold_ms = 5;
        assert!(r.render().starts_with("Dave, no latency spike"));
        r.events = vec![("command".into(), series(&[(990, 10), (994, 20)]))];
        let text = r.render();
        assert!(
            text.starts_with(
                "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n\
                 1. command: 2 latency spikes (average 15ms, mean deviation 5ms, period 5.00 sec). Worst all time event 20ms.\n\
                 \nI have a few advices for you:\n\n\
                 - Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than 5000'.\n- Check your Slow Log"
            ),
            "{text}"
        );
    }
}
