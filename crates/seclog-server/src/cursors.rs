//! Durable consumer cursors for journal followers, kept in the metadata store.

use std::sync::Arc;

use seclog_journal::{CursorStore, JournalError};
use seclog_meta::MetaStore;
use seclog_model::GroupName;

/// [`CursorStore`] backed by the metadata store (one redb transaction per save).
#[derive(Debug, Clone)]
pub struct MetaCursors(pub Arc<MetaStore>);

impl CursorStore for MetaCursors {
    fn load_cursor(&self, consumer: &str, group: &GroupName) -> seclog_journal::Result<u64> {
        self.0
            .cursor(consumer, group.as_str())
            .map_err(|error| JournalError::Invalid(error.to_string()))
    }

    fn save_cursor(
        &self,
        consumer: &str,
        group: &GroupName,
        next_seq: u64,
    ) -> seclog_journal::Result<()> {
        self.0
            .set_cursor(consumer, group.as_str(), next_seq)
            .map_err(|error| JournalError::Invalid(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use seclog_journal::{
        EpochParams, Follower, JournalConfig, JournalReader, JournalWriter, Layout, MasterKey,
        Record, RecordKind, Signer,
    };
    use seclog_model::Timestamp;

    use super::*;

    fn record(n: u64) -> Vec<u8> {
        let now = Timestamp::now();
        Record {
            time: now,
            observed_time: now,
            kind: RecordKind::Text,
            source: "test".into(),
            attrs: vec![],
            raw: format!("event {n}").into_bytes(),
        }
        .encode()
    }

    /// A follower resumes from its committed cursor after a restart and never skips an event.
    #[test]
    fn follower_resumes_from_committed_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path(), None);
        let master = MasterKey::create(layout.master_key()).unwrap();
        let now = Timestamp::now();
        Signer::init(
            &layout,
            &master,
            EpochParams {
                start_unix: now.unix_seconds() - 10,
                epoch_secs: 3600,
                count: 10,
            },
        )
        .unwrap();
        let meta = Arc::new(MetaStore::open(&layout.meta_dir()).unwrap());
        let cursors: Arc<dyn CursorStore> = Arc::new(MetaCursors(Arc::clone(&meta)));
        let (mut writer, _) =
            JournalWriter::open(&layout, master.clone(), JournalConfig::default()).unwrap();
        let group = GroupName::parse("app/follow").unwrap();
        writer
            .append(&group, &(0..5).map(record).collect::<Vec<_>>(), now)
            .unwrap();
        writer.commit().unwrap();
        let reader = JournalReader::new(&layout, master);
        let mut follower = Follower::new(
            reader.clone(),
            writer.heads(),
            Arc::clone(&cursors),
            "indexer",
            group.clone(),
        )
        .unwrap();
        let first = follower.poll(3, Duration::from_millis(10)).unwrap();
        assert_eq!(
            first.iter().map(|event| event.seq).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        follower.commit().unwrap();
        let uncommitted = follower.poll(10, Duration::from_millis(10)).unwrap();
        assert_eq!(uncommitted.len(), 2);
        // "Crash" before committing: a new follower starts again at 3.
        let mut restarted =
            Follower::new(reader, writer.heads(), cursors, "indexer", group.clone()).unwrap();
        assert_eq!(restarted.position(), 3);
        writer.append(&group, &[record(5)], now).unwrap();
        assert_eq!(
            writer.heads().size(&group),
            5,
            "appended but uncommitted records stay invisible to followers"
        );
        writer.commit().unwrap();
        let rest = restarted.poll(10, Duration::from_millis(10)).unwrap();
        assert_eq!(
            rest.iter().map(|event| event.seq).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert_eq!(rest[2].record.raw, b"event 5");
    }
}
