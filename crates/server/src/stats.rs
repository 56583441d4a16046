//! Command and error accounting for INFO commandstats/errorstats (per thread, summed at INFO).

use crate::shard::ThreadStats;

/// Records one executed command: its time and whether its reply was an error.
pub fn account(stats: &mut ThreadStats, name: &'static str, usec: u64, reply: &[u8]) {
    stats.total_commands += 1;
    let e = stats.cmdstats.entry(name).or_default();
    e.calls += 1;
    e.usec += usec;
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
