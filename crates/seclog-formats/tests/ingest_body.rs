//! Black-box tests of `decode_ingest_body` through the public API only.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use seclog_formats::{
    BodyError, DecodedBody, EventKind, IngestEvent, Rejected, Timestamp, decode_ingest_body,
};

fn rfc3339(time: Option<Timestamp>) -> Option<String> {
    time.map(Timestamp::to_rfc3339)
}

fn summary_of_events(decoded: &DecodedBody<'_>) -> Vec<(usize, EventKind, String)> {
    let text = |event: &IngestEvent<'_>| String::from_utf8_lossy(event.raw).into_owned();
    decoded
        .events
        .iter()
        .map(|event| (event.line, event.kind, text(event)))
        .collect()
}

fn summary_of_rejected(decoded: &DecodedBody<'_>) -> Vec<(usize, Vec<u8>, String)> {
    let row = |rejected: &Rejected<'_>| {
        (
            rejected.line,
            rejected.raw.to_vec(),
            rejected.reason.clone(),
        )
    };
    decoded.rejected.iter().map(row).collect()
}

#[test]
fn mixed_body_keeps_every_record_in_exactly_one_list() {
    let body = b"{\"eventTime\":\"2023-07-10T11:45:00Z\",\"n\":1}\r\n\
        plain text, with a trailing tab\t\r\n\
        \n\
        \x20\t\r\n\
        {\"a\":\n\
        caf\xc3\xa9 \xff bytes\n\
        [1,2]\n\
        \t {\"ts\":1688989500}  \r\n\
        \r\n\
        [\"unclosed\"\n\
        {\"a\":1}{\"b\":2}\n\
        last line without newline";
    let decoded = decode_ingest_body(body).unwrap();

    assert_eq!(
        summary_of_events(&decoded),
        [
            (
                1,
                EventKind::Json,
                r#"{"eventTime":"2023-07-10T11:45:00Z","n":1}"#.to_owned()
            ),
            (
                2,
                EventKind::Text,
                "plain text, with a trailing tab\t".to_owned()
            ),
            (8, EventKind::Json, "\t {\"ts\":1688989500}  ".to_owned()),
            (12, EventKind::Text, "last line without newline".to_owned()),
        ]
    );
    let times: Vec<_> = decoded
        .events
        .iter()
        .map(|event| rfc3339(event.time))
        .collect();
    let expected_time = Some("2023-07-10T11:45:00.000000000Z".to_owned());
    assert_eq!(times, [expected_time.clone(), None, expected_time, None]);

    assert_eq!(
        summary_of_rejected(&decoded),
        [
            (
                5,
                b"{\"a\":".to_vec(),
                "line 5: invalid JSON: EOF while parsing a value at column 5".to_owned()
            ),
            (
                6,
                b"caf\xc3\xa9 \xff bytes".to_vec(),
                "line 6 is not valid UTF-8 (at byte 6)".to_owned()
            ),
            (
                7,
                b"[1,2]".to_vec(),
                "line 7: JSON value is not an object".to_owned()
            ),
            (
                10,
                b"[\"unclosed\"".to_vec(),
                "line 10: invalid JSON: EOF while parsing a list at column 11".to_owned()
            ),
            (
                11,
                b"{\"a\":1}{\"b\":2}".to_vec(),
                "line 11: invalid JSON: trailing characters at column 8".to_owned()
            ),
        ]
    );
}

#[test]
fn empty_and_whitespace_bodies_are_refused() {
    for body in [
        &b""[..],
        b" ",
        b"\n\n",
        b"\r\n\t \x0c",
        b"\xEF\xBB\xBF",
        b"\xEF\xBB\xBF \n",
    ] {
        assert!(
            matches!(decode_ingest_body(body), Err(BodyError::Empty)),
            "{body:?}"
        );
    }
}

#[test]
fn leading_bom_is_dropped_and_line_numbers_count_leading_blank_lines() {
    let decoded = decode_ingest_body(b"\xEF\xBB\xBF\n\n{\"ts\":1}\n").unwrap();
    assert_eq!(
        summary_of_events(&decoded),
        [(3, EventKind::Json, "{\"ts\":1}".to_owned())]
    );

    let decoded = decode_ingest_body(b"\xEF\xBB\xBF{\"ts\":1}").unwrap();
    assert_eq!(decoded.events[0].raw, b"{\"ts\":1}");
    assert!(decoded.rejected.is_empty());
}

