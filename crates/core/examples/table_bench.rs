//! Lookup micro-benchmark for the keyspace table.
//!
//! Inserts 1M keys `key:%012d` with 16-byte values, then times 5M random `get`s, plainly and in
//! batches of 16 that first call `prefetch` and `prefetch_entry` for the whole batch (what the
//! server can do with a pipeline of commands for one shard).
//!
//! Run: `cargo run -p damselfly-core --release --example table_bench [keys] [lookups] [rounds]`

use damselfly_core::{Entry, NewValue, Table};
use std::hint::black_box;
use std::time::Instant;

const BATCH: usize = 16;

fn key(i: u64) -> [u8; 16] {
    let mut k = *b"key:000000000000";
    let mut n = i;
    for b in k[4..].iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
    k
}

/// splitmix64: a tiny deterministic generator (no dependency).
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn plain(t: &Table, queries: &[[u8; 16]]) -> usize {
    let mut found = 0usize;
    for q in queries {
        if let Some(e) = t.get(black_box(q)) {
            found += e.key().len();
        }
    }
    found
}

fn batched(t: &Table, queries: &[[u8; 16]]) -> usize {
    let mut found = 0usize;
    for chunk in queries.chunks(BATCH) {
        for q in chunk {
            t.prefetch(black_box(q));
        }
        for q in chunk {
            t.prefetch_entry(black_box(q));
        }
        for q in chunk {
            if let Some(e) = t.get(black_box(q)) {
                found += e.key().len();
            }
        }
    }
    found
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let lookups: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);

    let mut t = Table::new();
    let start = Instant::now();
    for i in 0..n {
        t.insert(Entry::new(&key(i), NewValue::Str(&[b'x'; 16]), None), 0);
    }
    let ins = start.elapsed();
    println!(
        "inserted {n} keys in {:.1} ms ({:.1} ns/insert), {} segments",
        ins.as_secs_f64() * 1e3,
        ins.as_secs_f64() * 1e9 / n as f64,
        t.segments()
    );
    println!(
        "table overhead_bytes: {} = {:.2} bytes/key",
        t.overhead_bytes(),
        t.overhead_bytes() as f64 / n as f64
    );

    let mut rng = 0x1234_5678_u64;
    let queries: Vec<[u8; 16]> = (0..lookups).map(|_| key(next(&mut rng) % n)).collect();

    type Bench = fn(&Table, &[[u8; 16]]) -> usize;
    let benches: [(&str, Bench); 2] = [("plain", plain), ("batch16+prefetch", batched)];
    for (name, f) in benches {
        let mut best = f64::MAX;
        let mut all = Vec::new();
        for _ in 0..rounds {
            let start = Instant::now();
            let found = black_box(f(&t, &queries));
            let ns = start.elapsed().as_secs_f64() * 1e9 / lookups as f64;
            assert_eq!(found, lookups * 16, "every queried key exists");
            best = best.min(ns);
            all.push(format!("{ns:.1}"));
        }
        println!(
            "{name:>18}: best {best:.1} ns/lookup (rounds: {})",
            all.join(", ")
        );
    }
}
