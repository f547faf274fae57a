//! Parsing any bytes as a syslog message never panics; only an empty message is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seclog_formats::syslog::parse_syslog;
use seclog_model::Timestamp;

fuzz_target!(|data: &[u8]| {
    let received = Timestamp::from_unix_nanos(1_764_000_000_000_000_000);
    match parse_syslog(data, received) {
        Ok(message) => assert!(message.fields.contains_key("message")),
        Err(_) => assert!(String::from_utf8_lossy(data).trim().is_empty()),
    }
});
