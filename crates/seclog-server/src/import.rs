//! Service log objects: `POST /api/v1/import?object=NAME[&format=F][&group=G]` with the object
//! (a CloudTrail delivery file, a flow log file, …; gzip, zstd or plain) as the body, and
//! [`import_object`] for `seclog import --data`.
//!
//! An object is identified by the SHA-256 of its content (decompressed), so the same object
//! imported twice, under any name, is stored once. Its records are stored in order, in batches;
//! after each durable batch the meta store records how many are stored, so an interrupted
//! import resumes after the last stored batch. Records that cannot be decoded go to
//! `seclog/dead-letter` with the reason; CloudTrail digest files go to `<group>-digest`.

use std::io::Read;

use axum::body::Body;
use axum::extract::{Extension, Query, State};
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use seclog_formats::service::{
    DecodeOptions, Format, Item, RawKind, decode_each, detect, parse_vpc_format,
};
use seclog_journal::{Record, RecordKind};
use seclog_meta::{ImportState, PendingBatch};
use seclog_model::{GroupName, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::auth::Caller;
use crate::committer::GroupBatch;
use crate::error::ApiError;
use crate::ingest::{content_encoding, dead_letter, read_body};

/// Records stored per group commit (the unit an interrupted import may repeat).
const BATCH_ITEMS: usize = 5_000;

/// What to import.
#[derive(Debug, Clone, Deserialize)]
pub struct ImportRequest {
    /// The object's name (`s3://bucket/key` or a path): the events' `@logStream`, and the
    /// hint for format detection.
    pub object: String,
    /// The format (`auto` or absent: detected from the name and content).
    #[serde(default)]
    pub format: Option<String>,
    /// The group (default `aws/<format>`).
    #[serde(default)]
    pub group: Option<String>,
    /// VPC Flow Logs format string for records without a header line.
    #[serde(default)]
    pub vpc_format: Option<String>,
    /// The object version's entity tag (S3 ETag): with it, a version imported completely is
    /// remembered by name, so a later listing need not fetch it again.
    #[serde(default)]
    pub etag: Option<String>,
    /// Only ask whether this object version (`object` and `etag`) is stored already; the body
    /// is empty. The answer's status is `already_imported` or `not_imported`.
    #[serde(default)]
    pub check: bool,
    /// A CloudTrail digest file's signature (hex), from its S3 metadata; kept with the digest.
    #[serde(default)]
    pub signature: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOutcome {
    /// The object's name.
    pub object: String,
    /// SHA-256 of its content (hex).
    pub sha256: String,
    /// The format it was read as.
    pub format: String,
    /// The group its events went to.
    pub group: String,
    /// `imported`, `already_imported` or `digest`.
    pub status: String,
    /// Events stored by this call.
    pub events: u64,
    /// Dead letters stored by this call.
    pub rejected: u64,
    /// Records skipped because an earlier, interrupted import stored them.
    pub resumed_after: u64,
    /// Decompressed size in bytes.
    pub bytes: u64,
}

pub(crate) async fn import(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(request): Query<ImportRequest>,
    http: Request<Body>,
) -> Result<Response, ApiError> {
    let (parts, body) = http.into_parts();
    let token = caller.token;
    // Content-Encoding is checked for a clear error; the body's magic bytes decide.
    content_encoding(&parts.headers)?;
    let body = read_body(body, state.limits.max_decompressed_bytes).await?;
    let source = format!("http:{}", crate::ingest::peer_address(&parts.extensions));
    let outcome = import_object(&state, &request, Vec::from(body), &|group| {
        if !token.covers(group.as_str()) {
            return Err(ApiError::forbidden(format!(
                "this token may not write to group {group}"
            )));
        }
        Ok(())
    })
    .await?;
    state
        .metrics
        .listener("import")
        .stored(outcome.events, outcome.rejected);
    tracing::info!(
        object = %outcome.object,
        group = %outcome.group,
        events = outcome.events,
        rejected = outcome.rejected,
        status = %outcome.status,
        %source,
        "object imported"
    );
    Ok(axum::Json(outcome).into_response())
}

/// Imports one object (its bytes as stored: gzip and zstd are recognized by their magic bytes).
/// `allowed` checks the group the object's events go to.
pub(crate) async fn import_object(
    state: &AppState,
    request: &ImportRequest,
    bytes: Vec<u8>,
    allowed: &(dyn Fn(&GroupName) -> Result<(), ApiError> + Sync),
) -> Result<ImportOutcome, ApiError> {
    if request.check {
        return check_known(state, request, allowed);
    }
    let limit = state.limits.max_decompressed_bytes;
    let object = request.object.clone();
    let prepared = {
        let request = request.clone();
        tokio::task::spawn_blocking(move || prepare(&request, bytes, limit))
            .await
            .map_err(|_| ApiError::internal("import worker failed"))??
    };
    let Prepared {
        plain,
        sha256,
        format,
        group,
        options,
    } = prepared;
    allowed(&group)?;
    if group.is_internal() {
        return Err(ApiError::forbidden(
            "groups beginning with seclog/ are written by seclog only",
        ));
    }
    let mut outcome = ImportOutcome {
        object: object.clone(),
        sha256: sha256.clone(),
        format: format.name().to_string(),
        group: group.to_string(),
        status: "imported".into(),
        events: 0,
        rejected: 0,
        resumed_after: 0,
        bytes: plain.len() as u64,
    };
    let received = Timestamp::now();
    // Two imports of one object at once (a watcher and a CLI run) would both find it not
    // stored: the second waits for the first, then finds it stored.
    let _claim = Claim::take(state, format!("{group}\u{0}{sha256}")).await;
    let meta_error = |error: seclog_meta::MetaError| {
        tracing::error!(%error, "import state not readable");
        ApiError::internal("the import state cannot be read")
    };
    let mut progress = state
        .meta
        .import_state(group.as_str(), &sha256)
        .map_err(meta_error)?
        .unwrap_or_else(|| ImportState {
            object: object.clone(),
            format: format.name().to_string(),
            ..ImportState::default()
        });
    if progress.complete {
        outcome.status = "already_imported".into();
        outcome.resumed_after = progress.items_done;
        remember_version(state, request, &group, &sha256);
        return Ok(outcome);
    }
    // A batch that was being committed when an earlier import stopped: count what of it the
    // journal holds, and store only the rest.
    let (mut skip_events, mut skip_dead) = (0u64, 0u64);
    if let Some(pending) = progress.pending.take() {
        let stored_events =
            count_stored(state, &group, &progress.object, pending.group_next).await?;
        let stored_dead = count_stored(
            state,
            &GroupName::dead_letter(),
            &progress.object,
            pending.dead_next,
        )
        .await?;
        progress.events += stored_events;
        progress.rejected += stored_dead;
        if stored_events >= pending.events && stored_dead >= pending.dead {
            progress.items_done += pending.items;
        } else {
            skip_events = stored_events;
            skip_dead = stored_dead;
        }
        save(state, &group, &sha256, &progress)?;
    }
    let start = progress.items_done;
    outcome.resumed_after = start;
    // Decoding runs on a blocking thread and hands over encoded chunks through a short queue:
    // an object's decoded items (several times its size) are never all in memory, and the
    // journal commits one chunk while the next is decoded.
    let (sender, mut chunks) = tokio::sync::mpsc::channel::<Chunk>(2);
    let worker = {
        let group = group.clone();
        let object = object.clone();
        tokio::task::spawn_blocking(move || {
            let mut pending: Vec<Item> = Vec::with_capacity(BATCH_ITEMS);
            // Items of this chunk an interrupted import stored already (counted, not stored).
            let mut carried = 0u64;
            let mut seen = 0u64;
            let mut open = true;
            let flush = |pending: &mut Vec<Item>, carried: &mut u64, open: &mut bool| {
                let items = std::mem::take(pending);
                let count = items.len() as u64 + std::mem::take(carried);
                let (events, dead) = records(items, &group, &object, received);
                // A closed queue means the import failed; the rest is decoded for nothing.
                *open = *open
                    && sender
                        .blocking_send(Chunk {
                            count,
                            events,
                            dead,
                        })
                        .is_ok();
            };
            let digest = decode_each(format, &plain, &options, &mut |item| {
                seen += 1;
                if seen <= start || !open {
                    return;
                }
                match &item {
                    Item::Event(_) if skip_events > 0 => {
                        skip_events -= 1;
                        carried += 1;
                    }
                    Item::Rejected(_) if skip_dead > 0 => {
                        skip_dead -= 1;
                        carried += 1;
                    }
                    _ => pending.push(item),
                }
                if pending.len() as u64 + carried == BATCH_ITEMS as u64 {
                    flush(&mut pending, &mut carried, &mut open);
                }
            });
            if !pending.is_empty() || carried > 0 {
                flush(&mut pending, &mut carried, &mut open);
            }
            digest.map(|digest| (digest, plain))
        })
    };
    while let Some(chunk) = chunks.recv().await {
        let Chunk {
            count,
            events,
            dead,
        } = chunk;
        let (event_count, dead_count) = (events.len() as u64, dead.len() as u64);
        let mut batches = Vec::new();
        if !events.is_empty() {
            batches.push(GroupBatch {
                group: group.clone(),
                records: events,
            });
        }
        if !dead.is_empty() {
            batches.push(GroupBatch {
                group: GroupName::dead_letter(),
                records: dead,
            });
        }
        // The sizes before the batch are recorded first: if the import stops before the
        // next save, the next import counts what of the batch the journal holds.
        if let Some((heads, _)) = &state.journal {
            progress.pending = Some(PendingBatch {
                items: count,
                events: event_count,
                dead: dead_count,
                group_next: heads.size(&group),
                dead_next: heads.size(&GroupName::dead_letter()),
            });
            save(state, &group, &sha256, &progress)?;
        }
        if !batches.is_empty() {
            submit(state, batches).await?;
        }
        progress.pending = None;
        progress.items_done += count;
        progress.events += event_count;
        progress.rejected += dead_count;
        save(state, &group, &sha256, &progress)?;
        outcome.events += event_count;
        outcome.rejected += dead_count;
    }
    let digest = worker
        .await
        .map_err(|_| ApiError::internal("import worker failed"))?;
    if let Some((digest, plain)) = digest {
        let digests = digest_group(&group)
            .map_err(|reason| ApiError::bad_request("invalid_group", reason))?;
        allowed(&digests)?;
        let time = seclog_formats::parse_time_value(&Value::String(digest.digest_end_time.clone()));
        let digest = DigestObject {
            group: &digests,
            object: &object,
            sha256,
            plain,
            time,
            signature: request.signature.clone(),
        };
        let outcome = store_digest(state, digest, received, outcome).await?;
        remember_version(state, request, &digests, &outcome.sha256);
        return Ok(outcome);
    }
    progress.complete = true;
    save(state, &group, &sha256, &progress)?;
    remember_version(state, request, &group, &sha256);
    Ok(outcome)
}

/// Records of `group` from sequence `from` on whose source is `object` (what an interrupted
/// import stored of its last batch).
async fn count_stored(
    state: &AppState,
    group: &GroupName,
    object: &str,
    from: u64,
) -> Result<u64, ApiError> {
    let object = object.to_string();
    count_matching(state, group, from, move |record| record.source == object).await
}

/// Records of `group` from sequence `from` on that `belongs` accepts (what an interrupted
/// commit stored of its batch).
pub(crate) async fn count_matching(
    state: &AppState,
    group: &GroupName,
    from: u64,
    belongs: impl Fn(&Record) -> bool + Send + 'static,
) -> Result<u64, ApiError> {
    let Some((heads, reader)) = state.journal.clone() else {
        return Ok(0);
    };
    if heads.size(group) <= from {
        return Ok(0);
    }
    let group = group.clone();
    tokio::task::spawn_blocking(move || {
        let mut position = from;
        let mut count = 0u64;
        loop {
            let events = reader.read(&group, position, 10_000, None)?;
            let Some(last) = events.last() else { break };
            position = last.seq + 1;
            count += events.iter().filter(|event| belongs(&event.record)).count() as u64;
        }
        Ok::<u64, seclog_journal::JournalError>(count)
    })
    .await
    .map_err(|_| ApiError::internal("import worker failed"))?
    .map_err(|error| {
        tracing::error!(%error, "journal not readable to resume an import");
        ApiError::internal("the journal cannot be read to resume this import")
    })
}

/// Encoded records of a run of decoded items.
struct Chunk {
    /// Items it stands for (events and dead letters).
    count: u64,
    events: Vec<Vec<u8>>,
    dead: Vec<Vec<u8>>,
}

/// The exclusive right to one piece of work (importing one object into one group, storing one
/// producer's batches), released on drop.
pub(crate) struct Claim {
    importing: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    key: String,
}

impl Claim {
    pub(crate) async fn take(state: &AppState, key: String) -> Claim {
        loop {
            {
                let mut importing = state
                    .importing
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if importing.insert(key.clone()) {
                    return Claim {
                        importing: std::sync::Arc::clone(&state.importing),
                        key,
                    };
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.importing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// The group a trail's digest files go to: `<group>-digest`.
pub fn digest_group(group: &GroupName) -> Result<GroupName, String> {
    GroupName::parse(&format!("{group}-digest")).map_err(|error| error.to_string())
}

/// The group an object's events go to: the one asked for, else `aws/<format>`.
fn target_group(request: &ImportRequest, format: Format) -> Result<GroupName, ApiError> {
    let text = request
        .group
        .clone()
        .unwrap_or_else(|| format.default_group());
    GroupName::parse(&text)
        .map_err(|error| ApiError::bad_request("invalid_group", error.to_string()))
}

/// Remembers a completely imported object version by name and entity tag.
fn remember_version(state: &AppState, request: &ImportRequest, group: &GroupName, sha256: &str) {
    if let Some(etag) = &request.etag
        && let Err(error) =
            state
                .meta
                .set_imported_object(group.as_str(), &request.object, etag, sha256)
    {
        // Only an optimization is lost: the next listing fetches the object and finds its
        // content stored.
        tracing::warn!(%error, object = %request.object, "imported object not remembered");
    }
}

/// Whether an object version is stored already, from its name alone (the format and group
/// must follow from the name or the request).
fn check_known(
    state: &AppState,
    request: &ImportRequest,
    allowed: &(dyn Fn(&GroupName) -> Result<(), ApiError> + Sync),
) -> Result<ImportOutcome, ApiError> {
    let mut outcome = ImportOutcome {
        object: request.object.clone(),
        sha256: String::new(),
        format: String::new(),
        group: String::new(),
        status: "not_imported".into(),
        events: 0,
        rejected: 0,
        resumed_after: 0,
        bytes: 0,
    };
    let Some(etag) = &request.etag else {
        return Ok(outcome);
    };
    let format = match request.format.as_deref() {
        None | Some("" | "auto") => detect(&request.object, b""),
        Some(name) => Format::parse(name),
    };
    let Some(format) = format else {
        return Ok(outcome);
    };
    let mut group = target_group(request, format)?;
    // Digest files are remembered in the digest group.
    let lower = request.object.to_ascii_lowercase();
    if format == Format::CloudTrail
        && (lower.contains("/cloudtrail-digest/") || lower.contains("_cloudtrail-digest_"))
    {
        group = digest_group(&group)
            .map_err(|reason| ApiError::bad_request("invalid_group", reason))?;
    }
    allowed(&group)?;
    outcome.format = format.name().to_string();
    outcome.group = group.to_string();
    let known = state
        .meta
        .imported_object(group.as_str(), &request.object, etag)
        .map_err(|error| {
            tracing::error!(%error, "import state not readable");
            ApiError::internal("the import state cannot be read")
        })?;
    if let Some(sha256) = known {
        outcome.sha256 = sha256;
        outcome.status = "already_imported".into();
    }
    Ok(outcome)
}

fn save(
    state: &AppState,
    group: &GroupName,
    sha256: &str,
    progress: &ImportState,
) -> Result<(), ApiError> {
    state
        .meta
        .set_import_state(group.as_str(), sha256, progress)
        .map_err(|error| {
            tracing::error!(%error, "import state not stored");
            ApiError::internal("the import position cannot be stored")
        })
}

async fn submit(state: &AppState, batches: Vec<GroupBatch>) -> Result<(), ApiError> {
    crate::ingest::commit(state, batches, "import")
        .await
        .map(drop)
}

/// A digest file is evidence, not events: it is stored whole in `<group>-digest`, once.
/// A digest file to store.
struct DigestObject<'a> {
    /// The digest group (`<group>-digest`).
    group: &'a GroupName,
    object: &'a str,
    sha256: String,
    plain: Vec<u8>,
    time: Option<Timestamp>,
    signature: Option<String>,
}

async fn store_digest(
    state: &AppState,
    digest: DigestObject<'_>,
    received: Timestamp,
    mut outcome: ImportOutcome,
) -> Result<ImportOutcome, ApiError> {
    let DigestObject {
        group: digests,
        object,
        sha256,
        plain,
        time: digest_time,
        signature,
    } = digest;
    outcome.status = "digest".into();
    outcome.group = digests.to_string();
    if state
        .meta
        .import_state(digests.as_str(), &sha256)
        .ok()
        .flatten()
        .is_some_and(|state| state.complete)
    {
        outcome.status = "already_imported".into();
        return Ok(outcome);
    }
    let record = Record {
        time: digest_time.unwrap_or(received),
        observed_time: received,
        kind: RecordKind::Json,
        source: object.to_string(),
        attrs: match signature {
            Some(signature) => serde_json::json!({ "signature": signature })
                .to_string()
                .into_bytes(),
            None => Vec::new(),
        },
        raw: plain,
    }
    .encode();
    submit(
        state,
        vec![GroupBatch {
            group: digests.clone(),
            records: vec![record],
        }],
    )
    .await?;
    outcome.events = 1;
    save(
        state,
        digests,
        &sha256,
        &ImportState {
            object: object.to_string(),
            format: "cloudtrail-digest".into(),
            items_done: 1,
            events: 1,
            rejected: 0,
            complete: true,
            pending: None,
        },
    )?;
    Ok(outcome)
}

/// The records of a run of items: events for the group, dead letters.
fn records(
    items: Vec<Item>,
    group: &GroupName,
    object: &str,
    received: Timestamp,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut events = Vec::with_capacity(items.len());
    let mut dead = Vec::new();
    for item in items {
        match item {
            Item::Event(event) => {
                let mut attrs: Map<String, Value> = event.fields;
                if !event.ocsf.is_empty() {
                    // Last, as `OCSF_ATTR` promises its readers.
                    attrs.shift_remove(seclog_index::schema::OCSF_ATTR);
                    attrs.insert(
                        seclog_index::schema::OCSF_ATTR.into(),
                        Value::Object(event.ocsf),
                    );
                }
                let attrs = if attrs.is_empty() {
                    Vec::new()
                } else {
                    serde_json::to_vec(&attrs).unwrap_or_default()
                };
                events.push(
                    Record {
                        time: event.time.unwrap_or(received),
                        observed_time: received,
                        kind: match event.kind {
                            RawKind::Json => RecordKind::Json,
                            RawKind::Text => RecordKind::Text,
                        },
                        source: object.to_string(),
                        attrs,
                        raw: event.raw,
                    }
                    .encode(),
                );
            }
            Item::Rejected(rejected) => dead.push(dead_letter(
                &rejected.raw,
                &rejected.reason,
                group,
                None,
                received,
                object,
            )),
        }
    }
    (events, dead)
}

struct Prepared {
    plain: Vec<u8>,
    sha256: String,
    format: Format,
    group: GroupName,
    options: DecodeOptions,
}

fn prepare(request: &ImportRequest, bytes: Vec<u8>, limit: usize) -> Result<Prepared, ApiError> {
    let plain = decompress_object(bytes, limit)?;
    let sha256 = hex::encode(Sha256::digest(&plain));
    let format = match request.format.as_deref() {
        None | Some("" | "auto") => detect(&request.object, &plain).ok_or_else(|| {
            ApiError::bad_request(
                "unknown_format",
                format!(
                    "cannot tell the format of {}; name it with format=",
                    request.object
                ),
            )
        })?,
        Some(name) => Format::parse(name).ok_or_else(|| {
            let known: Vec<&str> = Format::ALL.iter().map(|format| format.name()).collect();
            ApiError::bad_request(
                "unknown_format",
                format!("unknown format {name:?}; one of auto, {}", known.join(", ")),
            )
        })?,
    };
    let group = target_group(request, format)?;
    let vpc_fields = match request.vpc_format.as_deref() {
        Some(text) => Some(
            parse_vpc_format(text)
                .map_err(|reason| ApiError::bad_request("invalid_vpc_format", reason))?,
        ),
        None => None,
    };
    Ok(Prepared {
        plain,
        sha256,
        format,
        group,
        options: DecodeOptions { vpc_fields },
    })
}

/// The object's content: gzip (possibly several members) and zstd are recognized by their
/// magic bytes, anything else is taken as it is.
fn decompress_object(bytes: Vec<u8>, limit: usize) -> Result<Vec<u8>, ApiError> {
    let reader: Box<dyn Read + '_> = match bytes.get(..4) {
        Some([0x1f, 0x8b, ..]) => Box::new(flate2::read::MultiGzDecoder::new(bytes.as_slice())),
        Some([0x28, 0xb5, 0x2f, 0xfd]) => Box::new(
            zstd::stream::read::Decoder::new(bytes.as_slice())
                .map_err(|error| ApiError::bad_request("malformed_body", error.to_string()))?,
        ),
        _ if bytes.len() > limit => {
            return Err(ApiError::too_large(format!(
                "the object is larger than {limit} bytes"
            )));
        }
        _ => return Ok(bytes),
    };
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|error| {
            ApiError::bad_request(
                "malformed_body",
                format!("the compressed object is invalid: {error}"),
            )
        })?;
    if out.len() > limit {
        return Err(ApiError::too_large(format!(
            "the object decompresses to more than {limit} bytes"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use seclog_formats::service::ServiceEvent;
    use seclog_journal::RecordView;

    use super::*;

    fn stored_attrs(fields: Map<String, Value>) -> Vec<u8> {
        let mut ocsf = Map::new();
        ocsf.insert("class_uid".into(), 6003.into());
        let item = Item::Event(ServiceEvent {
            time: None,
            kind: RawKind::Text,
            raw: b"line".to_vec(),
            fields,
            ocsf,
        });
        let group = GroupName::parse("aws/vpcflow").expect("group");
        let (events, dead) = records(vec![item], &group, "object", Timestamp::now());
        assert!(dead.is_empty());
        let record = RecordView::decode(&events[0]).expect("record");
        record.attrs.to_vec()
    }

    /// The detector reads attributes that begin with the OCSF event as holding nothing else.
    #[test]
    fn the_ocsf_event_is_the_last_attribute() {
        assert!(stored_attrs(Map::new()).starts_with(b"{\"@ocsf\":{"));
        let mut fields = Map::new();
        fields.insert("srcaddr".into(), "10.0.0.1".into());
        fields.insert(
            seclog_index::schema::OCSF_ATTR.into(),
            "a field of that name".into(),
        );
        fields.insert("dstaddr".into(), "10.0.0.2".into());
        let attrs: Map<String, Value> =
            serde_json::from_slice(&stored_attrs(fields)).expect("json");
        let keys: Vec<&str> = attrs.keys().map(String::as_str).collect();
        assert_eq!(keys, ["srcaddr", "dstaddr", "@ocsf"]);
        assert_eq!(attrs["@ocsf"]["class_uid"], 6003);
    }
}
