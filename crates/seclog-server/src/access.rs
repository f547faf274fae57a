//! Records for the `seclog/access` group: every read of log data and every admin action,
//! whether it comes through the API or the command line, and every refused request.

use seclog_journal::{Record, RecordKind};
use seclog_model::{GroupName, Timestamp};
use seclog_query::QueryAnswer;
use serde_json::{Value as Json, json};

/// The group every read of log data is recorded in.
pub const ACCESS_GROUP: &str = "seclog/access";

/// The group, parsed.
pub fn access_group() -> GroupName {
    GroupName::parse(ACCESS_GROUP).expect("the access group name is valid")
}

/// What was read: the action, the query, the groups and the time range.
pub fn entry(
    action: &str,
    query: &str,
    groups: &[GroupName],
    start: Timestamp,
    end: Timestamp,
) -> Json {
    json!({
        "action": action,
        "query": query,
        "groups": groups.iter().map(GroupName::as_str).collect::<Vec<_>>(),
        "start": start.to_rfc3339(),
        "end": end.to_rfc3339(),
    })
}

/// Adds how the read ended: `status` (`ok`, `partial` or `error`), rows and matched events.
pub fn with_outcome<E>(mut entry: Json, outcome: &Result<QueryAnswer, E>) -> Json {
    match outcome {
        Ok(answer) => {
            entry["status"] = json!(if answer.partial.is_some() {
                "partial"
            } else {
                "ok"
            });
            entry["rows"] = json!(answer.rows.len());
            entry["matched"] = json!(answer.matched);
        }
        Err(_) => entry["status"] = json!("error"),
    }
    entry
}

/// The encoded journal record of `entry`, read by `actor` now.
pub fn record(mut entry: Json, actor: Json) -> Vec<u8> {
    entry["actor"] = actor;
    own_record(entry)
}

/// A record seclog writes about itself (access, health): `entry` stamped with `eventTime`
/// now, source `seclog`.
pub fn own_record(mut entry: Json) -> Vec<u8> {
    let now = Timestamp::now();
    entry["eventTime"] = json!(now.to_rfc3339());
    Record {
        time: now,
        observed_time: now,
        kind: RecordKind::Json,
        source: "seclog".into(),
        attrs: Vec::new(),
        raw: entry.to_string().into_bytes(),
    }
    .encode()
}

/// The access record of a retention change, before it is made.
pub fn retention_change_entry(
    group: &GroupName,
    change: &seclog_meta::RetentionChange,
    preset: Option<&str>,
    previous: Option<&seclog_meta::RetentionPolicy>,
) -> Json {
    json!({
        "action": "retention_set",
        "status": "requested",
        "groups": [group.as_str()],
        "target": {
            "group": group.as_str(),
            "days": change.days,
            "mode": change.mode.name(),
            "preset": preset,
            "shorten": change.shorten,
            "previous": previous,
        },
    })
}

/// Records `entry` by `actor` in `seclog/access` and waits until it is durable: answers that
/// depend on it are given only after this returns `Ok`.
pub(crate) async fn store(
    state: &crate::AppState,
    entry: Json,
    actor: Json,
) -> Result<(), crate::ApiError> {
    let record = record(entry, actor);
    state
        .commit
        .submit(
            vec![crate::committer::GroupBatch {
                group: access_group(),
                records: vec![record],
            }],
            state.submit_wait,
        )
        .await
        .map_err(|error| {
            tracing::error!(error = %error, "writing to seclog/access failed");
            crate::ApiError::unavailable(
                "the access log could not be written; the answer is withheld",
                1,
            )
        })?;
    Ok(())
}
