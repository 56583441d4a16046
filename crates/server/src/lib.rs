//! The server: shard threads, connections, the command table and command families, config.
//!
//! Layout (see docs/architecture.md): `server` starts threads; `shard` owns a keyspace slice
//! and its one mutation path; `conn` reads, parses and dispatches pipelines; `coord` runs
//! cross-shard and atomic multi-shard work; `inbox` carries work to a shard (waking it only if
//! it sleeps), `monitor` feeds MONITOR connections, `pubsub` holds subscriptions and delivers PUBLISH, `push` is each connection's sink for output other threads produce, `tracking` is client-side caching, `watch` is WATCH's per-shard table of watched keys, `direct` reports a reply a shard wrote to another thread's socket, and `latency` keeps
//! per-command latency histograms and the latency monitor's events; `command`
//! is the one command table; `commands/*` hold one module per command family.

pub mod blocking;
pub mod command;
pub mod commands;
pub mod config;
pub mod conn;
pub mod coord;
pub mod direct;
pub mod globals;
pub mod inbox;
pub mod info;
pub mod latency;
pub mod locks;
pub mod log;
pub mod monitor;
pub mod pubsub;
pub mod push;
pub mod server;
pub mod shard;
pub mod slowlog;
pub mod stats;
pub mod tracking;
pub mod watch;

pub use config::Config;
pub use server::run;
