//! The Elasticsearch `_bulk` body: newline-delimited pairs of an action line and a source line.
//!
//! ```text
//! {"index":{"_index":"logs-app","_id":"1"}}     action: index / create (+ a source line)
//! {"@timestamp":"2026-11-27T10:00:00Z","message":"user logged in"}
//! {"create":{}}                                 the index comes from the URL (/{index}/_bulk)
//! {"message":"second"}
//! {"delete":{"_index":"logs-app","_id":"1"}}    delete has no source line; update has one
//! ```
//!
//! Every action gets one [`BulkItem`], in order, so that the reply can list one result per
//! action as Elasticsearch does. seclog only appends: `index` and `create` store their source;
//! `delete` and `update` are answered with an error item (their lines are kept as dead letters).

use memchr::memchr;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::object_scan::{Scanned, scan_json};
use seclog_model::Timestamp;

/// What an action asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    /// `index`: store the source (replacing a document with the same id in Elasticsearch).
    Index,
    /// `create`: store the source.
    Create,
    /// `update`: not possible in an append-only store.
    Update,
    /// `delete`: not possible in an append-only store.
    Delete,
}

impl BulkAction {
    /// The action's name as it appears in the body and the reply.
    pub fn name(self) -> &'static str {
        match self {
            BulkAction::Index => "index",
            BulkAction::Create => "create",
            BulkAction::Update => "update",
            BulkAction::Delete => "delete",
        }
    }
}

/// One action of a bulk body and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkItem<'a> {
    /// The action (`Index` when the action line could not be read).
    pub action: BulkAction,
    /// `_index` of the action line, if any (else the URL's index applies).
    pub index: Option<String>,
    /// `_id` of the action line, if any.
    pub id: Option<String>,
    /// The source document for `index`/`create`, a validated JSON object.
    pub source: Option<&'a [u8]>,
    /// The source's own time (`@timestamp`, `timestamp`, ...), if it has one.
    pub time: Option<Timestamp>,
    /// Why the item failed: Elasticsearch's error `type` and a reason. The failed lines are
    /// in `raw`.
    pub error: Option<(&'static str, String)>,
    /// The lines of a failed item (action line and source line), for the dead-letter group.
    pub raw: &'a [u8],
    /// 1-based line number of the action line.
    pub line: usize,
}

#[derive(Deserialize)]
struct ActionMeta {
    #[serde(rename = "_index")]
    index: Option<String>,
    #[serde(rename = "_id")]
    id: Option<serde_json::Value>,
}

/// Splits a bulk body into items. Blank lines are skipped; a body that does not end with a
/// newline is accepted (Elasticsearch refuses it; clients always send the newline).
pub fn decode_bulk(body: &[u8]) -> Vec<BulkItem<'_>> {
    let mut lines = Lines {
        body,
        at: 0,
        line: 0,
    };
    let mut items = Vec::new();
    while let Some((number, action_line, action_start)) = lines.next_non_blank() {
        let parsed: Result<std::collections::BTreeMap<String, Box<RawValue>>, _> =
            serde_json::from_slice(action_line);
        let (action, meta) = match parsed {
            Ok(map) if map.len() == 1 => {
                let Some((name, meta)) = map.into_iter().next() else {
                    continue;
                };
                let action = match name.as_str() {
                    "index" => Some(BulkAction::Index),
                    "create" => Some(BulkAction::Create),
                    "update" => Some(BulkAction::Update),
                    "delete" => Some(BulkAction::Delete),
                    _ => None,
                };
                (action, serde_json::from_str::<ActionMeta>(meta.get()).ok())
            }
            _ => (None, None),
        };
        let Some(action) = action else {
            // Elasticsearch rejects the whole request here; seclog keeps the rest of it and
            // reports this line as a failed item.
            items.push(BulkItem {
                action: BulkAction::Index,
                index: None,
                id: None,
                source: None,
                time: None,
                error: Some((
                    "illegal_argument_exception",
                    format!(
                        "line {number}: expected an action line {{\"index\"|\"create\"|\"update\"|\"delete\": {{...}}}}"
                    ),
                )),
                raw: action_line,
                line: number,
            });
            continue;
        };
        let index = meta.as_ref().and_then(|meta| meta.index.clone());
        let id = meta.as_ref().and_then(|meta| match &meta.id {
            Some(serde_json::Value::String(id)) => Some(id.clone()),
            Some(other @ serde_json::Value::Number(_)) => Some(other.to_string()),
            _ => None,
        });
        let mut item = BulkItem {
            action,
            index,
            id,
            source: None,
            time: None,
            error: None,
            raw: action_line,
            line: number,
        };
        if action == BulkAction::Delete {
            item.error = Some((
                "action_request_validation_exception",
                "seclog is append-only: events cannot be deleted".into(),
            ));
            items.push(item);
            continue;
        }
        let Some((_, source, source_start)) = lines.next_non_blank() else {
            item.error = Some((
                "illegal_argument_exception",
                format!(
                    "line {number}: the {} action has no source line",
                    action.name()
                ),
            ));
            items.push(item);
            continue;
        };
        item.raw = body
            .get(action_start..source_start + source.len())
            .unwrap_or(action_line);
        if action == BulkAction::Update {
            item.error = Some((
                "action_request_validation_exception",
                "seclog is append-only: events cannot be updated".into(),
            ));
            items.push(item);
            continue;
        }
        let not_object = || {
            Some((
                "document_parsing_exception",
                "the source is not a JSON object".to_string(),
            ))
        };
        item.error = match std::str::from_utf8(source) {
            Ok(text) if text.trim_start().starts_with('{') => match scan_json(text.trim()) {
                Ok(Scanned::Object(time)) => {
                    item.source = Some(source.trim_ascii());
                    item.time = time;
                    None
                }
                Ok(Scanned::NotObject) => not_object(),
                Err(error) => Some((
                    "document_parsing_exception",
                    format!("failed to parse the source: {error}"),
                )),
            },
            Ok(_) => not_object(),
            Err(error) => Some((
                "document_parsing_exception",
                format!("the source is not UTF-8: {error}"),
            )),
        };
        items.push(item);
    }
    items
}

