//! Real CloudTrail files (`../shared/data/cloudtrail/invictus`) through the journal and the index,
//! queried with the CloudWatch Logs Insights sample queries for CloudTrail (verbatim) and a corpus
//! of others. Every expected answer is computed here, in plain Rust over the JSON events.

mod common;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{Fixture, rows_json};
use serde_json::{Value as Json, json};

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/cloudtrail/invictus"
);

fn load_events(dir: &Path) -> Vec<Json> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read data dir")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut events = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read CloudTrail file");
        let mut body: Json = serde_json::from_str(&text).expect("CloudTrail JSON");
        match body["Records"].take() {
            Json::Array(records) => events.extend(records),
            other => panic!("{}: Records is not an array: {other}", file.display()),
        }
    }
    events
}

// ---------------------------------------------------------------------------------------------
// Reading events the way the notes describe Insights fields.

/// The scalar at a flattened path (`a.b.0.c`); objects, arrays and `null` are absent.
fn get<'a>(event: &'a Json, path: &str) -> Option<&'a Json> {
    let mut at = event;
    for key in path.split('.') {
        at = match at {
            Json::Object(map) => map.get(key)?,
            Json::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match at {
        Json::Null | Json::Object(_) | Json::Array(_) => None,
        scalar => Some(scalar),
    }
}

/// The field as an answer cell (`null` when missing).
fn cell(event: &Json, path: &str) -> Json {
    get(event, path).cloned().unwrap_or(Json::Null)
}

fn text<'a>(event: &'a Json, path: &str) -> Option<&'a str> {
    get(event, path).and_then(Json::as_str)
}

fn number(event: &Json, path: &str) -> Option<f64> {
    match get(event, path)? {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.parse::<f64>().ok(),
        _ => None,
    }
}

fn event_time(event: &Json) -> &str {
    text(event, "eventTime").expect("eventTime")
}

/// `@timestamp` as answers print it: RFC 3339 with nine fractional digits and `Z`.
fn timestamp(event: &Json) -> Json {
    let time = event_time(event);
    json!(format!("{}.000000000Z", time.trim_end_matches('Z')))
}

/// `@message`: the raw event as the fixture wrote it.
fn message(event: &Json) -> Json {
    json!(serde_json::to_string(event).expect("json"))
}

/// Full-text words: runs of alphanumeric characters, lower-cased.
fn words(event: &Json) -> BTreeSet<String> {
    serde_json::to_string(event)
        .expect("json")
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Natural order as documented for `sort`: digit runs by length then value, other
/// characters by code point.
fn natural(a: &str, b: &str) -> Ordering {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let (si, sj) = (i, j);
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let x: String = a[si..i].iter().collect();
            let y: String = b[sj..j].iter().collect();
            let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
            match x.len().cmp(&y.len()).then_with(|| x.cmp(y)) {
                Ordering::Equal => continue,
                order => return order,
            }
        }
        if a[i] != b[j] {
            return a[i].cmp(&b[j]);
        }
        i += 1;
        j += 1;
    }
    (a.len() - i).cmp(&(b.len() - j))
}

