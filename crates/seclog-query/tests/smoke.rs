//! Small end-to-end queries over hand-written events.

mod common;

use common::{Fixture, rows_json};
use serde_json::json;

fn fixture() -> Fixture {
    let events = vec![
        json!({"eventTime":"2024-01-01T00:00:00Z","eventName":"GetObject","eventSource":"s3.amazonaws.com","sourceIPAddress":"10.0.0.1","userIdentity":{"arn":"arn:aws:iam::1:user/alice","accessKeyId":"AKIA1"},"bytes":100,"resources":[{"ARN":"arn:aws:s3:::b1"}]}),
        json!({"eventTime":"2024-01-01T00:10:00Z","eventName":"PutObject","eventSource":"s3.amazonaws.com","sourceIPAddress":"10.0.0.2","userIdentity":{"arn":"arn:aws:iam::1:user/bob","accessKeyId":"AKIA2"},"bytes":250,"errorCode":"AccessDenied"}),
        json!({"eventTime":"2024-01-01T01:05:00Z","eventName":"GetObject","eventSource":"s3.amazonaws.com","sourceIPAddress":"192.168.1.9","userIdentity":{"arn":"arn:aws:iam::1:user/alice","accessKeyId":"AKIA1"},"bytes":"75"}),
        json!({"eventTime":"2024-01-01T02:00:00Z","eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","sourceIPAddress":"203.0.113.7","userIdentity":{"arn":"arn:aws:iam::1:user/carol"},"responseElements":{"ConsoleLogin":"Failure"}}),
    ];
    Fixture::new(vec![("aws/cloudtrail", events)])
}

#[test]
fn filters_stats_sorts_and_parses() {
    let fx = fixture();
    let answer = fx.query(
        "filter eventName = \"GetObject\" | fields userIdentity.arn, bytes | sort @timestamp asc",
    );
    assert_eq!(answer.fields, vec!["userIdentity.arn", "bytes"]);
    assert_eq!(
        rows_json(&answer),
        vec![
            vec![json!("arn:aws:iam::1:user/alice"), json!(100)],
            vec![json!("arn:aws:iam::1:user/alice"), json!("75")]
        ]
    );
    assert_eq!(answer.matched, 2);

    let answer = fx.query("stats count(*) as n, sum(bytes) as total by eventSource | sort n desc");
    assert_eq!(
        rows_json(&answer),
        vec![
            vec![json!("s3.amazonaws.com"), json!(3), json!(425)],
            vec![
                json!("signin.amazonaws.com"),
                json!(1),
                serde_json::Value::Null
            ]
        ]
    );

    let answer = fx.query("stats count() by bin(1h)");
    assert_eq!(
        rows_json(&answer),
        vec![
            vec![json!("2024-01-01T00:00:00.000000000Z"), json!(2)],
            vec![json!("2024-01-01T01:00:00.000000000Z"), json!(1)],
            vec![json!("2024-01-01T02:00:00.000000000Z"), json!(1)],
        ]
    );

    let answer = fx.query("filter sourceIPAddress like /^10\\./ and bytes > 99 | fields eventName");
    assert_eq!(
        rows_json(&answer),
        vec![vec![json!("PutObject")], vec![json!("GetObject")]]
    );

    let answer = fx.query("filter isIpv4InSubnet(sourceIPAddress, \"192.168.0.0/16\") | fields userIdentity.accessKeyId");
    assert_eq!(rows_json(&answer), vec![vec![json!("AKIA1")]]);

    let answer = fx.query("fields @message | parse @message '\"arn\":\"arn:aws:iam::1:user/*\"' as user | stats count(*) by user");
    assert_eq!(
        rows_json(&answer),
        vec![
            vec![json!("alice"), json!(2)],
            vec![json!("bob"), json!(1)],
            vec![json!("carol"), json!(1)]
        ]
    );

    let answer = fx.query("filter errorCode != \"AccessDenied\" | stats count(*) as n");
    assert_eq!(rows_json(&answer), vec![vec![json!(3)]]);

    let answer = fx.query("filter api.operation in [\"ConsoleLogin\", \"PutObject\"] | fields src_endpoint.ip | sort src_endpoint.ip");
    assert_eq!(
        rows_json(&answer),
        vec![vec![json!("10.0.0.2")], vec![json!("203.0.113.7")]]
    );

    let answer = fx.query("filter resources.0.ARN = \"arn:aws:s3:::b1\" | fields eventName");
    assert_eq!(rows_json(&answer), vec![vec![json!("GetObject")]]);

    let answer = fx.query("AKIA2");
    assert_eq!(answer.fields, vec!["@timestamp", "@message"]);
    assert_eq!(answer.rows.len(), 1);
    assert!(
        answer.rows[0][1]
            .to_text()
            .is_some_and(|text| text.contains("PutObject"))
    );

    let answer = fx.query("\"user/carol\" | fields eventName");
    assert_eq!(rows_json(&answer), vec![vec![json!("ConsoleLogin")]]);

    let answer = fx.query("fields userIdentity.arn as who | dedup who | sort who");
    assert_eq!(answer.rows.len(), 3);
}

