//! How an event's fields are named: the flattening every consumer of the index agrees on.
//!
//! A JSON event is flattened the way CloudWatch Logs Insights discovers fields: nested objects
//! join their keys with `.` (`userIdentity.arn`), array elements are numbered
//! (`resources.0.ARN`), and `null` values are absent. Normalized (OCSF) names are aliases of
//! original paths, resolved at query time.

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

/// Normalized (OCSF) names with the original fields they stand for, tried in order.
const ALIASES: &[(&str, &[&str])] = &[
    ("api.operation", &["eventName"]),
    ("api.service.name", &["eventSource"]),
    ("api.request.uid", &["requestID"]),
    ("api.response.error", &["errorCode"]),
    ("api.response.message", &["errorMessage"]),
    ("actor.user.uid", &["userIdentity.principalId"]),
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
        assert_eq!(alias_targets("api.operation"), &["eventName"]);
        assert!(alias_targets("eventName").is_empty());
    }
}
