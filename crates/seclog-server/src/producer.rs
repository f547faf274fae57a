//! Idempotent producers on `POST /api/v1/ingest/{group}`: a batch sent with `Seclog-Producer`
//! and `Seclog-Batch` is stored once however often it arrives (a retry after a lost reply, a
//! spool replayed after the sender restarted, either side crashing mid-batch).
//!
//! Per group, token and producer the meta store keeps the highest batch number stored (a
//! producer's name is namespaced by the token that sends it: another token covering the group
//! cannot claim its numbers and so silence it). A batch at or
//! below it is answered as a duplicate and not stored. Before a batch is committed, the groups'
//! durable sizes are saved with its number; when that same batch comes again after a crash, the
//! records of it that the journal holds (each carries the producer and batch in its attributes)
//! are counted and only the rest is stored.

use seclog_meta::{PendingProducerBatch, ProducerState};
use seclog_model::GroupName;

use crate::AppState;
use crate::committer::GroupBatch;
use crate::error::ApiError;
use crate::import::{Claim, count_matching};
use crate::ingest::{BatchId, commit};

/// What storing a producer's batch did.
pub(crate) struct StoredOnce {
    /// First and last sequence numbers given to its events in the group by this call.
    pub(crate) range: Option<(u64, u64)>,
    /// The batch was stored before (completely, or now completed).
    pub(crate) duplicate: bool,
    /// The producer's highest stored batch number after this call: a duplicate below it tells
    /// the producer its numbers went backwards (a spool restored from a copy).
    pub(crate) last_batch: u64,
}

/// Stores `batches` (the group's events first, then its dead letters) unless the producer's
/// batch is stored already.
pub(crate) async fn store_once(
    state: &AppState,
    group: &GroupName,
    token_id: &str,
    id: &BatchId,
    mut batches: Vec<GroupBatch>,
) -> Result<StoredOnce, ApiError> {
    let producer = format!("{token_id}/{}", id.producer);
    // One batch of a producer at a time: two copies of one batch arriving together must not
    // both find it unstored.
    let _claim = Claim::take(state, format!("producer\u{0}{group}\u{0}{producer}")).await;
    let meta_error = |error: seclog_meta::MetaError| {
        tracing::error!(%error, "producer state not readable or not stored");
        ApiError::internal("the producer's batch state cannot be kept")
    };
    let mut progress = state
        .meta
        .producer_state(group.as_str(), &producer)
        .map_err(meta_error)?
        .unwrap_or_default();
    progress.seen_unix = seclog_model::Timestamp::now().unix_seconds();
    if let Some(last) = progress.last_batch.filter(|&last| id.batch <= last) {
        return Ok(StoredOnce {
            range: None,
            duplicate: true,
            last_batch: last,
        });
    }
    let dead_letters = GroupName::dead_letter();
    let mut partly_stored = false;
    if let Some(pending) = progress.pending.take()
        && pending.batch == id.batch
    {
        // The same batch was being committed when seclog stopped: store only what of it the
        // journal does not hold (a commit is stored whole or as a prefix).
        for batch in &mut batches {
            let from = if batch.group == dead_letters {
                pending.dead_next
            } else {
                pending.group_next
            };
            let stamp = id.clone();
            let stored = count_matching(state, &batch.group, from, move |record| {
                stamp.stamped(record)
            })
            .await?;
            let stored = usize::try_from(stored)
                .unwrap_or(usize::MAX)
                .min(batch.records.len());
            partly_stored |= stored > 0;
            batch.records.drain(..stored);
        }
    }
    batches.retain(|batch| !batch.records.is_empty());
    let save = |progress: &ProducerState| {
        state
            .meta
            .set_producer_state(group.as_str(), &producer, progress)
            .map_err(meta_error)
    };
    let mut range = None;
    if !batches.is_empty() {
        if let Some((heads, _)) = &state.journal {
            progress.pending = Some(PendingProducerBatch {
                batch: id.batch,
                group_next: heads.size(group),
                dead_next: heads.size(&dead_letters),
            });
            save(&progress)?;
        }
        let group_first = batches.first().is_some_and(|batch| &batch.group == group);
        let assigned = commit(state, batches, "producer batch").await?;
        if group_first {
            range = assigned.first().copied().flatten();
        }
    }
    let duplicate = partly_stored && range.is_none();
    progress.pending = None;
    progress.last_batch = Some(id.batch);
    save(&progress)?;
    Ok(StoredOnce {
        range,
        duplicate,
        last_batch: id.batch,
    })
}