/// Ascending `sort` order of answer cells: missing first, then text, then numbers.
fn sort_order(a: &Json, b: &Json) -> Ordering {
    fn rank(value: &Json) -> u8 {
        match value {
            Json::Null => 0,
            Json::Number(_) => 2,
            _ => 1,
        }
    }
    match (a, b) {
        (Json::String(x), Json::String(y)) => natural(x, y),
        (Json::Number(x), Json::Number(y)) => x
            .as_f64()
            .expect("number")
            .total_cmp(&y.as_f64().expect("number")),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Sorts `values` descending and returns the smallest limit of at least `at_least` that does not
/// cut through a run of equal values.
fn limit_without_tie(values: &mut [f64], at_least: usize) -> usize {
    values.sort_by(|a, b| b.total_cmp(a));
    (at_least..values.len())
        .find(|&n| values[n - 1] != values[n])
        .unwrap_or(values.len())
}

// ---------------------------------------------------------------------------------------------
// Expected answers.

type Row = Vec<Json>;

/// Expected rows as consecutive groups: the answer must list each group's rows (in any order
/// within the group) before the next group's.
struct Expected {
    fields: Vec<String>,
    groups: Vec<Vec<Row>>,
}

impl Expected {
    fn new(fields: &[&str]) -> Expected {
        Expected {
            fields: fields.iter().map(|field| field.to_string()).collect(),
            groups: Vec::new(),
        }
    }

    /// Rows in any order (stats without sort).
    fn unordered(mut self, rows: Vec<Row>) -> Expected {
        self.groups = vec![rows];
        self
    }

    /// Rows in exactly this order.
    fn exact(mut self, rows: Vec<Row>) -> Expected {
        self.groups = rows.into_iter().map(|row| vec![row]).collect();
        self
    }

    /// Rows already ordered by `key`; rows with equal keys may come in any order.
    fn ordered_by<K: PartialEq>(mut self, rows: Vec<(K, Row)>) -> Expected {
        let mut last: Option<K> = None;
        for (key, row) in rows {
            match (&last, self.groups.last_mut()) {
                (Some(previous), Some(group)) if *previous == key => group.push(row),
                _ => self.groups.push(vec![row]),
            }
            last = Some(key);
        }
        self
    }

    fn rows(&self) -> usize {
        self.groups.iter().map(Vec::len).sum()
    }

    fn check(&self, fields: &[String], rows: &[Row]) -> Result<(), String> {
        if fields != self.fields {
            return Err(format!("fields {fields:?}, expected {:?}", self.fields));
        }
        if rows.len() != self.rows() {
            return Err(format!(
                "{} rows, expected {}; first rows: {:?}",
                rows.len(),
                self.rows(),
                &rows[..rows.len().min(3)]
            ));
        }
        let mut at = 0;
        for group in &self.groups {
            let key = |row: &Row| serde_json::to_string(row).expect("json");
            let mut got: Vec<String> = rows[at..at + group.len()].iter().map(key).collect();
            let mut want: Vec<String> = group.iter().map(key).collect();
            got.sort();
            want.sort();
            if got != want {
                let missing: Vec<&String> = want.iter().filter(|w| !got.contains(w)).collect();
                let extra: Vec<&String> = got.iter().filter(|g| !want.contains(g)).collect();
                return Err(format!(
                    "rows {at}..{} differ: missing {:?}, unexpected {:?}",
                    at + group.len(),
                    &missing[..missing.len().min(3)],
                    &extra[..extra.len().min(3)]
                ));
            }
            at += group.len();
        }
        Ok(())
    }
}

/// Counts per key, as stats rows `key..., count`.
fn count_by<'a>(
    events: impl IntoIterator<Item = &'a Json>,
    key: impl Fn(&Json) -> Row,
) -> BTreeMap<String, (Row, u64)> {
    let mut groups: BTreeMap<String, (Row, u64)> = BTreeMap::new();
    for event in events {
        let key = key(event);
        groups
            .entry(serde_json::to_string(&key).expect("json"))
            .or_insert((key, 0))
            .1 += 1;
    }
    groups
}

fn count_rows(groups: BTreeMap<String, (Row, u64)>) -> Vec<Row> {
    groups
        .into_values()
        .map(|(mut key, count)| {
            key.push(json!(count));
            key
        })
        .collect()
}

/// Events newest first, as rows of `fields`, for answers without `sort` or `stats`.
fn newest_first(events: &[&Json], row: impl Fn(&Json) -> Row) -> Vec<(String, Row)> {
    let mut keyed: Vec<(String, Row)> = events
        .iter()
        .map(|event| (event_time(event).to_string(), row(event)))
        .collect();
    keyed.sort_by(|a, b| b.0.cmp(&a.0));
    keyed
}

fn paths(event: &Json, fields: &[&str]) -> Row {
    fields.iter().map(|field| cell(event, field)).collect()
}

// ---------------------------------------------------------------------------------------------
// The corpus.

struct Case {
    name: &'static str,
    query: String,
    expected: Expected,
}

/// Sample 5's shape: outdated-TLS calls per caller and call, sorted on four keys.
fn tls_calls(events: &[Json], query: &str, versions: &[&str]) -> Case {
    let keys = [
        "userIdentity.accountId",
        "recipientAccountId",
        "eventSource",
        "eventName",
        "awsRegion",
        "tlsDetails.tlsVersion",
        "tlsDetails.cipherSuite",
        "userAgent",
    ];
    let matching = events.iter().filter(|e| {
        text(e, "tlsDetails.tlsVersion").is_some_and(|version| versions.contains(&version))
    });
    let mut rows = count_rows(count_by(matching, |e| paths(e, &keys)));
    // sort eventSource, eventName, awsRegion, tlsDetails.tlsVersion (ascending).
    let sort_key = |row: &Row| {
        vec![
            row[2].clone(),
            row[3].clone(),
            row[4].clone(),
            row[5].clone(),
        ]
    };
    rows.sort_by(|a, b| {
        sort_key(a)
            .iter()
            .zip(sort_key(b).iter())
            .map(|(x, y)| sort_order(x, y))
            .find(|order| order.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    let mut fields = keys.to_vec();
    fields.push("numOutdatedTlsCalls");
    Case {
        name: "sample 5: outdated TLS calls by caller",
        query: query.to_string(),
        expected: Expected::new(&fields)
            .ordered_by(rows.into_iter().map(|row| (sort_key(&row), row)).collect()),
    }
}

/// Sample 6's shape: outdated-TLS calls per service, most first.
fn tls_per_service(events: &[Json], name: &'static str, query: &str, versions: &[&str]) -> Case {
    let matching = events.iter().filter(|e| {
        text(e, "tlsDetails.tlsVersion").is_some_and(|version| versions.contains(&version))
    });
    let mut rows: Vec<(u64, Row)> = count_by(matching, |e| vec![cell(e, "eventSource")])
        .into_values()
        .map(|(key, count)| (count, vec![key[0].clone(), json!(count)]))
        .collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.0));
    Case {
        name,
        query: query.to_string(),
        expected: Expected::new(&["eventSource", "numOutdatedTlsCalls"]).ordered_by(rows),
    }
}

/// Sample 4's shape: errors of one API call by code and message.
fn call_errors(events: &[Json], name: &'static str, query: &str, event_name: &str) -> Case {
    let matching = events
        .iter()
        .filter(|e| text(e, "eventName") == Some(event_name) && get(e, "errorCode").is_some());
    Case {
        name,
        query: query.to_string(),
        expected: Expected::new(&["errorCode", "errorMessage", "count(*)"]).unordered(count_rows(
            count_by(matching, |e| paths(e, &["errorCode", "errorMessage"])),
        )),
    }
}

/// Sample 2's shape: two event names in one region, default columns, newest first.
fn calls_in_region(
    events: &[Json],
    name: &'static str,
    query: &str,
    names: [&str; 2],
    region: &str,
) -> Case {
    let matching: Vec<&Json> = events
        .iter()
        .filter(|e| {
            text(e, "eventName").is_some_and(|n| names.contains(&n))
                && text(e, "awsRegion") == Some(region)
        })
        .collect();
    Case {
        name,
        query: query.to_string(),
        expected: Expected::new(&["@timestamp", "@message"])
            .ordered_by(newest_first(&matching, |e| vec![timestamp(e), message(e)])),
    }
}

fn samples(events: &[Json]) -> Vec<Case> {
    let mut cases = Vec::new();

    // 1. Log entries per service, event type and region.
    cases.push(Case {
        name: "sample 1: count by service, event and region",
        query: "stats count(*) by eventSource, eventName, awsRegion".into(),
        expected: Expected::new(&["eventSource", "eventName", "awsRegion", "count(*)"]).unordered(
            count_rows(count_by(events, |e| {
                paths(e, &["eventSource", "eventName", "awsRegion"])
            })),
        ),
    });

    // 2. EC2 hosts started or stopped in a region.
    cases.push(calls_in_region(
        events,
        "sample 2: instances started or stopped in us-east-2",
        "filter (eventName=\"StartInstances\" or eventName=\"StopInstances\") and awsRegion=\"us-east-2\"",
        ["StartInstances", "StopInstances"],
        "us-east-2",
    ));

    // 3. Newly created IAM users.
    let created: Vec<&Json> = events
        .iter()
        .filter(|e| text(e, "eventName") == Some("CreateUser"))
        .collect();
    let fields = [
        "awsRegion",
        "requestParameters.userName",
        "responseElements.user.arn",
    ];
    cases.push(Case {
        name: "sample 3: created IAM users",
        query: "filter eventName=\"CreateUser\"\n    | fields awsRegion, requestParameters.userName, responseElements.user.arn".into(),
        expected: Expected::new(&fields).ordered_by(newest_first(&created, |e| paths(e, &fields))),
    });

    // 4. Exceptions while invoking UpdateTrail.
    cases.push(call_errors(
        events,
        "sample 4: UpdateTrail errors",
        "filter eventName=\"UpdateTrail\" and ispresent(errorCode)\n    | stats count(*) by errorCode, errorMessage",
        "UpdateTrail",
    ));

    // 5. Calls made with TLS 1.0 or 1.1.
    cases.push(tls_calls(
        events,
        "filter tlsDetails.tlsVersion in [ \"TLSv1\", \"TLSv1.1\" ]\n| stats count(*) as numOutdatedTlsCalls by userIdentity.accountId, recipientAccountId, eventSource, eventName, awsRegion, tlsDetails.tlsVersion, tlsDetails.cipherSuite, userAgent\n| sort eventSource, eventName, awsRegion, tlsDetails.tlsVersion",
        &["TLSv1", "TLSv1.1"],
    ));

    // 6. Calls per service with TLS 1.0 or 1.1.
    cases.push(tls_per_service(
        events,
        "sample 6: outdated TLS calls per service",
        "filter tlsDetails.tlsVersion in [ \"TLSv1\", \"TLSv1.1\" ]\n| stats count(*) as numOutdatedTlsCalls by eventSource\n| sort numOutdatedTlsCalls desc",
        &["TLSv1", "TLSv1.1"],
    ));
    cases
}

/// The samples' shapes again with values this data set has, so their answers are not empty.
fn sample_shapes_with_hits(events: &[Json]) -> Vec<Case> {
    let mut cases = vec![
        calls_in_region(
            events,
            "sample 2 shape: CreateUser or ListBuckets in us-east-1",
            "filter (eventName=\"CreateUser\" or eventName=\"ListBuckets\") and awsRegion=\"us-east-1\"",
            ["CreateUser", "ListBuckets"],
            "us-east-1",
        ),
        call_errors(
            events,
            "sample 4 shape: AssumeRole errors",
            "filter eventName=\"AssumeRole\" and ispresent(errorCode)\n    | stats count(*) by errorCode, errorMessage",
            "AssumeRole",
        ),
        tls_per_service(
            events,
            "sample 6 shape: TLS 1.3 calls per service",
            "filter tlsDetails.tlsVersion in [ \"TLSv1.3\" ]\n| stats count(*) as numOutdatedTlsCalls by eventSource\n| sort numOutdatedTlsCalls desc",
            &["TLSv1.3"],
        ),
    ];
    let mut tls13 = tls_calls(
        events,
        "filter tlsDetails.tlsVersion in [ \"TLSv1.3\", \"TLSv1.1\" ]\n| stats count(*) as numOutdatedTlsCalls by userIdentity.accountId, recipientAccountId, eventSource, eventName, awsRegion, tlsDetails.tlsVersion, tlsDetails.cipherSuite, userAgent\n| sort eventSource, eventName, awsRegion, tlsDetails.tlsVersion",
        &["TLSv1.3", "TLSv1.1"],
    );
    tls13.name = "sample 5 shape: TLS 1.3 calls by caller";
    cases.push(tls13);

    // The console's extra CloudTrail sample: EC2 events by name and region, most first.
    let ec2 = events
        .iter()
        .filter(|e| text(e, "eventSource") == Some("ec2.amazonaws.com"));
    let mut rows: Vec<(u64, Row)> = count_by(ec2, |e| paths(e, &["eventName", "awsRegion"]))
        .into_values()
        .map(|(mut key, count)| {
            key.push(json!(count));
            (count, key)
        })
        .collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.0));
    cases.push(Case {
        name: "console sample: EC2 events by name and region",
        query: "filter eventSource=\"ec2.amazonaws.com\" | stats count(*) as eventCount by eventName, awsRegion | sort eventCount desc".into(),
        expected: Expected::new(&["eventName", "awsRegion", "eventCount"]).ordered_by(rows),
    });
    cases
}

