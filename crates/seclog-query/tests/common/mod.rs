//! A data directory with events written through the journal and indexed, for query tests.
#![allow(dead_code)]

use std::time::Duration;

use seclog_index::{Catalog, Indexer};
use seclog_journal::{
    EpochParams, JournalConfig, JournalReader, JournalWriter, Layout, MasterKey, Record,
    RecordKind, Signer,
};
use seclog_model::{GroupName, Timestamp};
use seclog_query::{Engine, Limits, QueryAnswer, QueryRequest, Value};

pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) layout: Layout,
    pub(crate) master: MasterKey,
    pub(crate) engine: Engine,
    pub(crate) groups: Vec<GroupName>,
}

pub(crate) fn group(name: &str) -> GroupName {
    GroupName::parse(name).expect("group name")
}

/// Event time of a JSON event: `eventTime` (RFC 3339) when present, else `now`.
fn event_time(json: &serde_json::Value, now: Timestamp) -> Timestamp {
    json.get("eventTime")
        .and_then(|value| value.as_str())
        .and_then(|text| Timestamp::parse_rfc3339(text).ok())
        .unwrap_or(now)
}

impl Fixture {
    /// Writes `events` per group (JSON values, or strings for text lines) and indexes them.
    pub(crate) fn new(groups: Vec<(&str, Vec<serde_json::Value>)>) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let layout = Layout::new(dir.path(), None);
        let master = MasterKey::create(layout.master_key()).expect("master key");
        let now = Timestamp::now();
        Signer::init(
            &layout,
            &master,
            EpochParams {
                start_unix: now.unix_seconds() - 10,
                epoch_secs: 3600,
                count: 48,
            },
        )
        .expect("signer");
        let (mut writer, _) =
            JournalWriter::open(&layout, master.clone(), JournalConfig::default()).expect("writer");
        let mut names = Vec::new();
        for (name, events) in &groups {
            let name = group(name);
            let records: Vec<Vec<u8>> = events
                .iter()
                .map(|event| {
                    let (kind, raw, time) = match event {
                        serde_json::Value::String(text) => {
                            (RecordKind::Text, text.as_bytes().to_vec(), now)
                        }
                        other => (
                            RecordKind::Json,
                            serde_json::to_vec(other).expect("json"),
                            event_time(other, now),
                        ),
                    };
                    Record {
                        time,
                        observed_time: now,
                        kind,
                        source: "fixture".into(),
                        attrs: Vec::new(),
                        raw,
                    }
                    .encode()
                })
                .collect();
            for chunk in records.chunks(5000) {
                writer.append(&name, chunk, now).expect("append");
            }
            names.push(name);
        }
        writer.commit().expect("commit");
        let heads = writer.heads();
        writer.close(Timestamp::now()).expect("close");
        let catalog = Catalog::open(&layout, master.clone()).expect("catalog");
        let reader = JournalReader::new(&layout, master.clone());
        let mut indexer = Indexer::new(catalog.clone(), reader.clone());
        for name in &names {
            let durable = heads.size(name);
            while indexer.index_group(name, durable, 20_000).expect("index") > 0 {}
        }
        indexer.close().expect("close indexer");
        Fixture {
            engine: Engine::new(catalog, reader),
            dir,
            layout,
            master,
            groups: names,
        }
    }

    /// Runs `query` over every group, over all time.
    pub(crate) fn query(&self, query: &str) -> QueryAnswer {
        self.try_query(query)
            .unwrap_or_else(|error| panic!("query {query:?} failed: {error}"))
    }

    pub(crate) fn try_query(&self, query: &str) -> Result<QueryAnswer, seclog_query::QueryError> {
        self.engine.run(&QueryRequest {
            query: query.to_string(),
            start: Timestamp::from_unix_nanos(0),
            end: Timestamp::from_unix_nanos(i64::MAX),
            groups: self.groups.clone(),
            limits: Limits {
                timeout: Duration::from_secs(60),
                max_working_rows: 1_000_000,
            },
        })
    }
}

/// Rows as JSON for easy comparison.
pub(crate) fn rows_json(answer: &QueryAnswer) -> Vec<Vec<serde_json::Value>> {
    answer
        .rows
        .iter()
        .map(|row| row.iter().map(Value::to_json).collect())
        .collect()
}
