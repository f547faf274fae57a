//! Continuous pull: `serve --watch s3://bucket/prefix` lists the prefix every interval and
//! imports the objects it has not stored yet (by name and ETag, then by content), as
//! `seclog import` would. Listing is cheap next to fetching: an object already stored is
//! never fetched again.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::AppState;
use crate::import::{ImportRequest, import_object};
use crate::s3::{S3Source, S3Url};

/// What to watch.
#[derive(Debug, Clone, Default)]
pub struct WatchSettings {
    /// `s3://bucket/prefix` URLs.
    pub urls: Vec<String>,
    /// Time between listings.
    pub interval: Duration,
    /// S3 endpoint (default: `AWS_ENDPOINT_URL`, else AWS).
    pub endpoint: Option<String>,
}

/// Starts one polling task per URL.
pub(crate) fn start(
    state: &AppState,
    settings: &WatchSettings,
) -> Result<Vec<JoinHandle<()>>, String> {
    let mut tasks = Vec::new();
    for text in &settings.urls {
        let url = S3Url::parse(text)?;
        let source = S3Source::new(&url, settings.endpoint.as_deref())?;
        let state = state.clone();
        let interval = settings.interval.max(Duration::from_millis(100));
        tracing::info!(url = %text, interval_ms = interval.as_millis() as u64, "watching bucket prefix");
        tasks.push(tokio::spawn(async move {
            loop {
                if let Err(error) = sync_once(&state, &source).await {
                    tracing::warn!(%error, "bucket watch pass failed; retrying next interval");
                }
                tokio::time::sleep(interval).await;
            }
        }));
    }
    Ok(tasks)
}

/// One pass: list, skip what is stored, import the rest. An object that fails is logged and
/// tried again next pass; the others go on.
async fn sync_once(state: &AppState, source: &S3Source) -> Result<(), String> {
    let objects = source.list().await?;
    let limit = state.limits.max_decompressed_bytes as u64;
    for object in objects {
        if object.size > limit {
            tracing::warn!(key = %object.key, size = object.size, limit, "object larger than the import limit; left alone");
            continue;
        }
        let mut request = ImportRequest {
            object: source.url().object_url(&object.key),
            format: None,
            group: None,
            vpc_format: None,
            etag: object.etag.clone(),
            check: true,
            signature: None,
        };
        match import_object(state, &request, Vec::new(), &|_| Ok(())).await {
            Ok(known) if known.status == "already_imported" => continue,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(object = %request.object, error = %error.message, "import state not readable");
                continue;
            }
        }
        let (bytes, signature) = match source.get_with_signature(&object).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, "object not read; trying again next pass");
                continue;
            }
        };
        request.check = false;
        request.signature = signature;
        match import_object(state, &request, bytes, &|_| Ok(())).await {
            Ok(outcome) => {
                state
                    .metrics
                    .listener("s3_watch")
                    .stored(outcome.events, outcome.rejected);
                if outcome.status != "already_imported" {
                    tracing::info!(
                        object = %outcome.object,
                        group = %outcome.group,
                        events = outcome.events,
                        rejected = outcome.rejected,
                        "object imported from the watched bucket"
                    );
                }
            }
            Err(error) if error.message.contains("cannot tell the format") => {
                tracing::debug!(object = %request.object, "not a known log format; left alone");
            }
            Err(error) => {
                tracing::warn!(object = %request.object, error = %error.message, "object not imported");
            }
        }
    }
    Ok(())
}