fn corpus(events: &[Json]) -> Vec<Case> {
    let mut cases = Vec::new();
    let all: Vec<&Json> = events.iter().collect();

    // Hourly buckets: bin(1h) floors @timestamp (eventTime).
    cases.push(Case {
        name: "count per hour with bin(1h)",
        query: "stats count(*) as n by bin(1h)".into(),
        expected: Expected::new(&["bin(1h)", "n"]).unordered(count_rows(count_by(events, |e| {
            vec![json!(format!("{}:00:00.000000000Z", &event_time(e)[..13]))]
        }))),
    });

    // Five-minute buckets with an alias, sorted ascending by a bare `sort`.
    let mut rows = count_rows(count_by(
        events
            .iter()
            .filter(|e| text(e, "eventSource") == Some("s3.amazonaws.com")),
        |e| {
            let time = event_time(e);
            let minute: u32 = time[14..16].parse().expect("minute");
            vec![json!(format!(
                "{}:{:02}:00.000000000Z",
                &time[..13],
                minute / 5 * 5
            ))]
        },
    ));
    rows.sort_by(|a, b| sort_order(&a[0], &b[0]));
    cases.push(Case {
        name: "S3 calls per 5 minutes, bin alias and bare sort",
        query: "filter eventSource = \"s3.amazonaws.com\" | stats count(*) as n by bin(5m) as t | sort t".into(),
        expected: Expected::new(&["t", "n"]).exact(rows),
    });

    // dedup without sort: newest event per ARN; events without an ARN are all kept.
    let mut seen = BTreeSet::new();
    let kept: Vec<(String, Row)> =
        newest_first(&all, |e| paths(e, &["eventTime", "userIdentity.arn"]))
            .into_iter()
            .filter(|(_, row)| match &row[1] {
                Json::Null => true,
                arn => seen.insert(arn.to_string()),
            })
            .collect();
    cases.push(Case {
        name: "dedup on ARN keeps the newest per ARN and every event without one",
        query: "fields eventTime, userIdentity.arn | dedup userIdentity.arn".into(),
        expected: Expected::new(&["eventTime", "userIdentity.arn"]).ordered_by(kept),
    });

    // dedup on two fields after an ascending sort: the first error of each kind per call.
    let mut failed: Vec<&Json> = events
        .iter()
        .filter(|e| get(e, "errorCode").is_some())
        .collect();
    failed.sort_by(|a, b| event_time(a).cmp(event_time(b)));
    let mut seen = BTreeSet::new();
    let kept: Vec<(String, Row)> = failed
        .into_iter()
        .filter(|e| {
            seen.insert((
                cell(e, "eventName").to_string(),
                cell(e, "errorCode").to_string(),
            ))
        })
        .map(|e| {
            (
                event_time(e).to_string(),
                paths(e, &["eventName", "errorCode", "eventTime"]),
            )
        })
        .collect();
    cases.push(Case {
        name: "dedup on two fields after sort asc: first error of each kind per call",
        query: "fields eventName, errorCode, eventTime | filter ispresent(errorCode) | sort eventTime asc | dedup eventName, errorCode".into(),
        expected: Expected::new(&["eventName", "errorCode", "eventTime"]).ordered_by(kept),
    });

    // parse, glob: the first `*` is lazy, the last greedy, the pattern unanchored.
    let mut roles: BTreeMap<String, (u64, BTreeSet<String>)> = BTreeMap::new();
    for event in events {
        let Some(arn) = text(event, "userIdentity.arn") else {
            continue;
        };
        let Some(at) = arn.find("assumed-role/") else {
            continue;
        };
        let rest = &arn[at + "assumed-role/".len()..];
        let Some((role, session)) = rest.split_once('/') else {
            continue;
        };
        let entry = roles.entry(role.to_string()).or_default();
        entry.0 += 1;
        entry.1.insert(session.to_string());
    }
    cases.push(Case {
        name: "parse glob: role and session from assumed-role ARNs",
        query: "parse userIdentity.arn \"assumed-role/*/*\" as role, session | filter ispresent(role) | stats count(*) as n, count_distinct(session) as sessions by role".into(),
        expected: Expected::new(&["role", "n", "sessions"]).unordered(
            roles
                .into_iter()
                .map(|(role, (n, sessions))| vec![json!(role), json!(n), json!(sessions.len())])
                .collect(),
        ),
    });

    // parse, regex with named captures: account and role of STS assumed-role ARNs.
    let sts = |arn: &str| -> Option<(String, String)> {
        let rest = arn.strip_prefix("arn:aws:sts::")?;
        let (account, rest) = rest.split_once(':')?;
        if account.is_empty() || !account.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let rest = rest.strip_prefix("assumed-role/")?;
        let (role, _) = rest.split_once('/')?;
        (!role.is_empty()).then(|| (account.to_string(), role.to_string()))
    };
    let parsed = events
        .iter()
        .filter_map(|e| text(e, "userIdentity.arn").and_then(sts));
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for key in parsed {
        *counts.entry(key).or_default() += 1;
    }
    cases.push(Case {
        name: "parse regex: account and role from userIdentity.arn",
        query: r"parse userIdentity.arn /arn:aws:sts::(?<account>\d+):assumed-role\/(?<role>[^\/]+)\// | filter ispresent(role) | stats count(*) as n by account, role".into(),
        expected: Expected::new(&["account", "role", "n"]).unordered(
            counts
                .into_iter()
                .map(|((account, role), n)| vec![json!(account), json!(role), json!(n)])
                .collect(),
        ),
    });

    // parse over @message (read from the journal): the first non-empty "userName" value.
    let first_user_name = |event: &Json| -> Json {
        let raw = serde_json::to_string(event).expect("json");
        let marker = "\"userName\":\"";
        let mut from = 0;
        while let Some(at) = raw[from..].find(marker) {
            let start = from + at + marker.len();
            let len = raw[start..].find('"').unwrap_or(raw.len() - start);
            if len > 0 && start + len < raw.len() {
                return json!(&raw[start..start + len]);
            }
            from = start;
        }
        Json::Null
    };
    cases.push(Case {
        name: "parse regex over @message: first userName in the raw event",
        query: "parse @message /\"userName\":\"(?<user>[^\"]+)\"/ | stats count(*) as n by user"
            .into(),
        expected: Expected::new(&["user", "n"])
            .unordered(count_rows(count_by(events, |e| vec![first_user_name(e)]))),
    });

    // =~ with an anchored regex.
    let get_or_list = |name: &str| {
        ["Get", "List"].iter().any(|prefix| {
            name.strip_prefix(prefix)
                .and_then(|rest| rest.chars().next())
                .is_some_and(|c| c.is_ascii_uppercase())
        })
    };
    cases.push(Case {
        name: "=~ anchored regex on eventName",
        query:
            "filter eventName =~ /^(Get|List)[A-Z]/ | stats count(*) as n by eventSource, eventName"
                .into(),
        expected: Expected::new(&["eventSource", "eventName", "n"]).unordered(count_rows(
            count_by(
                events
                    .iter()
                    .filter(|e| text(e, "eventName").is_some_and(get_or_list)),
                |e| paths(e, &["eventSource", "eventName"]),
            ),
        )),
    });

    // like /(?i).../: case-insensitive regex, with count_distinct.
    let mut agents: BTreeMap<String, (Json, u64, BTreeSet<String>)> = BTreeMap::new();
    for event in events {
        let Some(agent) = text(event, "userAgent") else {
            continue;
        };
        if !agent.to_lowercase().contains("stratus-red-team") {
            continue;
        }
        let source = cell(event, "eventSource");
        let entry = agents
            .entry(source.to_string())
            .or_insert((source, 0, BTreeSet::new()));
        entry.1 += 1;
        entry.2.insert(agent.to_string());
    }
    cases.push(Case {
        name: "like /(?i)/ on userAgent with count_distinct",
        query: "filter userAgent like /(?i)STRATUS-red-TEAM/ | stats count(*) as n, count_distinct(userAgent) as agents by eventSource".into(),
        expected: Expected::new(&["eventSource", "n", "agents"]).unordered(
            agents
                .into_values()
                .map(|(source, n, set)| vec![source, json!(n), json!(set.len())])
                .collect(),
        ),
    });

    // Nested field, equality, default columns order (newest first).
    let issuer = "userIdentity.sessionContext.sessionIssuer.userName";
    let stolen: Vec<&Json> = events
        .iter()
        .filter(|e| text(e, issuer) == Some("stratus-red-team-ec2-steal-credentials-role"))
        .collect();
    cases.push(Case {
        name: "nested sessionIssuer.userName equality, newest first",
        query: "filter userIdentity.sessionContext.sessionIssuer.userName = \"stratus-red-team-ec2-steal-credentials-role\" | fields eventName, sourceIPAddress, userIdentity.accessKeyId".into(),
        expected: Expected::new(&["eventName", "sourceIPAddress", "userIdentity.accessKeyId"])
            .ordered_by(newest_first(&stolen, |e| {
                paths(e, &["eventName", "sourceIPAddress", "userIdentity.accessKeyId"])
            })),
    });

    // Nested field regex, stats sorted on two keys (count desc, then name asc).
    let mut per_issuer: BTreeMap<String, (u64, BTreeSet<String>)> = BTreeMap::new();
    for event in events {
        if let Some(name) = text(event, issuer).filter(|n| n.starts_with("stratus-red-team-ec2")) {
            let entry = per_issuer.entry(name.to_string()).or_default();
            entry.0 += 1;
            entry.1.insert(cell(event, "eventName").to_string());
        }
    }
    let mut rows: Vec<(u64, String, usize)> = per_issuer
        .into_iter()
        .map(|(name, (n, names))| (n, name, names.len()))
        .collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| natural(&a.1, &b.1)));
    cases.push(Case {
        name: "nested sessionIssuer.userName regex, sort n desc, name asc",
        query: "filter userIdentity.sessionContext.sessionIssuer.userName like /^stratus-red-team-ec2/ | stats count(*) as n, count_distinct(eventName) as names by userIdentity.sessionContext.sessionIssuer.userName | sort n desc, userIdentity.sessionContext.sessionIssuer.userName asc".into(),
        expected: Expected::new(&[issuer, "n", "names"]).exact(
            rows.into_iter()
                .map(|(n, name, names)| vec![json!(name), json!(n), json!(names)])
                .collect(),
        ),
    });

    // requestParameters.bucketName: present, not like.
    cases.push(Case {
        name: "requestParameters.bucketName present and not like",
        query: "filter ispresent(requestParameters.bucketName) and requestParameters.bucketName not like \"stratus\" | stats count(*) as n by requestParameters.bucketName, eventName".into(),
        expected: Expected::new(&["requestParameters.bucketName", "eventName", "n"]).unordered(
            count_rows(count_by(
                events.iter().filter(|e| {
                    text(e, "requestParameters.bucketName").is_some_and(|b| !b.contains("stratus"))
                }),
                |e| paths(e, &["requestParameters.bucketName", "eventName"]),
            )),
        ),
    });

    // count_distinct and count(field) per identity type, the missing type as its own group.
    #[derive(Default)]
    struct PerType {
        kind: Json,
        names: BTreeSet<String>,
        ips: BTreeSet<String>,
        n: u64,
        errors: u64,
    }
    let mut per_type: BTreeMap<String, PerType> = BTreeMap::new();
    for event in events {
        let kind = cell(event, "userIdentity.type");
        let entry = per_type.entry(kind.to_string()).or_default();
        entry.kind = kind;
        entry.names.insert(cell(event, "eventName").to_string());
        entry.ips.insert(cell(event, "sourceIPAddress").to_string());
        entry.n += 1;
        entry.errors += u64::from(get(event, "errorCode").is_some());
    }
    cases.push(Case {
        name: "count_distinct and count(field) by identity type",
        query: "stats count_distinct(eventName) as names, count_distinct(sourceIPAddress) as ips, count(*) as n, count(errorCode) as errors by userIdentity.type".into(),
        expected: Expected::new(&["userIdentity.type", "names", "ips", "n", "errors"]).unordered(
            per_type
                .into_values()
                .map(|t| {
                    vec![
                        t.kind,
                        json!(t.names.len()),
                        json!(t.ips.len()),
                        json!(t.n),
                        json!(t.errors),
                    ]
                })
                .collect(),
        ),
    });

    // in and not in.
    let wanted = ["GetUser", "ListBuckets", "AssumeRole", "CreateUser"];
    let excluded = ["AWS Internal", "192.168.10.20"];
    cases.push(Case {
        name: "in and not in",
        query: "filter eventName in [\"GetUser\", \"ListBuckets\", \"AssumeRole\", \"CreateUser\"] and sourceIPAddress not in [\"AWS Internal\", \"192.168.10.20\"] | stats count(*) as n by eventName, sourceIPAddress".into(),
        expected: Expected::new(&["eventName", "sourceIPAddress", "n"]).unordered(count_rows(
            count_by(
                events.iter().filter(|e| {
                    text(e, "eventName").is_some_and(|n| wanted.contains(&n))
                        && !text(e, "sourceIPAddress").is_some_and(|ip| excluded.contains(&ip))
                }),
                |e| paths(e, &["eventName", "sourceIPAddress"]),
            ),
        )),
    });

    // not like: true when the field is missing.
    cases.push(Case {
        name: "not like (regex and substring), true on missing fields",
        query: "filter errorCode not like /Throttl/ and userAgent not like \"Terraform\" | stats count(*) as n by eventSource".into(),
        expected: Expected::new(&["eventSource", "n"]).unordered(count_rows(count_by(
            events.iter().filter(|e| {
                !text(e, "errorCode").is_some_and(|c| c.contains("Throttl"))
                    && !text(e, "userAgent").is_some_and(|a| a.contains("Terraform"))
            }),
            |e| paths(e, &["eventSource"]),
        ))),
    });

    // ispresent and not ispresent.
    let anonymous: Vec<&Json> = events
        .iter()
        .filter(|e| get(e, "errorCode").is_some() && get(e, "userIdentity.userName").is_none())
        .collect();
    let fields = ["eventID", "eventName", "errorCode"];
    cases.push(Case {
        name: "ispresent and not ispresent, newest first",
        query: "filter ispresent(errorCode) and not ispresent(userIdentity.userName) | fields eventID, eventName, errorCode".into(),
        expected: Expected::new(&fields).ordered_by(newest_first(&anonymous, |e| paths(e, &fields))),
    });

    // Numbers: comparison, sum and max of JSON integers.
    let out = "additionalEventData.bytesTransferredOut";
    let inn = "additionalEventData.bytesTransferredIn";
    let mut per_name: BTreeMap<String, (Json, u64, i64, Option<i64>)> = BTreeMap::new();
    for event in events
        .iter()
        .filter(|e| number(e, out).is_some_and(|n| n > 1000.0))
    {
        let name = cell(event, "eventName");
        let entry = per_name
            .entry(name.to_string())
            .or_insert((name, 0, 0, None));
        entry.1 += 1;
        entry.2 += get(event, out).and_then(Json::as_i64).expect("integer");
        if let Some(value) = get(event, inn).and_then(Json::as_i64) {
            entry.3 = Some(entry.3.map_or(value, |best| best.max(value)));
        }
    }
    cases.push(Case {
        name: "numeric comparison with sum and max",
        query: "filter additionalEventData.bytesTransferredOut > 1000 | stats count(*) as n, sum(additionalEventData.bytesTransferredOut) as total, max(additionalEventData.bytesTransferredIn) as maxIn by eventName".into(),
        expected: Expected::new(&["eventName", "n", "total", "maxIn"]).unordered(
            per_name
                .into_values()
                .map(|(name, n, total, max)| vec![name, json!(n), json!(total), json!(max)])
                .collect(),
        ),
    });

    // Numbers held as JSON integers and as strings compare numerically; group keys keep the type.
    cases.push(Case {
        name: "numeric comparison over integer and string values",
        query: "filter requestParameters.maxResults >= 100 or requestParameters.maxResults = 1 | stats count(*) as n by eventName, requestParameters.maxResults".into(),
        expected: Expected::new(&["eventName", "requestParameters.maxResults", "n"]).unordered(
            count_rows(count_by(
                events.iter().filter(|e| {
                    number(e, "requestParameters.maxResults").is_some_and(|n| n >= 100.0 || n == 1.0)
                }),
                |e| paths(e, &["eventName", "requestParameters.maxResults"]),
            )),
        ),
    });

    // sort desc | limit, with the limit placed where it does not split a tie.
    let with_out: Vec<&Json> = events.iter().filter(|e| get(e, out).is_some()).collect();
    let mut values: Vec<f64> = with_out
        .iter()
        .map(|e| number(e, out).expect("number"))
        .collect();
    let limit = limit_without_tie(&mut values, 7);
    let mut rows: Vec<(f64, Row)> = with_out
        .iter()
        .map(|e| {
            (
                number(e, out).expect("number"),
                vec![cell(e, "eventName"), cell(e, out)],
            )
        })
        .collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    rows.truncate(limit);
    cases.push(Case {
        name: "sort desc | limit",
        query: format!(
            "filter ispresent(additionalEventData.bytesTransferredOut) | fields eventName, additionalEventData.bytesTransferredOut as out | sort out desc | limit {limit}"
        ),
        expected: Expected::new(&["eventName", "out"]).ordered_by(rows),
    });

    // Full-text terms: whole words, case-insensitive, over the raw event.
    let key_id = "ASIATFQR7NSCS5BLNV76";
    let with_word = |word: &str| -> Vec<&Json> {
        let word = word.to_lowercase();
        events.iter().filter(|e| words(e).contains(&word)).collect()
    };
    let hits = with_word(key_id);
    assert!(!hits.is_empty(), "{key_id} is in the data");
    cases.push(Case {
        name: "bare term (access key id), default columns newest first",
        query: key_id.into(),
        expected: Expected::new(&["@timestamp", "@message"])
            .ordered_by(newest_first(&hits, |e| vec![timestamp(e), message(e)])),
    });
    cases.push(Case {
        name: "bare term in lower case, then stats",
        query: format!(
            "{} | stats count(*) as n by eventName",
            key_id.to_lowercase()
        ),
        expected: Expected::new(&["eventName", "n"])
            .unordered(count_rows(count_by(hits.iter().copied(), |e| {
                paths(e, &["eventName"])
            }))),
    });
    let prefix = &key_id[..key_id.len() - 1];
    cases.push(Case {
        name: "bare term matches whole words only",
        query: format!("{prefix} | fields eventID"),
        expected: Expected::new(&["eventID"])
            .ordered_by(newest_first(&with_word(prefix), |e| paths(e, &["eventID"]))),
    });
    // The second word is the event name of one of the first word's events, in lower case.
    let first = "AKIATFQR7NSCUXC3DDDP";
    let second = with_word(first)
        .last()
        .and_then(|e| text(e, "eventName"))
        .expect("the key id is in the data")
        .to_lowercase();
    let both: Vec<&Json> = with_word(first)
        .into_iter()
        .filter(|e| words(e).contains(&second))
        .collect();
    assert!(
        both.len() < with_word(first).len(),
        "the second word narrows the search"
    );
    cases.push(Case {
        name: "two bare terms must both be present",
        query: format!("{first} {second} | stats count(*) as n by eventName, userIdentity.arn"),
        expected: Expected::new(&["eventName", "userIdentity.arn", "n"]).unordered(count_rows(
            count_by(both, |e| paths(e, &["eventName", "userIdentity.arn"])),
        )),
    });
    cases
}

