//! What the ingest protocols share: group names made from what senders say, credentials in
//! the forms clients send, dead letters, and records gathered by group.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use seclog_journal::{Record, RecordKind};
use seclog_model::{GroupName, Timestamp};
use serde_json::json;

use crate::committer::GroupBatch;

/// `text` made fit for one part of a group name: characters a group name cannot hold become
/// `_` (`.` and `..` too), at most 100 characters; `None` when nothing is left.
pub(crate) fn name_part(text: &str) -> Option<String> {
    let cleaned: String = text
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.as_str() {
        "" => None,
        "." | ".." => Some("_".into()),
        _ => Some(cleaned),
    }
}

/// The group `prefix/name`, where `name`'s `/`-separated parts are each made fit
/// ([`name_part`]); `prefix/fallback` when nothing is left of `name`.
pub(crate) fn group_named(prefix: &str, name: &str, fallback: &str) -> GroupName {
    let parts: Vec<String> = name.split('/').filter_map(name_part).collect();
    let name = if parts.is_empty() {
        fallback.to_string()
    } else {
        parts.join("/")
    };
    GroupName::parse(&format!("{prefix}/{name}"))
        .or_else(|_| GroupName::parse(&format!("{prefix}/{fallback}")))
        .unwrap_or_else(|_| GroupName::dead_letter())
}

/// How a client may present a seclog token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `Authorization: Bearer TOKEN`.
    Bearer,
    /// Basic auth with the token as the password.
    Basic,
    /// `Authorization: Splunk TOKEN` (HEC).
    Splunk,
    /// `Authorization: ApiKey base64(id:TOKEN)` or `base64(TOKEN)` (Elasticsearch).
    ApiKey,
}

/// The token in the `Authorization` header, if it uses one of `schemes`.
pub(crate) fn presented_token(headers: &HeaderMap, schemes: &[Scheme]) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (name, credentials) = value.split_once(' ')?;
    let credentials = credentials.trim();
    let scheme = match name.to_ascii_lowercase().as_str() {
        "bearer" => Scheme::Bearer,
        "basic" => Scheme::Basic,
        "splunk" => Scheme::Splunk,
        "apikey" => Scheme::ApiKey,
        _ => return None,
    };
    if !schemes.contains(&scheme) {
        return None;
    }
    let decoded = || {
        base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    };
    match scheme {
        Scheme::Bearer | Scheme::Splunk => Some(credentials.to_string()),
        Scheme::Basic => {
            decoded().and_then(|pair| pair.split_once(':').map(|(_, token)| token.to_string()))
        }
        Scheme::ApiKey => Some(match decoded() {
            Some(pair) => match pair.split_once(':') {
                Some((_, token)) => token.to_string(),
                None => pair,
            },
            None => credentials.to_string(),
        }),
    }
}

/// A dead-letter record: `raw` as received, with the reason and the listener.
pub(crate) fn dead_letter(
    raw: &[u8],
    reason: &str,
    listener: &str,
    received: Timestamp,
    source: &str,
) -> Vec<u8> {
    Record {
        time: received,
        observed_time: received,
        kind: RecordKind::Invalid,
        source: source.to_string(),
        attrs: json!({ "reason": reason, "listener": listener })
            .to_string()
            .into_bytes(),
        raw: raw.to_vec(),
    }
    .encode()
}

/// [`dead_letter`] as a batch of its own for the dead-letter group.
pub(crate) fn dead_letter_batch(
    raw: &[u8],
    reason: &str,
    listener: &str,
    received: Timestamp,
    source: &str,
) -> GroupBatch {
    GroupBatch {
        group: GroupName::dead_letter(),
        records: vec![dead_letter(raw, reason, listener, received, source)],
    }
}

/// The encoded record of a line a protocol carried as text: a JSON event when the line is a
/// JSON object, a text event otherwise; `attrs` are what the protocol said about it.
pub(crate) fn line_record(
    line: String,
    time: Timestamp,
    received: Timestamp,
    source: &str,
    attrs: &serde_json::Value,
) -> Vec<u8> {
    let is_json = line.trim_start().starts_with('{')
        && serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line).is_ok();
    Record {
        time,
        observed_time: received,
        kind: if is_json {
            RecordKind::Json
        } else {
            RecordKind::Text
        },
        source: source.to_string(),
        attrs: attrs.to_string().into_bytes(),
        raw: line.into_bytes(),
    }
    .encode()
}

/// Whether `token` may write events to `group` (never to seclog's own groups); the reason if not.
pub(crate) fn writable(token: &seclog_meta::TokenInfo, group: &GroupName) -> Result<(), String> {
    if group.is_internal() {
        return Err("groups beginning with seclog/ are written by seclog only".into());
    }
    if !token.covers(group.as_str()) {
        return Err(format!("this token may not write to {group}"));
    }
    Ok(())
}

/// Encoded records gathered by group, in the order groups first appear.
#[derive(Default)]
pub(crate) struct Batches(Vec<GroupBatch>);

impl Batches {
    /// Adds `record` to `group`'s batch; returns the batch's position and the record's
    /// position in it.
    pub(crate) fn push(&mut self, group: &GroupName, record: Vec<u8>) -> (usize, usize) {
        let index = match self.0.iter().position(|batch| batch.group == *group) {
            Some(index) => index,
            None => {
                self.0.push(GroupBatch {
                    group: group.clone(),
                    records: Vec::new(),
                });
                self.0.len() - 1
            }
        };
        let records = &mut self.0[index].records;
        records.push(record);
        (index, records.len() - 1)
    }

    /// Records gathered so far.
    pub(crate) fn len(&self) -> usize {
        self.0.iter().map(|batch| batch.records.len()).sum()
    }

    /// The batches, for the commit thread.
    pub(crate) fn into_inner(self) -> Vec<GroupBatch> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn group_names_from_what_senders_say() {
        assert_eq!(
            group_named("loki", "varlogs", "default").as_str(),
            "loki/varlogs"
        );
        assert_eq!(
            group_named("cloudwatch", "/aws/lambda/pay", "unknown").as_str(),
            "cloudwatch/aws/lambda/pay"
        );
        assert_eq!(
            group_named("otlp", "my service", "x").as_str(),
            "otlp/my_service"
        );
        assert_eq!(group_named("c", "a#b/..", "x").as_str(), "c/a_b/_");
        assert_eq!(group_named("loki", "", "default").as_str(), "loki/default");
        assert_eq!(name_part(""), None);
    }

    #[test]
    fn credentials_map_onto_tokens() {
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            headers
        };
        let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        let all = [
            Scheme::Bearer,
            Scheme::Basic,
            Scheme::Splunk,
            Scheme::ApiKey,
        ];
        let token = |value: &str| presented_token(&headers(value), &all);
        assert_eq!(
            token(&format!("ApiKey {}", b64("seclog:tok1"))).as_deref(),
            Some("tok1")
        );
        assert_eq!(
            token(&format!("ApiKey {}", b64("tok1"))).as_deref(),
            Some("tok1")
        );
        assert_eq!(
            token(&format!("Basic {}", b64("elastic:tok1"))).as_deref(),
            Some("tok1")
        );
        assert_eq!(token("Bearer tok1").as_deref(), Some("tok1"));
        assert_eq!(token("Splunk tok1").as_deref(), Some("tok1"));
        assert_eq!(token("Digest x"), None);
        assert_eq!(
            presented_token(&headers("Splunk tok1"), &[Scheme::Bearer]),
            None
        );
    }
}
