//! Index-versus-brute-force oracle: for random filters over synthetic CloudTrail-shaped events,
//! the engine (index pushdown plus row evaluation) selects exactly the events that a direct
//! evaluation of the documented semantics, written here from scratch, selects.
//!
//! Semantics evaluated here: fields are flattened Insights-style (`a.b`, arrays numbered
//! `resources.0.ARN`, JSON `null` is absent); `=`, `<`, `>`, `like`, `in` are false on a missing
//! field, `!=`, `not like`, `not in` true; a string that reads as a number compares numerically
//! with a number; `like "x"` is a case-sensitive substring test and `like /re/` (or `=~`) an
//! unanchored regex search over the value's text; `in` needs a complete match of one element.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use common::{Fixture, rows_json};
use serde_json::{Value as Json, json};

const EVENTS: usize = 3_000;
const CASES: usize = 300;
const MAX_DEPTH: usize = 3;
const DATA_SEED: u64 = 0x5ec1_0600;
const FILTER_SEED: u64 = 0x5ec1_0601;

const EVENT_NAMES: &[(&str, &str)] = &[
    ("GetObject", "s3.amazonaws.com"),
    ("PutObject", "s3.amazonaws.com"),
    ("ListBuckets", "s3.amazonaws.com"),
    ("DeleteBucket", "s3.amazonaws.com"),
    ("AssumeRole", "sts.amazonaws.com"),
    ("GetCallerIdentity", "sts.amazonaws.com"),
    ("ConsoleLogin", "signin.amazonaws.com"),
    ("DescribeInstances", "ec2.amazonaws.com"),
    ("CreateUser", "iam.amazonaws.com"),
    ("Decrypt", "kms.amazonaws.com"),
];
const SOURCE_IPS: &[&str] = &[
    "10.0.0.1",
    "10.0.0.12",
    "10.0.1.7",
    "192.168.1.20",
    "192.168.10.5",
    "203.0.113.7",
    "198.51.100.23",
    "AWS Internal",
    "s3.amazonaws.com",
    "2001:db8::1",
];
const IDENTITY_TYPES: &[&str] = &["IAMUser", "AssumedRole", "Root", "AWSService"];
const USER_NAMES: &[&str] = &["alice", "bob", "carol", "Dave", "svc-backup", "ci_runner"];
const ERROR_CODES: &[&str] = &[
    "AccessDenied",
    "ThrottlingException",
    "NoSuchKey",
    "Client.UnauthorizedOperation",
    "InvalidParameterValue",
];
const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "ap-southeast-2",
];
const RESOURCE_ARNS: &[&str] = &[
    "arn:aws:s3:::logs-bucket",
    "arn:aws:s3:::Backup-2024",
    "arn:aws:iam::123456789012:role/Admin",
    "arn:aws:iam::123456789012:user/alice",
    "arn:aws:kms:us-east-1:123456789012:key/1234abcd",
];

/// Fields the random filters use; `bytes` is the numeric one.
const FIELDS: &[&str] = &[
    "eventName",
    "eventSource",
    "sourceIPAddress",
    "awsRegion",
    "userIdentity.type",
    "userIdentity.userName",
    "errorCode",
    "bytes",
    "resources.0.ARN",
    "resources.1.ARN",
    "readOnly",
    // An identifier field: indexed as hashes, read from the journal.
    "requestID",
];
const NUMERIC_FIELD: &str = "bytes";
/// Fields whose values are JSON numbers or booleans (at least sometimes).
const NON_STRING_FIELDS: &[&str] = &["bytes", "readOnly"];

/// What the generators may produce beyond what the engine is known to get right.
#[derive(Debug, Clone, Copy, Default)]
struct Options {
    /// `like`/`not like`/`=~` on fields holding JSON numbers or booleans.
    like_on_non_strings: bool,
    /// Number strings in non-canonical spellings (`"042"`, `"42.0"`, `"4.2e1"`).
    odd_number_strings: bool,
}

