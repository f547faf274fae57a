//! Any body given to `POST /api/v1/ingest` decodes without panicking, and every non-blank
//! record ends up either accepted or rejected, in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seclog_formats::decode_ingest_body;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = decode_ingest_body(data) {
        let mut lines: Vec<usize> = decoded
            .events
            .iter()
            .map(|event| event.line)
            .chain(decoded.rejected.iter().map(|rejected| rejected.line))
            .collect();
        let count = lines.len();
        lines.sort_unstable();
        lines.dedup();
        assert_eq!(lines.len(), count, "a record was reported twice");
    }
});
