//! Real CloudTrail records (the Invictus IR sample set) through both body forms.
//!
//! Skipped with a message when the shared data directory is absent.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::PathBuf;

use seclog_formats::{EventKind, decode_ingest_body};
use serde_json::Value;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cloudtrail/invictus")
}

/// "2023-07-10T11:45:00Z" -> "2023-07-10T11:45:00.000000000Z", computed without the crate.
fn expected_rfc3339(event_time: &str) -> String {
    let date_time = event_time.strip_suffix('Z').unwrap();
    assert!(
        !date_time.contains('.'),
        "CloudTrail eventTime has no fraction: {event_time}"
    );
    format!("{date_time}.000000000Z")
}

/// Every record of every `{"Records":[...]}` file, re-serialized compactly (one line each).
fn load_records() -> Option<Vec<(String, String)>> {
    let entries = match std::fs::read_dir(data_dir()) {
        Ok(entries) => entries,
        Err(error) => {
            eprintln!("skipping: {} is unavailable: {error}", data_dir().display());
            return None;
        }
    };
    let mut records = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        // The directory also holds the data set's LICENSE.
        if path.extension().is_none_or(|extension| extension != "json") {
            continue;
        }
        let file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for record in file["Records"].as_array().unwrap() {
            let event_time = record["eventTime"].as_str().unwrap();
            records.push((record.to_string(), expected_rfc3339(event_time)));
        }
    }
    assert!(!records.is_empty());
    Some(records)
}

#[test]
fn cloudtrail_records_as_ndjson_and_as_an_array() {
    let Some(records) = load_records() else {
        return;
    };
    let lines: Vec<&str> = records.iter().map(|(line, _)| line.as_str()).collect();

    for body in [lines.join("\n"), format!("[{}]", lines.join(",\n"))] {
        let decoded = decode_ingest_body(body.as_bytes()).unwrap();
        assert!(
            decoded.rejected.is_empty(),
            "{:?}",
            decoded.rejected.first()
        );
        assert_eq!(decoded.events.len(), records.len());
        for (index, (event, (line, expected_time))) in
            decoded.events.iter().zip(&records).enumerate()
        {
            assert_eq!(event.line, index + 1);
            assert_eq!(event.kind, EventKind::Json);
            assert_eq!(event.raw, line.as_bytes());
            assert_eq!(event.time.unwrap().to_rfc3339(), *expected_time);
        }
    }
}