#[test]
fn text_lines_need_no_json_shape() {
    let body = b"<34>1 2023-07-10T11:45:00Z host sshd - - - {\"not\": \"checked\"\n  \"quoted\"\n";
    let decoded = decode_ingest_body(body).unwrap();
    assert!(decoded.rejected.is_empty());
    assert!(
        decoded
            .events
            .iter()
            .all(|event| event.kind == EventKind::Text && event.time.is_none())
    );
    assert_eq!(decoded.events.len(), 2);
}

#[test]
fn time_fields_through_the_body() {
    let cases = [
        (
            r#"{"@timestamp":"2023-07-10T13:45:00.123456789+02:00"}"#,
            Some("2023-07-10T11:45:00.123456789Z"),
        ),
        (
            r#"{"timestamp":"2023-07-10 11:45:00Z"}"#,
            Some("2023-07-10T11:45:00.000000000Z"),
        ),
        (
            r#"{"time":1688989500.5}"#,
            Some("2023-07-10T11:45:00.500000000Z"),
        ),
        (
            r#"{"ts":"1688989500123"}"#,
            Some("2023-07-10T11:45:00.123000000Z"),
        ),
        (
            r#"{"ts":1688989500123456}"#,
            Some("2023-07-10T11:45:00.123456000Z"),
        ),
        (
            r#"{"ts":"1688989500123456789"}"#,
            Some("2023-07-10T11:45:00.123456789Z"),
        ),
        (
            r#"{"ts":1,"@timestamp":"2023-07-10T11:45:00Z"}"#,
            Some("2023-07-10T11:45:00.000000000Z"),
        ),
        (
            r#"{"@timestamp":"later","ts":1688989500}"#,
            Some("2023-07-10T11:45:00.000000000Z"),
        ),
        (
            r#"{"eventTime":2,"eventTime":3}"#,
            Some("1970-01-01T00:00:02.000000000Z"),
        ),
        (r#"{"detail":{"eventTime":"2023-07-10T11:45:00Z"}}"#, None),
    ];
    let body: String = cases.iter().map(|(line, _)| format!("{line}\n")).collect();
    let decoded = decode_ingest_body(body.as_bytes()).unwrap();
    assert!(decoded.rejected.is_empty());
    for ((line, expected), event) in cases.iter().zip(&decoded.events) {
        assert_eq!(rfc3339(event.time).as_deref(), *expected, "{line}");
    }
}

#[test]
fn array_body_elements_keep_their_exact_bytes() {
    let body =
        b" \r\n[ {\"ts\": 1688989500} ,\n  {\"a\":[1, {\"b\":null}]},\"text\",\n 7, [], {}\n]\n";
    let decoded = decode_ingest_body(body).unwrap();
    assert_eq!(
        summary_of_events(&decoded),
        [
            (1, EventKind::Json, "{\"ts\": 1688989500}".to_owned()),
            (2, EventKind::Json, "{\"a\":[1, {\"b\":null}]}".to_owned()),
            (6, EventKind::Json, "{}".to_owned()),
        ]
    );
    assert_eq!(
        rfc3339(decoded.events[0].time).as_deref(),
        Some("2023-07-10T11:45:00.000000000Z")
    );
    assert_eq!(
        summary_of_rejected(&decoded),
        [
            (
                3,
                b"\"text\"".to_vec(),
                "array element 3 is not a JSON object".to_owned()
            ),
            (
                4,
                b"7".to_vec(),
                "array element 4 is not a JSON object".to_owned()
            ),
            (
                5,
                b"[]".to_vec(),
                "array element 5 is not a JSON object".to_owned()
            ),
        ]
    );
    let empty = decode_ingest_body(b"[]").unwrap();
    assert!(empty.events.is_empty() && empty.rejected.is_empty());
}

#[test]
fn malformed_array_body_is_refused_whole() {
    let cases: [(&[u8], &str); 5] = [
        (
            b"[{\"a\":1},",
            "EOF while parsing a value at line 1 column 9",
        ),
        (
            b"[{\"a\":1}]\n[{\"b\":2}]",
            "trailing characters at line 2 column 1",
        ),
        (
            b"[{\"a\":1}\n{\"b\":2}]",
            "expected `,` or `]` at line 2 column 1",
        ),
        (
            b"[{\"a\":\"\xff\"}]",
            "invalid unicode code point at line 1 column 8",
        ),
        (b"\xEF\xBB\xBF[1,]", "trailing comma at line 1 column 4"),
    ];
    for (body, expected) in cases {
        match decode_ingest_body(body) {
            Err(BodyError::MalformedArray(message)) => assert_eq!(message, expected, "{body:?}"),
            other => panic!("{body:?}: {other:?}"),
        }
    }
    let error = decode_ingest_body(b"[1,").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("body starts with '[' but is not a valid JSON array: ")
    );
}