struct Lines<'a> {
    body: &'a [u8],
    at: usize,
    line: usize,
}

impl<'a> Lines<'a> {
    /// The next non-blank line: its number, its bytes (without the line end) and its offset.
    fn next_non_blank(&mut self) -> Option<(usize, &'a [u8], usize)> {
        while self.at < self.body.len() {
            let rest = self.body.get(self.at..)?;
            let end = memchr(b'\n', rest).unwrap_or(rest.len());
            let line = rest.get(..end)?;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let start = self.at;
            self.at += end + 1;
            self.line += 1;
            if !line.trim_ascii().is_empty() {
                return Some((self.line, line, start));
            }
        }
        None
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn pairs_actions_with_sources() {
        let body = b"{\"index\":{\"_index\":\"logs-a\",\"_id\":\"1\"}}\n{\"@timestamp\":\"2026-11-27T10:00:00Z\",\"message\":\"one\"}\n\n{\"create\":{}}\r\n{\"message\":\"two\"}\n";
        let items = decode_bulk(body);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].action, BulkAction::Index);
        assert_eq!(items[0].index.as_deref(), Some("logs-a"));
        assert_eq!(items[0].id.as_deref(), Some("1"));
        assert_eq!(
            items[0].source,
            Some(&b"{\"@timestamp\":\"2026-11-27T10:00:00Z\",\"message\":\"one\"}"[..])
        );
        assert!(items[0].time.is_some());
        assert_eq!(items[1].action, BulkAction::Create);
        assert_eq!(items[1].index, None);
        assert_eq!(items[1].source, Some(&b"{\"message\":\"two\"}"[..]));
        assert_eq!(items[1].line, 4);
    }

    #[test]
    fn delete_update_and_broken_lines_are_failed_items() {
        let body = b"{\"delete\":{\"_id\":\"9\"}}\n{\"update\":{\"_id\":\"9\"}}\n{\"doc\":{}}\nnot json\n{\"index\":{}}\n[1]\n{\"index\":{}}\n{\"ok\":true}\n{\"index\":{}}";
        let items = decode_bulk(body);
        let kinds: Vec<_> = items
            .iter()
            .map(|item| (item.action, item.error.as_ref().map(|(kind, _)| *kind)))
            .collect();
        assert_eq!(
            kinds,
            [
                (
                    BulkAction::Delete,
                    Some("action_request_validation_exception")
                ),
                (
                    BulkAction::Update,
                    Some("action_request_validation_exception")
                ),
                (BulkAction::Index, Some("illegal_argument_exception")),
                (BulkAction::Index, Some("document_parsing_exception")),
                (BulkAction::Index, None),
                (BulkAction::Index, Some("illegal_argument_exception")),
            ]
        );
        assert_eq!(items[1].raw, b"{\"update\":{\"_id\":\"9\"}}\n{\"doc\":{}}");
        assert_eq!(items[4].source, Some(&b"{\"ok\":true}"[..]));
    }
}
