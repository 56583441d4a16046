//! Latency accounting: the per-command latency histograms behind INFO latencystats and
//! LATENCY HISTOGRAM, and the latency monitor's event time series behind LATENCY
//! LATEST/HISTORY/GRAPH/DOCTOR/RESET (Redis's latency.c).
//!
//! Why our own histogram and not the `hdrhistogram` crate: the figures users compare are the
//! numbers Redis prints, and those come from the bucket layout of the HdrHistogram C library
//! Redis vendors, configured as Redis does (1 ns to 1 s, 2 significant figures), read back
//! through its `value_at_percentile` rounding and its logarithmic iterator. [`Histogram`]
//! keeps exactly that layout (256 sub-buckets, 23 buckets, 3,072 counters) and nothing else,
//! grows its counter array only as far as the largest value seen (a command that always takes
//! microseconds never allocates the upper buckets), and is owned by one shard thread, so
//! recording is an index computation and an increment, no atomics.
//!
//! What is recorded is Redis's: each command's duration in whole microseconds, times 1,000,
//! clamped to [1 ns, 1 s]. So a command under a microsecond lands in the 1 ns bucket and
//! INFO shows `p50=0.001`, as Redis does.
//!
//! The latency monitor records an event only when `latency-monitor-threshold` is non-zero and
//! the event took at least that many milliseconds; the command path pays one relaxed load.
//!
//! Invariant: every number this module hands out (bucket bounds, percentile values, CDF
//! labels, the doctor's and the graph's text) is computed the way Redis 7.0.15 computes it,
//! so that the same samples give the same bytes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Redis's `LATENCY_HISTOGRAM_MIN_VALUE` and `_MAX_VALUE`, in nanoseconds.
pub const MIN_VALUE: i64 = 1;
pub const MAX_VALUE: i64 = 1_000_000_000;

/// The bucket layout HdrHistogram derives for (1, 1e9, 2 significant figures): 2·10² values
/// need 256 sub-buckets (half of them, 128, per bucket after the first), unit magnitude 0,
/// and 23 buckets reach 10⁹.
const HALF_COUNT_MAGNITUDE: u32 = 7;
const HALF_COUNT: i64 = 1 << HALF_COUNT_MAGNITUDE;
const SUB_BUCKET_COUNT: i64 = 2 * HALF_COUNT;
const SUB_BUCKET_MASK: i64 = SUB_BUCKET_COUNT - 1;
const BUCKET_COUNT: usize = 23;
pub const COUNTS_LEN: usize = (BUCKET_COUNT + 1) * HALF_COUNT as usize;

fn bucket_index(v: i64) -> i64 {
    let pow2ceiling = 64 - (v | SUB_BUCKET_MASK).leading_zeros() as i64;
    pow2ceiling - (HALF_COUNT_MAGNITUDE as i64 + 1)
}

fn sub_bucket_index(v: i64, bucket: i64) -> i64 {
    v >> bucket
}

fn counts_index(bucket: i64, sub: i64) -> i64 {
    ((bucket + 1) << HALF_COUNT_MAGNITUDE) + (sub - HALF_COUNT)
}

fn counts_index_for(v: i64) -> i64 {
    let b = bucket_index(v);
    counts_index(b, sub_bucket_index(v, b))
}

/// The lowest value counted at counter `idx`.
fn value_at_index(idx: i64) -> i64 {
    let mut bucket = (idx >> HALF_COUNT_MAGNITUDE) - 1;
    let mut sub = (idx & (HALF_COUNT - 1)) + HALF_COUNT;
    if bucket < 0 {
        sub -= HALF_COUNT;
        bucket = 0;
    }
    sub << bucket
}

fn range_size(v: i64) -> i64 {
    let b = bucket_index(v);
    let sub = sub_bucket_index(v, b);
    let adjusted = if sub >= SUB_BUCKET_COUNT { b + 1 } else { b };
    1i64 << adjusted
}

fn lowest_equivalent(v: i64) -> i64 {
    let b = bucket_index(v);
    sub_bucket_index(v, b) << b
}

fn highest_equivalent(v: i64) -> i64 {
    lowest_equivalent(v) + range_size(v) - 1
}

