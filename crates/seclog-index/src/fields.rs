//! How an event's fields are named: the flattening every consumer of the index agrees on.
//!
//! A JSON event is flattened the way CloudWatch Logs Insights discovers fields: nested objects
//! join their keys with `.` (`userIdentity.arn`), array elements are numbered
//! (`resources.0.ARN`), and `null` values are absent. Normalized (OCSF) names are aliases of
//! original paths, resolved at query time.

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::Value as Json;

/// A scalar field value as stored in an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    /// A JSON string.
    Str(&'a str),
    /// A JSON integer.
    Int(i64),
    /// A JSON unsigned integer beyond `i64`.
    UInt(u64),
    /// A JSON number with a fraction (or beyond 64-bit integers).
    Float(f64),
    /// A JSON boolean.
    Bool(bool),
}

/// Calls `visit(path, value)` for every scalar of `value`, with Insights-style paths.
pub fn flatten<'a>(value: &'a Json, visit: &mut impl FnMut(&str, Scalar<'a>)) {
    let mut path = String::new();
    walk(value, &mut path, visit, 0);
}

/// Deepest nesting followed; deeper values are left out of the field list (they stay in
/// `@message`).
pub const MAX_DEPTH: usize = 32;

fn walk<'a>(
    value: &'a Json,
    path: &mut String,
    visit: &mut impl FnMut(&str, Scalar<'a>),
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let scalar = match value {
        Json::Null => return,
        Json::Bool(flag) => Scalar::Bool(*flag),
        Json::Number(number) => {
            if let Some(int) = number.as_i64() {
                Scalar::Int(int)
            } else if let Some(uint) = number.as_u64() {
                Scalar::UInt(uint)
            } else {
                Scalar::Float(number.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(text) => Scalar::Str(text),
        Json::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let mark = push_key(path, &index.to_string());
                walk(item, path, visit, depth + 1);
                path.truncate(mark);
            }
            return;
        }
        Json::Object(map) => {
            for (key, item) in map {
                let mark = push_key(path, key);
                walk(item, path, visit, depth + 1);
                path.truncate(mark);
            }
            return;
        }
    };
    if !path.is_empty() {
        visit(path, scalar);
    }
}

fn push_key(path: &mut String, key: &str) -> usize {
    let mark = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
    mark
}

/// Why [`flatten_bytes`] gave up on a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlattenError {
    /// The text is not one JSON value.
    Invalid,
    /// An object repeats a key (the text is read no further, so it may still turn out not to
    /// be JSON): a parsed value keeps only the last of them, so the caller should parse the
    /// text and flatten that value instead.
    DuplicateKey,
}

/// Calls `visit(path, value)` for every scalar of the JSON text `raw`, exactly as [`flatten`]
/// would for its parsed value, without building that value (the indexer's hot path). On an
/// error some fields may already have been visited: the caller discards what it collected.
pub fn flatten_bytes(
    raw: &[u8],
    visit: &mut impl for<'s> FnMut(&str, Scalar<'s>),
) -> Result<(), FlattenError> {
    let mut state = Stream {
        path: String::new(),
        keys: Vec::new(),
        duplicate: false,
        visit,
    };
    let mut deserializer = serde_json::Deserializer::from_slice(raw);
    let parsed = serde::de::DeserializeSeed::deserialize(
        Node {
            state: &mut state,
            depth: 0,
        },
        &mut deserializer,
    )
    .and_then(|()| deserializer.end());
    match parsed {
        Ok(()) => Ok(()),
        Err(_) if state.duplicate => Err(FlattenError::DuplicateKey),
        Err(_) => Err(FlattenError::Invalid),
    }
}

/// What a streamed flattening carries: the current path, the key hashes of the objects being
/// read (to notice a repeated key), and the visitor.
struct Stream<'v, F> {
    path: String,
    keys: Vec<u64>,
    duplicate: bool,
    visit: &'v mut F,
}

impl<F: for<'s> FnMut(&str, Scalar<'s>)> Stream<'_, F> {
    fn scalar(&mut self, value: Scalar<'_>) {
        if !self.path.is_empty() {
            (self.visit)(&self.path, value);
        }
    }
}