#[test]
fn cloudtrail_queries_match_answers_computed_from_the_events() {
    let dir = Path::new(DATA);
    if !dir.is_dir() {
        eprintln!(
            "skipping: CloudTrail data not found at {} (it lives in ../shared/data)",
            dir.display()
        );
        return;
    }
    let events = load_events(dir);
    assert!(events.len() > 1_000, "only {} events", events.len());
    for event in &events {
        let time = event_time(event);
        assert!(
            time.len() == 20 && time.ends_with('Z') && &time[10..11] == "T",
            "the expectations assume whole-second UTC times, got {time}"
        );
    }
    let fx = Fixture::new(vec![("aws/cloudtrail", events.clone())]);

    let mut cases = samples(&events);
    cases.extend(sample_shapes_with_hits(&events));
    cases.extend(corpus(&events));
    assert!(cases.len() >= 15);

    let mut failures = Vec::new();
    let mut nonempty = 0;
    for case in &cases {
        nonempty += usize::from(case.expected.rows() > 0);
        let outcome = fx
            .try_query(&case.query)
            .map_err(|error| format!("error: {error}"))
            .and_then(|answer| case.expected.check(&answer.fields, &rows_json(&answer)));
        if let Err(problem) = outcome {
            failures.push(format!(
                "{}\n  query: {}\n  {problem}",
                case.name, case.query
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries disagree:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // Samples 2, 4, 5 and 6 and the word-prefix search find nothing in this data set; every
    // other query must have rows, or it proves little.
    assert!(
        nonempty + 5 >= cases.len(),
        "only {nonempty} of {} queries have rows",
        cases.len()
    );
}