/// One command's latency distribution (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Histogram {
    /// Records one command that took `usec` microseconds, as Redis's
    /// `updateCommandLatencyHistogram(duration * 1000)` does.
    #[inline]
    pub fn record_usec(&mut self, usec: u64) {
        self.record(usec.saturating_mul(1000).min(MAX_VALUE as u64) as i64);
    }

    /// Records a value in nanoseconds, within [`MIN_VALUE`, `MAX_VALUE`].
    pub fn record(&mut self, ns: i64) {
        let idx = counts_index_for(ns.clamp(MIN_VALUE, MAX_VALUE)) as usize;
        if idx >= self.counts.len() {
            self.counts.resize(idx + 1, 0);
        }
        self.counts[idx] += 1;
        self.total += 1;
    }

    /// How many values were recorded (LATENCY HISTOGRAM's `calls`).
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn merge(&mut self, o: &Histogram) {
        if o.counts.len() > self.counts.len() {
            self.counts.resize(o.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.total += o.total;
    }

    fn count_at(&self, idx: usize) -> u64 {
        self.counts.get(idx).copied().unwrap_or(0)
    }

    /// HdrHistogram's `hdr_value_at_percentile`, in nanoseconds.
    pub fn value_at_percentile(&self, percentile: f64) -> i64 {
        let p = percentile.min(100.0);
        let wanted = (((p / 100.0) * self.total as f64) + 0.5) as i64;
        let wanted = wanted.max(1) as u64;
        let mut sum = 0u64;
        let mut value = 0;
        for (idx, &n) in self.counts.iter().enumerate() {
            sum += n;
            if sum >= wanted {
                value = value_at_index(idx as i64);
                break;
            }
        }
        if percentile == 0.0 {
            lowest_equivalent(value)
        } else {
            highest_equivalent(value)
        }
    }

    /// LATENCY HISTOGRAM's `histogram_usec`: HdrHistogram's logarithmic iteration from 1,024 ns
    /// doubling, as `(bucket label in microseconds, cumulative count)`, leaving out steps that
    /// add nothing. A label is the highest value of the first counter at or above its level,
    /// divided by 1,000 (so 1, 2, 4, ..., 65, 131, 262...).
    pub fn cdf(&self) -> Vec<(i64, u64)> {
        // A literal port of `log_iter_next` over `move_next`: the bounds it reports depend on
        // where the underlying iteration stands, not only on the level.
        let mut out = Vec::new();
        let mut idx: i64 = -1;
        let mut cumulative = 0u64;
        let mut value = 0i64;
        let mut highest = 0i64;
        let mut level: i64 = 1024;
        let mut level_lowest = lowest_equivalent(level);
        let mut previous = 0u64;
        let len = COUNTS_LEN as i64;
        loop {
            let has_next = cumulative < self.total;
            let peek_beyond = idx < len && value_at_index(idx + 1) > level_lowest;
            if !(has_next || peek_beyond) {
                break;
            }
            loop {
                if value >= level_lowest {
                    level *= 2;
                    level_lowest = lowest_equivalent(level);
                    break;
                }
                idx += 1;
                if idx >= len {
                    break;
                }
                cumulative += self.count_at(idx as usize);
                value = value_at_index(idx);
                let b = bucket_index(value);
                let sub = sub_bucket_index(value, b);
                let adjusted = if sub >= SUB_BUCKET_COUNT { b + 1 } else { b };
                highest = (sub << b) + (1i64 << adjusted) - 1;
            }
            if cumulative > previous {
                out.push((highest / 1000, cumulative));
            }
            previous = cumulative;
            if idx >= len {
                break;
            }
        }
        out
    }
}

/// Redis's `LATENCY_TS_LEN`: samples kept per event.
const TS_LEN: usize = 160;

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Unix seconds (0: an empty slot).
    pub time: i64,
    /// Milliseconds.
    pub latency: u64,
}

/// One event's history: a ring of one sample per second at most (the worst of that second).
#[derive(Clone, Debug)]
pub struct TimeSeries {
    idx: usize,
    pub max: u64,
    samples: [Sample; TS_LEN],
}