/// One JSON value at `depth`.
struct Node<'a, 'v, F> {
    state: &'a mut Stream<'v, F>,
    depth: usize,
}

impl<'de, F: for<'s> FnMut(&str, Scalar<'s>)> serde::de::DeserializeSeed<'de> for Node<'_, '_, F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.depth > MAX_DEPTH {
            serde::de::IgnoredAny::deserialize(deserializer)?;
            return Ok(());
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de, F: for<'s> FnMut(&str, Scalar<'s>)> serde::de::Visitor<'de> for Node<'_, '_, F> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E>(self, value: bool) -> Result<(), E> {
        self.state.scalar(Scalar::Bool(value));
        Ok(())
    }

    fn visit_i64<E>(self, value: i64) -> Result<(), E> {
        self.state.scalar(Scalar::Int(value));
        Ok(())
    }

    fn visit_u64<E>(self, value: u64) -> Result<(), E> {
        self.state.scalar(match i64::try_from(value) {
            Ok(int) => Scalar::Int(int),
            Err(_) => Scalar::UInt(value),
        });
        Ok(())
    }

    fn visit_f64<E>(self, value: f64) -> Result<(), E> {
        self.state.scalar(Scalar::Float(value));
        Ok(())
    }

    fn visit_str<E>(self, value: &str) -> Result<(), E> {
        self.state.scalar(Scalar::Str(value));
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let mark = push_key(&mut self.state.path, "");
            // Writing to a String cannot fail.
            let _ = write!(self.state.path, "{index}");
            let more = seq.next_element_seed(Node {
                state: &mut *self.state,
                depth: self.depth + 1,
            })?;
            self.state.path.truncate(mark);
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let first_key = self.state.keys.len();
        loop {
            let mark = self.state.path.len();
            let Some(hash) = map.next_key_seed(Key {
                path: &mut self.state.path,
            })?
            else {
                break;
            };
            if self.state.keys[first_key..].contains(&hash) {
                self.state.duplicate = true;
                return Err(serde::de::Error::custom("duplicate key"));
            }
            self.state.keys.push(hash);
            map.next_value_seed(Node {
                state: &mut *self.state,
                depth: self.depth + 1,
            })?;
            self.state.path.truncate(mark);
        }
        self.state.keys.truncate(first_key);
        Ok(())
    }
}

/// An object key: appended to the path; its hash is the value.
struct Key<'a> {
    path: &'a mut String,
}

impl<'de> serde::de::DeserializeSeed<'de> for Key<'_> {
    type Value = u64;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Key<'_> {
    type Value = u64;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<u64, E> {
        push_key(self.path, key);
        Ok(xxhash_rust::xxh3::xxh3_64(key.as_bytes()))
    }
}

