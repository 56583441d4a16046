//! The `damselfly` binary: parse flags and environment, then run the server.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use damselfly_server::config::{Config, ConfigError};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env: Vec<(String, String)> = std::env::vars().collect();
    let cfg = match Config::from_args(args, &env) {
        Ok(c) => c,
        Err(ConfigError::Help(text)) => {
            println!("{text}");
            return;
        }
        Err(ConfigError::Version) => {
            println!("damselfly {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Err(ConfigError::Invalid(msg)) => {
            eprintln!("damselfly: {msg}");
            eprintln!("Run 'damselfly --help' for the list of options.");
            std::process::exit(1);
        }
    };
    if let Err(msg) = damselfly_server::run(cfg) {
        eprintln!("damselfly: {msg}");
        std::process::exit(1);
    }
}
