//! The server: shard threads, connections, command families, config.

pub mod config;