impl TimeSeries {
    fn new() -> TimeSeries {
        TimeSeries {
            idx: 0,
            max: 0,
            samples: [Sample::default(); TS_LEN],
        }
    }

    fn add(&mut self, latency: u64, now: i64) {
        self.max = self.max.max(latency);
        let prev = (self.idx + TS_LEN - 1) % TS_LEN;
        if self.samples[prev].time == now {
            let s = &mut self.samples[prev];
            s.latency = s.latency.max(latency);
            return;
        }
        self.samples[self.idx] = Sample { time: now, latency };
        self.idx = (self.idx + 1) % TS_LEN;
    }

    /// The samples held, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        (0..TS_LEN)
            .map(|j| self.samples[(self.idx + j) % TS_LEN])
            .filter(|s| s.time != 0)
            .collect()
    }

    /// The newest sample (empty if none, which a stored series never is).
    pub fn latest(&self) -> Sample {
        self.samples[(self.idx + TS_LEN - 1) % TS_LEN]
    }
}

/// The latency monitor and the switches of latency tracking, shared by every thread.
pub struct Monitor {
    threshold_ms: AtomicU64,
    tracking: AtomicBool,
    /// Events in the order they were first seen (Redis's order is its dict's, random per run).
    events: Mutex<Vec<(String, TimeSeries)>>,
}

impl Monitor {
    pub fn new(threshold_ms: u64, tracking: bool) -> Monitor {
        Monitor {
            threshold_ms: AtomicU64::new(threshold_ms),
            tracking: AtomicBool::new(tracking),
            events: Mutex::new(Vec::new()),
        }
    }

    /// Applies `latency-monitor-threshold` and `latency-tracking`.
    pub fn configure(&self, threshold_ms: u64, tracking: bool) {
        self.threshold_ms.store(threshold_ms, Ordering::Relaxed);
        self.tracking.store(tracking, Ordering::Relaxed);
    }

    /// Whether per-command histograms are kept (`latency-tracking`).
    #[inline]
    pub fn tracking(&self) -> bool {
        self.tracking.load(Ordering::Relaxed)
    }

    /// `latency-monitor-threshold` in milliseconds (0: off).
    #[inline]
    pub fn threshold_ms(&self) -> u64 {
        self.threshold_ms.load(Ordering::Relaxed)
    }

    /// Redis's `latencyAddSampleIfNeeded`: records `event` if the monitor is on and
    /// `latency_ms` reaches its threshold.
    #[inline]
    pub fn add_if_needed(&self, event: &str, latency_ms: u64) {
        let t = self.threshold_ms();
        if t != 0 && latency_ms >= t {
            self.add(event, latency_ms, crate::shard::now_ms() as i64 / 1000);
        }
    }