#[test]
fn deep_nesting_is_rejected_or_accepted_without_overflowing_the_stack() {
    let depth = 100_000;
    let open = "[".repeat(depth);
    let balanced = format!("{open}{}", "]".repeat(depth));

    // A first line starting with '[' would make this an array body, hence the text line.
    let body = format!("deep lines follow\n{open}\n{{\"deep\":{balanced},\"ts\":1}}\n{balanced}\n");
    let decoded = decode_ingest_body(body.as_bytes()).unwrap();
    let accepted_lines: Vec<_> = decoded.events.iter().map(|event| event.line).collect();
    assert_eq!(accepted_lines, [1, 3]);
    assert!(decoded.events[1].time.is_some());
    let rejected_lines: Vec<_> = decoded
        .rejected
        .iter()
        .map(|rejected| rejected.line)
        .collect();
    assert_eq!(rejected_lines, [2, 4]);
    assert!(
        decoded.rejected[0]
            .reason
            .starts_with("line 2: invalid JSON: EOF while parsing")
    );
    assert_eq!(
        decoded.rejected[1].reason,
        "line 4: JSON value is not an object"
    );

    assert!(matches!(
        decode_ingest_body(open.as_bytes()),
        Err(BodyError::MalformedArray(_))
    ));
    let array_body = format!("[{balanced}]");
    let decoded = decode_ingest_body(array_body.as_bytes()).unwrap();
    assert_eq!(decoded.rejected.len(), 1);
}

/// xorshift64*: deterministic, dependency-free randomness for the property loop.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// Random bodies biased towards the bytes and fragments the decoder branches on.
fn random_body(rng: &mut Rng) -> Vec<u8> {
    const FRAGMENTS: [&[u8]; 24] = [
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b":",
        b",",
        b"\n",
        b"\r\n",
        b"\r",
        b" ",
        b"\t",
        b"\\",
        b"\xff",
        b"\xc3\xa9",
        b"\xEF\xBB\xBF",
        b"\"ts\":",
        b"\"time\":\"2023-07-10T11:45:00Z\"",
        b"1688989500",
        b"-1.5e3",
        b"null",
        b"{\"a\":1}",
        b"\"eventTime\":",
        b"\\u0000",
    ];
    let mut body = Vec::new();
    for _ in 0..rng.below(60) {
        if rng.below(3) == 0 {
            body.push(rng.next() as u8);
        } else {
            body.extend_from_slice(FRAGMENTS[rng.below(FRAGMENTS.len())]);
        }
    }
    body
}

/// The line-mode contract, restated naively: (line number, bytes) of every non-blank line.
fn expected_records(body: &[u8]) -> Vec<(usize, &[u8])> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut records = Vec::new();
    for (index, line) in body.split(|byte| *byte == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !line.iter().all(u8::is_ascii_whitespace) {
            records.push((index + 1, line));
        }
    }
    records
}

#[test]
fn random_bodies_never_panic_and_every_record_is_accounted_for() {
    let mut rng = Rng(0x5EC1_06F0_2A75_0001);
    for _ in 0..5_000 {
        let body = random_body(&mut rng);
        let expected = expected_records(&body);
        let first_visible = body
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(&body)
            .iter()
            .find(|byte| !byte.is_ascii_whitespace());
        let decoded = match decode_ingest_body(&body) {
            Ok(decoded) => decoded,
            Err(BodyError::Empty) => {
                assert!(expected.is_empty(), "{body:?}");
                continue;
            }
            Err(error) => {
                assert_eq!(first_visible, Some(&b'['), "{body:?}: {error}");
                continue;
            }
        };
        let mut seen: Vec<(usize, &[u8])> = decoded
            .events
            .iter()
            .map(|event| (event.line, event.raw))
            .collect();
        seen.extend(
            decoded
                .rejected
                .iter()
                .map(|rejected| (rejected.line, rejected.raw)),
        );
        seen.sort_unstable();
        if first_visible == Some(&b'[') {
            let numbers: Vec<usize> = seen.iter().map(|(line, _)| *line).collect();
            assert_eq!(numbers, (1..=seen.len()).collect::<Vec<_>>(), "{body:?}");
        } else {
            assert_eq!(seen, expected, "{body:?}");
        }
        for event in &decoded.events {
            if event.kind == EventKind::Text {
                assert!(event.time.is_none());
                assert!(std::str::from_utf8(event.raw).is_ok());
            } else {
                assert!(
                    serde_json::from_slice::<serde_json::Value>(event.raw)
                        .unwrap()
                        .is_object()
                );
            }
        }
    }
}