// ---------------------------------------------------------------------------------------------
// Synthetic events.

fn pick<T: Copy>(rng: &mut fastrand::Rng, items: &[T]) -> T {
    items[rng.usize(..items.len())]
}

fn synthetic_events(options: Options) -> Vec<Json> {
    let mut rng = fastrand::Rng::with_seed(DATA_SEED);
    (0..EVENTS)
        .map(|index| {
            let second = index * 7 + rng.usize(..7);
            let (name, source) = pick(&mut rng, EVENT_NAMES);
            let mut event = json!({
                "eventVersion": "1.08",
                "eventTime": format!(
                    "2024-03-01T{:02}:{:02}:{:02}Z",
                    second / 3600,
                    second / 60 % 60,
                    second % 60
                ),
                "eventID": format!("{:08x}-{index:05}", rng.u32(..)),
                "eventName": name,
                "eventSource": source,
                "awsRegion": pick(&mut rng, REGIONS),
                "sourceIPAddress": pick(&mut rng, SOURCE_IPS),
                "readOnly": name.starts_with("Get") || name.starts_with("List"),
                "userIdentity": {"accountId": "123456789012"},
            });
            let identity = &mut event["userIdentity"];
            if rng.u8(..10) < 9 {
                identity["type"] = json!(pick(&mut rng, IDENTITY_TYPES));
            }
            match rng.u8(..20) {
                0..=11 => identity["userName"] = json!(pick(&mut rng, USER_NAMES)),
                12 | 13 => identity["userName"] = Json::Null,
                14 => identity["userName"] = json!(""),
                _ => {}
            }
            if rng.u8(..4) == 0 {
                event["errorCode"] = json!(pick(&mut rng, ERROR_CODES));
            }
            // Request ids repeat (retries), are sometimes absent, and sometimes read as numbers.
            match rng.u8(..10) {
                0 => {}
                1 => event["requestID"] = json!(format!("{}", 4700 + u32::from(rng.u8(..3)))),
                2 => event["requestID"] = json!(format!("REQ-{:02x}", rng.u8(..8))),
                _ => event["requestID"] = json!(format!("{:08x}-7c1e", 0x5e00_0000 + rng.u32(..40))),
            }
            let small = rng.bool();
            let amount = if small {
                rng.i64(0..20)
            } else {
                rng.i64(0..5_000)
            };
            match rng.u8(..20) {
                0..=8 => event["bytes"] = json!(amount),
                9..=12 if options.odd_number_strings && rng.bool() => {
                    event["bytes"] = json!(match rng.u8(..3) {
                        0 => format!("0{amount}"),
                        1 => format!("{amount}.0"),
                        _ => format!("{amount}e0"),
                    })
                }
                9..=12 => event["bytes"] = json!(amount.to_string()),
                13 => event["bytes"] = json!(amount as f64 + 0.5),
                14 => event["bytes"] = json!(format!("{amount}.5")),
                _ => {}
            }
            match rng.u8(..4) {
                0 => {}
                count => {
                    event["resources"] = Json::Array(
                        (0..count.min(2))
                            .map(|_| json!({"ARN": pick(&mut rng, RESOURCE_ARNS), "type": "AWS::Resource"}))
                            .collect(),
                    )
                }
            }
            event
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Flattening and values, as the semantics describe them.

#[derive(Debug, Clone)]
enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn is_number(&self) -> bool {
        matches!(self, Scalar::Int(_) | Scalar::Float(_))
    }

    fn number(&self) -> Option<f64> {
        match self {
            Scalar::Int(int) => Some(*int as f64),
            Scalar::Float(float) => Some(*float),
            Scalar::Str(text) => text.parse::<f64>().ok().filter(|n| n.is_finite()),
            Scalar::Bool(_) => None,
        }
    }

    fn text(&self) -> String {
        match self {
            Scalar::Str(text) => text.clone(),
            Scalar::Int(int) => int.to_string(),
            Scalar::Float(float) => float.to_string(),
            Scalar::Bool(flag) => flag.to_string(),
        }
    }
}

type Flat = BTreeMap<String, Scalar>;

fn flatten(json: &Json, path: &str, out: &mut Flat) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match json {
        Json::Null => {}
        Json::Bool(flag) => {
            out.insert(path.to_string(), Scalar::Bool(*flag));
        }
        Json::Number(number) => {
            let scalar = match number.as_i64() {
                Some(int) => Scalar::Int(int),
                None => Scalar::Float(number.as_f64().expect("finite")),
            };
            out.insert(path.to_string(), scalar);
        }
        Json::String(text) => {
            out.insert(path.to_string(), Scalar::Str(text.clone()));
        }
        Json::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                flatten(item, &join(&index.to_string()), out);
            }
        }
        Json::Object(map) => {
            for (key, item) in map {
                flatten(item, &join(key), out);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Filters: generation, query text, evaluation.

#[derive(Debug, Clone)]
enum Lit {
    Str(String),
    Int(i64),
    Float(f64),
}

impl Lit {
    fn query(&self) -> String {
        match self {
            Lit::Str(text) => format!("\"{text}\""),
            Lit::Int(int) => int.to_string(),
            Lit::Float(float) => float.to_string(),
        }
    }

    fn as_scalar(&self) -> Scalar {
        match self {
            Lit::Str(text) => Scalar::Str(text.clone()),
            Lit::Int(int) => Scalar::Int(*int),
            Lit::Float(float) => Scalar::Float(*float),
        }
    }
}

fn equals(value: Option<&Scalar>, lit: &Lit) -> bool {
    let Some(value) = value else {
        return false;
    };
    let lit = lit.as_scalar();
    // Numbers compare as numbers; anything else by its text, so a number string equals a
    // number only in the number's own spelling.
    if value.is_number() && lit.is_number() {
        return value.number() == lit.number();
    }
    value.text() == lit.text()
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
enum Pattern {
    Substr(String),
    Regex(regex::Regex),
}

impl Pattern {
    fn is_match(&self, text: &str) -> bool {
        match self {
            Pattern::Substr(needle) => text.contains(needle.as_str()),
            Pattern::Regex(regex) => regex.is_match(text),
        }
    }

    fn query(&self, single_quotes: bool) -> String {
        match self {
            Pattern::Substr(needle) if single_quotes => format!("'{needle}'"),
            Pattern::Substr(needle) => format!("\"{needle}\""),
            Pattern::Regex(regex) => format!("/{}/", regex.as_str().replace('/', "\\/")),
        }
    }
}

#[derive(Debug, Clone)]
enum Filter {
    Eq(&'static str, Lit),
    Ne(&'static str, Lit),
    In(&'static str, Vec<Lit>, bool),
    /// Field, pattern, negated, spelled `=~` (else `like`), single quotes for a substring.
    Like(&'static str, Pattern, bool, bool, bool),
    Present(&'static str),
    Cmp(&'static str, Cmp, Lit),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// Redundant parentheses.
    Paren(Box<Filter>),
}

impl Filter {
    fn eval(&self, event: &Flat) -> bool {
        match self {
            Filter::Eq(field, lit) => equals(event.get(*field), lit),
            Filter::Ne(field, lit) => !equals(event.get(*field), lit),
            Filter::In(field, items, negated) => {
                items.iter().any(|item| equals(event.get(*field), item)) != *negated
            }
            Filter::Like(field, pattern, negated, ..) => {
                event
                    .get(*field)
                    .is_some_and(|value| pattern.is_match(&value.text()))
                    != *negated
            }
            Filter::Present(field) => event.contains_key(*field),
            Filter::Cmp(field, op, lit) => {
                let (Some(a), Some(b)) = (
                    event.get(*field).and_then(Scalar::number),
                    lit.as_scalar().number(),
                ) else {
                    return false;
                };
                match op {
                    Cmp::Lt => a < b,
                    Cmp::Le => a <= b,
                    Cmp::Gt => a > b,
                    Cmp::Ge => a >= b,
                }
            }
            Filter::And(left, right) => left.eval(event) && right.eval(event),
            Filter::Or(left, right) => left.eval(event) || right.eval(event),
            Filter::Not(inner) => !inner.eval(event),
            Filter::Paren(inner) => inner.eval(event),
        }
    }

    /// Binding strength: `or` 1, `and` 2, `not` 3, atoms 4.
    fn precedence(&self) -> u8 {
        match self {
            Filter::Or(..) => 1,
            Filter::And(..) => 2,
            Filter::Not(_) => 3,
            _ => 4,
        }
    }

    fn query(&self) -> String {
        let wrap = |child: &Filter, min: u8| {
            if child.precedence() < min {
                format!("({})", child.query())
            } else {
                child.query()
            }
        };
        match self {
            Filter::Eq(field, lit) => format!("{field} = {}", lit.query()),
            Filter::Ne(field, lit) => format!("{field} != {}", lit.query()),
            Filter::In(field, items, negated) => format!(
                "{field} {}in [{}]",
                if *negated { "not " } else { "" },
                items.iter().map(Lit::query).collect::<Vec<_>>().join(", ")
            ),
            Filter::Like(field, pattern, negated, tilde, single) => {
                let op = match (negated, tilde) {
                    (true, _) => "not like",
                    (false, true) => "=~",
                    (false, false) => "like",
                };
                format!("{field} {op} {}", pattern.query(*single))
            }
            Filter::Present(field) => format!("ispresent({field})"),
            Filter::Cmp(field, op, lit) => {
                let op = match op {
                    Cmp::Lt => "<",
                    Cmp::Le => "<=",
                    Cmp::Gt => ">",
                    Cmp::Ge => ">=",
                };
                format!("{field} {op} {}", lit.query())
            }
            Filter::And(left, right) => format!("{} and {}", wrap(left, 2), wrap(right, 2)),
            Filter::Or(left, right) => format!("{} or {}", wrap(left, 1), wrap(right, 1)),
            Filter::Not(inner) => format!("not {}", wrap(inner, 3)),
            Filter::Paren(inner) => format!("({})", inner.query()),
        }
    }
}

/// Values seen per field in the data, for literals that hit.
struct Pools {
    values: BTreeMap<&'static str, Vec<Scalar>>,
}

impl Pools {
    fn new(events: &[Flat]) -> Pools {
        let mut values = BTreeMap::new();
        for field in FIELDS {
            let mut seen = BTreeMap::new();
            for event in events {
                if let Some(value) = event.get(*field) {
                    seen.entry(value.text()).or_insert_with(|| value.clone());
                }
            }
            assert!(!seen.is_empty(), "no values for {field}");
            values.insert(*field, seen.into_values().collect());
        }
        Pools { values }
    }

    fn value(&self, rng: &mut fastrand::Rng, field: &str) -> Scalar {
        let pool = &self.values[field];
        pool[rng.usize(..pool.len())].clone()
    }

    /// A literal for `=`/`in`: mostly a value from the data, sometimes one that is absent.
    fn literal(&self, rng: &mut fastrand::Rng, field: &str) -> Lit {
        if field == NUMERIC_FIELD {
            return match rng.u8(..10) {
                0..=4 => match self.value(rng, field) {
                    Scalar::Int(int) => Lit::Int(int),
                    Scalar::Float(float) => Lit::Float(float),
                    other => match other.number() {
                        Some(n) if n.fract() == 0.0 => Lit::Int(n as i64),
                        Some(n) => Lit::Float(n),
                        None => Lit::Str(other.text()),
                    },
                },
                5..=7 => Lit::Str(self.value(rng, field).text()),
                8 => Lit::Int(rng.i64(0..30)),
                _ => Lit::Float(rng.i64(0..30) as f64 + 0.5),
            };
        }
        match rng.u8(..10) {
            0 => Lit::Str("nothing-like-this".into()),
            1 => Lit::Str(self.value(rng, field).text().to_lowercase()),
            _ => Lit::Str(self.value(rng, field).text()),
        }
    }

    fn pattern(&self, rng: &mut fastrand::Rng, field: &str) -> Pattern {
        let text = self.value(rng, field).text();
        let chars: Vec<char> = text.chars().collect();
        if chars.is_empty() {
            return if rng.bool() {
                Pattern::Substr(String::new())
            } else {
                Pattern::Regex(regex::Regex::new("^$").expect("regex"))
            };
        }
        let start = rng.usize(..chars.len());
        let len = rng.usize(1..=(chars.len() - start).min(6));
        let piece: String = chars[start..start + len].iter().collect();
        if rng.bool() {
            return Pattern::Substr(match rng.u8(..8) {
                0 => piece.to_uppercase(),
                _ => piece,
            });
        }
        let source = match rng.u8(..9) {
            0 => format!("^{}", escape(&chars[..len].iter().collect::<String>())),
            1 => format!(
                "{}$",
                escape(&chars[chars.len() - len..].iter().collect::<String>())
            ),
            2 => format!("(?i){}", escape(&swap_case(&piece))),
            3 => format!("^{}$", escape(&text)),
            4 => format!(
                "{}|{}",
                escape(&piece),
                escape(&self.value(rng, field).text())
            ),
            5 => r"\d{3}".to_string(),
            6 => "^[0-9]+$".to_string(),
            7 => r"[A-Z]\w*[a-z]".to_string(),
            _ => escape(&piece),
        };
        Pattern::Regex(regex::Regex::new(&source).expect("generated regex"))
    }
}

fn escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn swap_case(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

fn atom(rng: &mut fastrand::Rng, pools: &Pools, options: Options) -> Filter {
    let field = pick(rng, FIELDS);
    let numeric = field == NUMERIC_FIELD;
    let mut kind = rng.u8(..if numeric { 9 } else { 7 });
    while matches!(kind, 4 | 5)
        && NON_STRING_FIELDS.contains(&field)
        && !options.like_on_non_strings
    {
        kind = rng.u8(..if numeric { 9 } else { 7 });
    }
    match kind {
        0 => Filter::Eq(field, pools.literal(rng, field)),
        1 => Filter::Ne(field, pools.literal(rng, field)),
        2 | 3 => {
            let items = (0..rng.usize(1..=3))
                .map(|_| pools.literal(rng, field))
                .collect();
            Filter::In(field, items, rng.u8(..3) == 0)
        }
        4 | 5 => Filter::Like(
            field,
            pools.pattern(rng, field),
            rng.u8(..3) == 0,
            rng.u8(..4) == 0,
            rng.u8(..4) == 0,
        ),
        6 => Filter::Present(field),
        _ => {
            let op = pick(rng, &[Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge]);
            let bound = match rng.u8(..3) {
                0 => Lit::Int(rng.i64(0..25)),
                1 => Lit::Float(rng.i64(0..5_000) as f64 + 0.5),
                _ => Lit::Int(rng.i64(0..5_000)),
            };
            Filter::Cmp(field, op, bound)
        }
    }
}

fn filter(rng: &mut fastrand::Rng, pools: &Pools, depth: usize, options: Options) -> Filter {
    if depth == 0 || rng.u8(..10) < 3 {
        let leaf = atom(rng, pools, options);
        return if rng.u8(..8) == 0 {
            Filter::Paren(Box::new(leaf))
        } else {
            leaf
        };
    }
    match rng.u8(..5) {
        0 | 1 => Filter::And(
            Box::new(filter(rng, pools, depth - 1, options)),
            Box::new(filter(rng, pools, depth - 1, options)),
        ),
        2 | 3 => Filter::Or(
            Box::new(filter(rng, pools, depth - 1, options)),
            Box::new(filter(rng, pools, depth - 1, options)),
        ),
        _ => Filter::Not(Box::new(filter(rng, pools, depth - 1, options))),
    }
}

// ---------------------------------------------------------------------------------------------
// The property.

fn event_ids(answer: &seclog_query::QueryAnswer) -> Vec<String> {
    rows_json(answer)
        .into_iter()
        .map(|row| match row.as_slice() {
            [Json::String(id)] => id.clone(),
            other => panic!("expected one eventID per row, got {other:?}"),
        })
        .collect()
}

#[test]
fn random_filters_select_what_brute_force_selects() {
    check_random_filters(Options::default());
}

fn check_random_filters(options: Options) {
    let events = synthetic_events(options);
    let flat: Vec<(String, Flat)> = events
        .iter()
        .map(|event| {
            let mut out = Flat::new();
            flatten(event, "", &mut out);
            let id = match out.get("eventID") {
                Some(Scalar::Str(id)) => id.clone(),
                other => panic!("eventID missing: {other:?}"),
            };
            (id, out)
        })
        .collect();
    let fx = Fixture::new(vec![("aws/cloudtrail", events.clone())]);
    let pools = Pools::new(&flat.iter().map(|(_, f)| f.clone()).collect::<Vec<_>>());
    let mut rng = fastrand::Rng::with_seed(FILTER_SEED);

    let mut failures = String::new();
    let mut failed = 0usize;
    let (mut empty, mut everything) = (0usize, 0usize);
    for case in 0..CASES {
        let expr = filter(&mut rng, &pools, MAX_DEPTH, options);
        let text = expr.query();
        let expected: BTreeSet<&str> = flat
            .iter()
            .filter(|(_, event)| expr.eval(event))
            .map(|(id, _)| id.as_str())
            .collect();
        if expected.is_empty() {
            empty += 1;
        } else if expected.len() == flat.len() {
            everything += 1;
        }

        let query = format!("filter {text} | fields eventID | limit 10000");
        let mut problems = Vec::new();
        match fx.try_query(&query) {
            Err(error) => problems.push(format!("error: {error}")),
            Ok(answer) => {
                let ids = event_ids(&answer);
                let got: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
                if got.len() != ids.len() {
                    problems.push(format!("{} duplicate rows", ids.len() - got.len()));
                }
                if got != expected {
                    let missing: Vec<&&str> = expected.difference(&got).take(3).collect();
                    let extra: Vec<&&str> = got.difference(&expected).take(3).collect();
                    let sample = missing.first().or(extra.first()).map(|id| {
                        let event = &events[flat.iter().position(|(e, _)| e == **id).expect("id")];
                        event.to_string()
                    });
                    problems.push(format!(
                        "expected {} ids, got {}; missing e.g. {missing:?}, extra e.g. {extra:?}; \
                         first differing event: {}",
                        expected.len(),
                        got.len(),
                        sample.unwrap_or_default()
                    ));
                }
                if answer.matched != expected.len() as u64 {
                    problems.push(format!(
                        "matched {} but {} events satisfy the filter",
                        answer.matched,
                        expected.len()
                    ));
                }
            }
        }

        let count_query = format!("filter {text} | stats count(*)");
        match fx.try_query(&count_query) {
            Err(error) => problems.push(format!("stats error: {error}")),
            Ok(answer) => {
                let rows = rows_json(&answer);
                // No matching event means no group, so no row.
                let want = if expected.is_empty() {
                    Vec::new()
                } else {
                    vec![vec![json!(expected.len())]]
                };
                if rows != want || answer.fields != ["count(*)"] {
                    problems.push(format!(
                        "stats count(*): fields {:?} rows {rows:?}, expected {want:?}",
                        answer.fields
                    ));
                }
            }
        }

        if !problems.is_empty() {
            failed += 1;
            if failed <= 5 {
                let _ = writeln!(
                    failures,
                    "case {case}: {query}\n  {}",
                    problems.join("\n  ")
                );
            }
        }
    }
    assert!(
        failed == 0,
        "{failed} of {CASES} random filters disagree with brute force (first 5 shown):\n{failures}"
    );
    // The generator must exercise more than trivially empty or full answers.
    assert!(
        empty + everything < CASES / 3,
        "{empty} empty and {everything} all-event answers of {CASES}: the generator is too weak"
    );
}

#[test]
fn random_like_on_numbers_and_booleans_selects_what_brute_force_selects() {
    check_random_filters(Options {
        like_on_non_strings: true,
        ..Options::default()
    });
}

#[test]
fn random_filters_over_non_canonical_number_strings_select_what_brute_force_selects() {
    check_random_filters(Options {
        odd_number_strings: true,
        ..Options::default()
    });
}

// ---------------------------------------------------------------------------------------------
// Minimal cases of the disagreements above.

fn ids_of(fx: &Fixture, query: &str) -> BTreeSet<String> {
    event_ids(&fx.query(query)).into_iter().collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

#[test]
fn like_matches_the_text_of_numbers_and_booleans() {
    let fx = Fixture::new(vec![(
        "aws/cloudtrail",
        vec![
            json!({"eventID": "a", "bytes": 150, "readOnly": true}),
            json!({"eventID": "b", "bytes": "150", "readOnly": false}),
            json!({"eventID": "c", "bytes": 42}),
        ],
    )]);
    assert_eq!(
        ids_of(&fx, "filter bytes like \"5\" | fields eventID"),
        set(&["a", "b"])
    );
    assert_eq!(
        ids_of(&fx, "filter bytes =~ /^1/ | fields eventID"),
        set(&["a", "b"])
    );
    assert_eq!(
        ids_of(&fx, "filter bytes not like \"5\" | fields eventID"),
        set(&["c"])
    );
    assert_eq!(
        ids_of(&fx, "filter readOnly like \"tru\" | fields eventID"),
        set(&["a"])
    );
}

#[test]
fn numbers_equal_only_their_own_spelling_of_number_strings() {
    let fx = Fixture::new(vec![(
        "aws/cloudtrail",
        vec![
            json!({"eventID": "a", "bytes": "042"}),
            json!({"eventID": "b", "bytes": "42.0"}),
            json!({"eventID": "c", "bytes": "4.2e1"}),
            json!({"eventID": "d", "bytes": 42}),
            json!({"eventID": "e", "bytes": "42"}),
            json!({"eventID": "f", "bytes": 43}),
        ],
    )]);
    let canonical_42 = set(&["d", "e"]);
    assert_eq!(
        ids_of(&fx, "filter bytes = 42 | fields eventID"),
        canonical_42
    );
    assert_eq!(
        ids_of(&fx, "filter bytes in [42, 7] | fields eventID"),
        canonical_42
    );
    assert_eq!(
        ids_of(&fx, "filter bytes != 42 | fields eventID"),
        set(&["a", "b", "c", "f"])
    );
    assert_eq!(
        ids_of(&fx, "filter bytes not in [42] | fields eventID"),
        set(&["a", "b", "c", "f"])
    );
    // Numeric comparisons read any spelling as a number.
    assert_eq!(
        ids_of(&fx, "filter bytes >= 42 and bytes < 43 | fields eventID"),
        set(&["a", "b", "c", "d", "e"])
    );
}

#[test]
fn comparing_a_boolean_with_a_number_does_not_depend_on_pushdown() {
    let fx = Fixture::new(vec![(
        "aws/cloudtrail",
        vec![
            json!({"eventID": "a", "readOnly": true, "bytes": 1}),
            json!({"eventID": "b", "readOnly": false, "bytes": 2}),
        ],
    )]);
    for literal in ["1", "0"] {
        let pushed = ids_of(
            &fx,
            &format!("filter readOnly = {literal} | fields eventID"),
        );
        let evaluated = ids_of(
            &fx,
            &format!("filter readOnly = {literal} or bytes < -1 | fields eventID"),
        );
        assert_eq!(pushed, evaluated, "readOnly = {literal}");
    }
}
