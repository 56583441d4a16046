//! Fuzzes the request parser: any bytes, split at any point, must never panic, must consume
//! only whole requests, and must give the same commands as parsing the bytes in one piece.
//! Run: `cargo +stable fuzz run parse_request --sanitizer none -- -dict=fuzz/resp.dict`
#![no_main]

use bytes::BytesMut;
use damselfly_resp::{parse, Parsed, ParserLimits};
use libfuzzer_sys::fuzz_target;

fn parse_all(chunks: &[&[u8]]) -> (Vec<Vec<Vec<u8>>>, bool) {
    let limits = ParserLimits { max_bulk_len: 1 << 20, max_multibulk_len: 1 << 16 };
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        loop {
            let before = buf.len();
            match parse(&mut buf, &limits, true) {
                Ok(Parsed::Command(args)) => out.push(args.iter().map(|a| a.to_vec()).collect()),
                Ok(Parsed::Incomplete { .. }) => {
                    assert_eq!(before, buf.len(), "incomplete parse consumed bytes");
                    break;
                }
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let split = data[0] as usize % data.len();
    let body = &data[1..];
    let split = split.min(body.len());
    let whole = parse_all(&[body]);
    let pieces = parse_all(&[&body[..split], &body[split..]]);
    if !whole.1 && !pieces.1 {
        assert_eq!(whole.0, pieces.0);
    }
});