/// Normalized (OCSF) names with the original fields they stand for, tried in order.
const ALIASES: &[(&str, &[&str])] = &[
    ("api.operation", &["eventName"]),
    ("api.service.name", &["eventSource"]),
    ("api.request.uid", &["requestID"]),
    ("api.response.error", &["errorCode"]),
    ("api.response.message", &["errorMessage"]),
    (
        "actor.user.uid",
        &["userIdentity.arn", "userIdentity.principalId"],
    ),
    ("actor.user.uid_alt", &["userIdentity.principalId"]),
    (
        "actor.user.name",
        &[
            "userIdentity.userName",
            "userIdentity.sessionContext.sessionIssuer.userName",
        ],
    ),
    ("actor.user.type", &["userIdentity.type"]),
    ("actor.user.account.uid", &["userIdentity.accountId"]),
    ("actor.user.credential_uid", &["userIdentity.accessKeyId"]),
    (
        "actor.session.issuer",
        &["userIdentity.sessionContext.sessionIssuer.arn"],
    ),
    ("actor.invoked_by", &["userIdentity.invokedBy"]),
    ("user.uid", &["userIdentity.arn"]),
    (
        "src_endpoint.ip",
        &["sourceIPAddress", "srcaddr", "client_ip", "srcAddr"],
    ),
    ("dst_endpoint.ip", &["dstaddr", "dstAddr"]),
    ("src_endpoint.port", &["srcport", "srcPort"]),
    ("dst_endpoint.port", &["dstport", "dstPort"]),
    ("http_request.user_agent", &["userAgent", "user_agent"]),
    ("cloud.region", &["awsRegion", "region"]),
    (
        "cloud.account.uid",
        &["recipientAccountId", "account_id", "accountId"],
    ),
    ("metadata.uid", &["eventID"]),
    ("metadata.product.version", &["eventVersion"]),
    ("query.hostname", &["query_name"]),
    ("query.type", &["query_type"]),
    ("rcode", &["rcode"]),
    ("tls.version", &["tlsDetails.tlsVersion"]),
    ("tls.cipher", &["tlsDetails.cipherSuite"]),
    // The names CloudWatch Logs Insights discovers in VPC Flow Logs and Route 53 query logs,
    // so that its sample queries run on imported files.
    ("srcAddr", &["srcaddr"]),
    ("dstAddr", &["dstaddr"]),
    ("srcPort", &["srcport"]),
    ("dstPort", &["dstport"]),
    ("logStatus", &["log-status"]),
    ("interfaceId", &["interface-id"]),
    ("accountId", &["account-id", "account_id"]),
    ("queryName", &["query_name"]),
    ("queryType", &["query_type"]),
    ("responseCode", &["rcode"]),
    ("resolverIp", &["srcaddr"]),
];

