//! Command and error accounting for INFO commandstats/errorstats (per thread, summed at INFO).

use crate::command::{flags, Command};
use crate::latency::Monitor;
use crate::shard::ThreadStats;

/// Records one executed command: its time, whether its reply was an error, its latency
/// histogram (`latency-tracking`) and a latency monitor event if it was slow enough, as
/// Redis's `call()` does (`fast-command` for FAST commands, `command` for the others).
pub fn account(
    stats: &mut ThreadStats,
    cmd: &'static Command,
    latency: &Monitor,
    usec: u64,
    reply: &[u8],
) {
    stats.total_commands += 1;
    let e = stats.cmdstats.entry(cmd.name).or_default();
    e.calls += 1;
    e.usec += usec;
    if latency.tracking() {
        e.hist.record_usec(usec);
    }
    let event = if cmd.flags & flags::FAST != 0 {
        "fast-command"
    } else {
        "command"
    };
    latency.add_if_needed(event, usec / 1000);
    if reply.first() == Some(&b'-') {
        e.failed += 1;
        record_error(stats, reply);
    }
}

/// Records a command rejected before it ran (unknown, arity, auth).
pub fn account_rejected(stats: &mut ThreadStats, name: Option<&'static str>, msg: &[u8]) {
    if let Some(n) = name {
        stats.cmdstats.entry(n).or_default().rejected += 1;
    }
    count_error_prefix(stats, msg);
}

fn record_error(stats: &mut ThreadStats, reply: &[u8]) {
    count_error_prefix(stats, &reply[1..]);
}

/// Counts an error under its first word (`ERR`, `WRONGTYPE`...), as INFO errorstats does.
fn count_error_prefix(stats: &mut ThreadStats, line: &[u8]) {
    let end = line
        .iter()
        .position(|&b| b == b' ' || b == b'\r')
        .unwrap_or(line.len());
    let prefix = String::from_utf8_lossy(&line[..end]);
    match stats.errorstats.get_mut(prefix.as_ref()) {
        Some(n) => *n += 1,
        None => {
            stats.errorstats.insert(prefix.into_owned(), 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_feeds_histograms_and_the_latency_monitor() {
        let table: &'static _ = Box::leak(Box::new(crate::commands::build_table()));
        let get = table.get("get").expect("get");
        let debug = table.get("debug").expect("debug");
        let monitor = Monitor::new(5, true);
        let mut stats = ThreadStats::default();
        account(&mut stats, get, &monitor, 11, b"$1\r\nx\r\n");
        account(&mut stats, get, &monitor, 4_999, b"-ERR x\r\n");
        assert_eq!(stats.cmdstats["get"].hist.total(), 2);
        assert_eq!(stats.cmdstats["get"].failed, 1);
        assert!(
            monitor.events().is_empty(),
            "4.999 ms is under a 5 ms threshold"
        );
        // A FAST command is a `fast-command` event, any other a `command` event.
        account(&mut stats, get, &monitor, 5_000, b"+OK\r\n");
        account(&mut stats, debug, &monitor, 60_000, b"+OK\r\n");
        let names: Vec<String> = monitor.events().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["fast-command", "command"]);
        // latency-tracking off: counted, not sampled.
        monitor.configure(0, false);
        account(&mut stats, get, &monitor, 11, b"+OK\r\n");
        assert_eq!(stats.cmdstats["get"].calls, 4);
        assert_eq!(stats.cmdstats["get"].hist.total(), 3);
        let lean = stats.snapshot(false);
        assert_eq!(lean.cmdstats["get"].calls, 4);
        assert_eq!(lean.cmdstats["get"].hist.total(), 0);
        assert_eq!(stats.snapshot(true).cmdstats["get"].hist.total(), 3);
    }
}