#[test]
fn deeply_nested_or_long_queries_are_refused_not_crashing() {
    let fx = fixture();
    let deep = format!("filter {}eventName = \"x\"", "(".repeat(60_000));
    let negated = format!("filter {}eventName = \"x\"", "not ".repeat(16_000));
    let minus = format!("filter bytes > {}1", "-".repeat(60_000));
    let chained = format!("filter {}", vec!["eventName = \"x\""; 5_000].join(" and "));
    for query in [deep, negated, minus, chained] {
        assert!(
            matches!(
                fx.try_query(&query),
                Err(seclog_query::QueryError::Parse { .. })
            ),
            "{}…",
            &query[..40]
        );
    }
}

#[test]
fn errors_point_at_the_problem() {
    let fx = fixture();
    for (query, offset) in [
        ("filter eventName = ", 19),
        ("stats count(*) by", 17),
        ("fields a | frobnicate b", 11),
        ("filter x like 5", 14),
        ("filter nosuch(x)", 7),
        ("limit 0", 6),
    ] {
        match fx.try_query(query) {
            Err(seclog_query::QueryError::Parse { offset: at, .. }) => {
                assert_eq!(at, offset, "{query}")
            }
            other => panic!("{query}: expected a parse error, got {other:?}"),
        }
    }
}

/// Counting cuts large segments into parts spread over the cores (and counts a filter's
/// matches per segment): the counts must be those of the events one by one.
#[test]
fn counts_over_large_segments_match_the_events() {
    const NAMES: [&str; 5] = [
        "GetObject",
        "PutObject",
        "ListBuckets",
        "ConsoleLogin",
        "AssumeRole",
    ];
    let mut by_name = std::collections::BTreeMap::<&str, u64>::new();
    let mut by_hour = std::collections::BTreeMap::<String, u64>::new();
    let mut put_by_hour = std::collections::BTreeMap::<String, u64>::new();
    let events: Vec<serde_json::Value> = (0..200_000u64)
        .map(|index| {
            let name = NAMES[(index * 7 % 5) as usize];
            // Hours out of order, so that neighbouring documents fall in different buckets.
            let hour = (index * 13) % 48;
            let (day, hour) = (1 + hour / 24, hour % 24);
            let bucket = format!("2024-01-{day:02}T{hour:02}:00:00.000000000Z");
            *by_name.entry(name).or_default() += 1;
            *by_hour.entry(bucket.clone()).or_default() += 1;
            if name == "PutObject" {
                *put_by_hour.entry(bucket).or_default() += 1;
            }
            let (minute, second) = (index % 60, (index / 60) % 60);
            json!({
                "eventTime": format!("2024-01-{day:02}T{hour:02}:{minute:02}:{second:02}Z"),
                "eventName": name,
            })
        })
        .collect();
    let fx = Fixture::new(vec![("aws/cloudtrail", events)]);
    let rows = |query: &str| -> Vec<(String, u64)> {
        rows_json(&fx.query(query))
            .into_iter()
            .map(|row| {
                (
                    row[0].as_str().expect("key").to_string(),
                    row[1].as_u64().expect("count"),
                )
            })
            .collect()
    };
    let expected: Vec<(String, u64)> = by_name
        .iter()
        .map(|(name, count)| (name.to_string(), *count))
        .collect();
    assert_eq!(
        rows("stats count() by eventName | sort eventName asc"),
        expected
    );
    let expected: Vec<(String, u64)> = by_hour.into_iter().collect();
    assert_eq!(rows("stats count() by bin(1h)"), expected);
    let expected: Vec<(String, u64)> = put_by_hour.into_iter().collect();
    assert_eq!(
        rows("filter eventName = \"PutObject\" | stats count() by bin(1h)"),
        expected
    );
}
