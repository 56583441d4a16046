//! Fuzzes the request parser: any bytes, split at any point, must never panic, must lose or
//! invent no bytes (the unparsed tail plus what the parser holds of a partial request is always
//! what was received minus the requests returned), and must give the same commands as parsing
//! the bytes in one piece.
//! Run: `cargo +stable fuzz run parse_request --sanitizer none -- -dict=fuzz/resp.dict`
#![no_main]

use bytes::BytesMut;
use damselfly_resp::{Parsed, ParserLimits, RequestParser};
use libfuzzer_sys::fuzz_target;

fn parse_all(chunks: &[&[u8]]) -> (Vec<Vec<Vec<u8>>>, bool) {
    let limits = ParserLimits { max_bulk_len: 1 << 20, max_multibulk_len: 1 << 16 };
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        loop {
            let before = buf.len() + parser.pending_len();
            match parser.parse(&mut buf, &limits, true) {
                Ok(Parsed::Command(args)) => {
                    // A returned request leaves the query buffer, and only its own bytes do.
                    let after = buf.len() + parser.pending_len();
                    assert!(after < before, "command consumed no bytes");
                    let arg_bytes: usize = args.iter().map(|a| a.len()).sum();
                    assert!(before - after >= arg_bytes, "command longer than its bytes");
                    out.push(args.iter().map(|a| a.to_vec()).collect())
                }
                Ok(Parsed::Incomplete { need }) => {
                    assert_eq!(
                        before,
                        buf.len() + parser.pending_len(),
                        "incomplete parse lost or invented bytes"
                    );
                    assert!(need == 0 || need > buf.len(), "need already met");
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