/// The original paths a normalized name stands for (empty when it is not an alias).
pub fn alias_targets(name: &str) -> &'static [&'static str] {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map(|(_, targets)| *targets)
        .unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_like_insights() {
        let event: Json = serde_json::from_str(
            r#"{"a":{"b":"x","n":null},"list":[{"ARN":"r"},7],"t":true,"f":1.5,"big":18446744073709551615}"#,
        )
        .expect("json");
        let mut seen = Vec::new();
        flatten(&event, &mut |path, value| {
            seen.push((path.to_string(), value))
        });
        assert_eq!(
            seen,
            vec![
                ("a.b".into(), Scalar::Str("x")),
                ("list.0.ARN".into(), Scalar::Str("r")),
                ("list.1".into(), Scalar::Int(7)),
                ("t".into(), Scalar::Bool(true)),
                ("f".into(), Scalar::Float(1.5)),
                ("big".into(), Scalar::UInt(u64::MAX)),
            ]
        );
        let mut streamed = Vec::new();
        let raw = event.to_string();
        flatten_bytes(raw.as_bytes(), &mut |path, value| {
            streamed.push((path.to_string(), format!("{value:?}")))
        })
        .expect("valid JSON");
        let parsed: Vec<_> = seen
            .iter()
            .map(|(path, value)| (path.clone(), format!("{value:?}")))
            .collect();
        assert_eq!(streamed, parsed);
        assert_eq!(alias_targets("api.operation"), &["eventName"]);
        assert!(alias_targets("eventName").is_empty());
    }

    fn both(text: &str) -> (Result<(), FlattenError>, Vec<String>, Option<Vec<String>>) {
        let mut streamed = Vec::new();
        let result = flatten_bytes(text.as_bytes(), &mut |path, value| {
            streamed.push(format!("{path}={value:?}"))
        });
        let parsed = serde_json::from_str::<Json>(text).ok().map(|json| {
            let mut seen = Vec::new();
            flatten(&json, &mut |path, value| {
                seen.push(format!("{path}={value:?}"))
            });
            seen
        });
        (result, streamed, parsed)
    }

    #[test]
    fn streaming_agrees_with_the_parsed_value() {
        let deep = format!("{}1{}", "{\"d\":[".repeat(20), "]}".repeat(20));
        for text in [
            r#"{"a":"x\"y\u00e9\n","b":[[1,2],[]],"c":{},"e":-5,"f":1e300,"g":false}"#,
            r#"{"k.j":1,"k":{"j":2},"0":[null,{"x":null}]}"#,
            r#"  {"t":"\ud83d\ude00"}  "#,
            r#""top-level string""#,
            "42",
            &deep,
        ] {
            let (result, streamed, parsed) = both(text);
            assert_eq!(result, Ok(()), "{text}");
            assert_eq!(Some(streamed), parsed, "{text}");
        }
        for text in [r#"{"a":1"#, r#"{"a":1} x"#, "", r#"{"a":"\q"}"#, "[1,]"] {
            let (result, _, parsed) = both(text);
            assert_eq!(result, Err(FlattenError::Invalid), "{text}");
            assert!(parsed.is_none());
        }
        let (result, _, parsed) = both(r#"{"a":{"b":1,"b":2},"c":3}"#);
        assert_eq!(result, Err(FlattenError::DuplicateKey));
        assert_eq!(
            parsed,
            Some(vec!["a.b=Int(2)".to_string(), "c=Int(3)".to_string()])
        );
        // The same key in sibling objects is no repetition.
        let (result, streamed, parsed) = both(r#"{"a":{"b":1},"c":{"b":2},"b":3}"#);
        assert_eq!(result, Ok(()));
        assert_eq!(Some(streamed), parsed);
    }

    /// A random JSON text: nested objects and arrays, keys that repeat, escapes, numbers of
    /// every kind; sometimes damaged.
    fn random_text(rng: &mut fastrand::Rng) -> String {
        fn value(rng: &mut fastrand::Rng, depth: usize, out: &mut String) {
            match rng.u8(0..if depth > 4 { 6 } else { 8 }) {
                0 => out.push_str("null"),
                1 => out.push_str(if rng.bool() { "true" } else { "false" }),
                2 => out.push_str(&rng.i64(..).to_string()),
                3 => out.push_str(&rng.u64(..).to_string()),
                4 => out.push_str(&format!("{:e}", rng.f64() * 1e10)),
                5 => {
                    let pieces = [
                        "a",
                        "é",
                        "\\n",
                        "\\\"",
                        "\\u00e9",
                        "\\ud83d\\ude00",
                        " ",
                        "x.y",
                    ];
                    out.push('"');
                    for _ in 0..rng.usize(0..4) {
                        out.push_str(pieces[rng.usize(..pieces.len())]);
                    }
                    out.push('"');
                }
                6 => {
                    out.push('[');
                    for index in 0..rng.usize(0..4) {
                        if index > 0 {
                            out.push(',');
                        }
                        value(rng, depth + 1, out);
                    }
                    out.push(']');
                }
                _ => {
                    out.push('{');
                    for index in 0..rng.usize(0..5) {
                        if index > 0 {
                            out.push(',');
                        }
                        let keys = ["a", "b", "c.d", "0", "\\u0061"];
                        out.push_str(&format!("\"{}\":", keys[rng.usize(..keys.len())]));
                        value(rng, depth + 1, out);
                    }
                    out.push('}');
                }
            }
        }
        let mut text = String::new();
        value(rng, 0, &mut text);
        if rng.u8(0..8) == 0 && !text.is_empty() {
            let cut = rng.usize(0..text.len());
            if text.is_char_boundary(cut) {
                text.truncate(cut);
            }
        }
        text
    }

    #[test]
    fn streaming_agrees_with_the_parsed_value_on_random_texts() {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut outcomes = [0usize; 3];
        for _ in 0..20_000 {
            let text = random_text(&mut rng);
            let (result, streamed, parsed) = both(&text);
            match result {
                Ok(()) => {
                    outcomes[0] += 1;
                    assert_eq!(Some(streamed), parsed, "{text}");
                }
                Err(FlattenError::Invalid) => {
                    outcomes[1] += 1;
                    assert!(parsed.is_none(), "{text}");
                }
                // Reading stopped at the repeated key; the caller parses the text instead.
                Err(FlattenError::DuplicateKey) => outcomes[2] += 1,
            }
        }
        // Every outcome occurs.
        assert!(outcomes.iter().all(|count| *count > 100), "{outcomes:?}");
    }
}
