//! RESP2/RESP3 wire protocol: the request parser and the reply builder. No I/O lives here, so
//! both are tested (and fuzzed) as pure functions over bytes.

pub mod parser;
pub mod reply;

pub use parser::{
    parse_i64_strict, split_args, Parsed, ParserLimits, ProtocolError, RequestParser,
    INLINE_MAX_SIZE,
};
pub use reply::{format_double, format_g, Protocol, ReplyBuilder};