    /// Records a sample of `event` at unix second `now`.
    pub fn add(&self, event: &str, latency_ms: u64, now: i64) {
        let mut ev = self.lock();
        match ev.iter_mut().find(|(n, _)| n == event) {
            Some((_, ts)) => ts.add(latency_ms, now),
            None => {
                let mut ts = TimeSeries::new();
                ts.add(latency_ms, now);
                ev.push((event.to_string(), ts));
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, TimeSeries)>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of every event's series.
    pub fn events(&self) -> Vec<(String, TimeSeries)> {
        self.lock().clone()
    }

    /// The series of `event` (matched exactly, as Redis's dict lookup does).
    pub fn event(&self, event: &[u8]) -> Option<(String, TimeSeries)> {
        self.lock()
            .iter()
            .find(|(n, _)| n.as_bytes() == event)
            .cloned()
    }

    /// Drops `event`'s series (case-insensitively), or every series for `None`; returns how
    /// many were dropped.
    pub fn reset(&self, event: Option<&[u8]>) -> usize {
        let mut ev = self.lock();
        let before = ev.len();
        match event {
            None => ev.clear(),
            Some(e) => ev.retain(|(n, _)| !n.as_bytes().eq_ignore_ascii_case(e)),
        }
        before - ev.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(usecs: &[u64]) -> Histogram {
        let mut h = Histogram::default();
        for &u in usecs {
            h.record_usec(u);
        }
        h
    }

    #[test]
    fn layout_is_hdr_histograms_for_redis_settings() {
        // Values below 256 ns are exact; 256..511 in steps of 2, 512..1023 in steps of 4...
        assert_eq!(counts_index_for(255), 255);
        assert_eq!(counts_index_for(256), 256);
        assert_eq!(counts_index_for(257), 256);
        assert_eq!(counts_index_for(1024), 512);
        assert_eq!(value_at_index(512), 1024);
        assert_eq!(highest_equivalent(1024), 1031);
        // The largest value (1 s) fits in the 23 buckets.
        assert!(counts_index_for(MAX_VALUE) < COUNTS_LEN as i64);
        assert_eq!(value_at_index(COUNTS_LEN as i64 - 1), 255 << 22);
    }

    #[test]
    fn percentiles_round_like_redis_info() {
        // Redis prints p50=11.007 for one 11 µs SET and 81.407 for one 81 µs INFO.
        assert_eq!(of(&[11]).value_at_percentile(50.0), 11_007);
        assert_eq!(of(&[81]).value_at_percentile(99.9), 81_407);
        // Under a microsecond counts as 1 ns: p50=0.001; exactly 1 µs as 1.003.
        assert_eq!(of(&[0]).value_at_percentile(50.0), 1);
        assert_eq!(of(&[1]).value_at_percentile(50.0), 1_003);
        let h = of(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1000]);
        assert_eq!(h.value_at_percentile(50.0), 1);
        assert_eq!(h.value_at_percentile(99.0), 1_003_519);
        assert_eq!(h.value_at_percentile(0.0), 1);
        // Above a second is a second.
        assert_eq!(
            of(&[5_000_000]).value_at_percentile(50.0),
            highest_equivalent(MAX_VALUE)
        );
    }

    #[test]
    fn cdf_labels_and_cumulative_counts() {
        assert_eq!(of(&[0, 0, 1]).cdf(), vec![(1, 3)]);
        assert_eq!(of(&[0, 3]).cdf(), vec![(1, 1), (4, 2)]);
        // 50 ms falls between the 33.5 ms and 67 ms levels: label 67633 (= (2^26 + 2^19 - 1) / 1000).
        assert_eq!(of(&[50_000]).cdf(), vec![(67_633, 1)]);
        assert_eq!(of(&[2, 2, 900]).cdf(), vec![(2, 2), (1_056, 3)]);
        // A value clamped to 1 s is reported at the end of the counters.
        assert_eq!(of(&[2_000_000]).cdf(), vec![(1_073_741, 1)]);
        assert!(Histogram::default().cdf().is_empty());
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = of(&[0, 5]);
        a.merge(&of(&[700, 0]));
        assert_eq!(a, of(&[0, 0, 5, 700]));
        assert_eq!(a.total(), 4);
    }

    #[test]
    fn time_series_keeps_the_worst_of_each_second() {
        let m = Monitor::new(1, true);
        m.add("command", 5, 100);
        m.add("command", 9, 100);
        m.add("command", 3, 100);
        m.add("command", 2, 101);
        let (_, ts) = m.event(b"command").unwrap();
        assert_eq!(
            ts.samples(),
            vec![
                Sample {
                    time: 100,
                    latency: 9
                },
                Sample {
                    time: 101,
                    latency: 2
                }
            ]
        );
        assert_eq!(ts.max, 9);
        assert_eq!(ts.latest().latency, 2);
        for s in 0..200 {
            m.add("command", 1, 1000 + s);
        }
        let (_, ts) = m.event(b"command").unwrap();
        assert_eq!(ts.samples().len(), TS_LEN);
        assert_eq!(ts.samples()[0].time, 1040);
        assert_eq!(m.reset(Some(b"COMMAND")), 1);
        assert_eq!(m.reset(None), 0);
    }

    #[test]
    fn add_if_needed_respects_the_threshold() {
        let m = Monitor::new(0, true);
        m.add_if_needed("command", 100);
        assert!(m.events().is_empty());
        m.configure(10, true);
        m.add_if_needed("command", 9);
        assert!(m.events().is_empty());
        m.add_if_needed("command", 10);
        assert_eq!(m.events().len(), 1);
    }
}
