//! Idempotent producers: which numbered batch of each sender is stored last, so that a batch
//! sent again (after a lost reply, a retry, a restart of either side) is stored once.

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use crate::{MetaError, MetaStore, PRODUCERS, Result, storage};

/// What seclog stored of one producer's numbered batches in one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerState {
    /// The highest batch number stored completely (none yet: `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_batch: Option<u64>,
    /// The batch being committed when this state was written: after a crash, what of it the
    /// journal holds is counted instead of guessed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingProducerBatch>,
    /// When the producer was last heard from (Unix seconds).
    #[serde(default)]
    pub seen_unix: i64,
}

/// A producer's batch being committed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingProducerBatch {
    /// Its number.
    pub batch: u64,
    /// The group's durable size before it.
    pub group_next: u64,
    /// The dead-letter group's durable size before it.
    pub dead_next: u64,
}

fn key(group: &str, producer: &str) -> String {
    format!("{group}\u{0}{producer}")
}

impl MetaStore {
    /// What is stored of a producer's batches in a group.
    pub fn producer_state(&self, group: &str, producer: &str) -> Result<Option<ProducerState>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(PRODUCERS).map_err(storage)?;
        let Some(value) = table.get(key(group, producer).as_str()).map_err(storage)? else {
            return Ok(None);
        };
        serde_json::from_str(value.value())
            .map(Some)
            .map_err(|error| MetaError::Invalid(format!("producer {producer}: {error}")))
    }

    /// Durably stores a producer's state in a group.
    pub fn set_producer_state(
        &self,
        group: &str,
        producer: &str,
        state: &ProducerState,
    ) -> Result<()> {
        let value =
            serde_json::to_string(state).map_err(|error| MetaError::Invalid(error.to_string()))?;
        let txn = self.db.begin_write().map_err(storage)?;
        txn.open_table(PRODUCERS)
            .map_err(storage)?
            .insert(key(group, producer).as_str(), value.as_str())
            .map_err(storage)?;
        txn.commit().map_err(storage)
    }

    /// Forgets producers not heard from since `before_unix` (their batches, if sent again,
    /// would be stored again). Returns how many were forgotten.
    pub fn forget_producers(&self, before_unix: i64) -> Result<usize> {
        let txn = self.db.begin_write().map_err(storage)?;
        let mut forgotten = 0;
        {
            let mut table = txn.open_table(PRODUCERS).map_err(storage)?;
            let mut stale = Vec::new();
            for entry in table.iter().map_err(storage)? {
                let (name, value) = entry.map_err(storage)?;
                let seen = serde_json::from_str::<ProducerState>(value.value())
                    .map_or(0, |state| state.seen_unix);
                if seen < before_unix {
                    stale.push(name.value().to_string());
                }
            }
            for name in stale {
                table.remove(name.as_str()).map_err(storage)?;
                forgotten += 1;
            }
        }
        txn.commit().map_err(storage)?;
        Ok(forgotten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_states_survive_reopen_and_stale_ones_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let state = ProducerState {
            last_batch: Some(7),
            pending: Some(PendingProducerBatch {
                batch: 8,
                group_next: 100,
                dead_next: 3,
            }),
            seen_unix: 1_000,
        };
        {
            let meta = MetaStore::open(dir.path()).unwrap();
            assert_eq!(meta.producer_state("app/x", "p1").unwrap(), None);
            meta.set_producer_state("app/x", "p1", &state).unwrap();
            let fresh = ProducerState {
                seen_unix: 5_000,
                ..ProducerState::default()
            };
            meta.set_producer_state("app/x", "p2", &fresh).unwrap();
        }
        let meta = MetaStore::open(dir.path()).unwrap();
        assert_eq!(meta.producer_state("app/x", "p1").unwrap(), Some(state));
        assert_eq!(meta.producer_state("app/y", "p1").unwrap(), None);
        assert_eq!(meta.forget_producers(2_000).unwrap(), 1);
        assert_eq!(meta.producer_state("app/x", "p1").unwrap(), None);
        assert!(meta.producer_state("app/x", "p2").unwrap().is_some());
    }
}
