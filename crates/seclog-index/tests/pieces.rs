//! Index pieces follow receipt days, survive reopening with their journal position, and go
//! away whole once retention has removed their records from the journal.

use seclog_index::{Catalog, Indexer};
use seclog_journal::{
    EpochParams, JournalConfig, JournalReader, JournalWriter, Layout, MasterKey, Record,
    RecordKind, Signer,
};
use seclog_model::{GroupName, Timestamp};

const DAY: i64 = 86_400 * 1_000_000_000;

fn record(n: u64, observed: Timestamp) -> Vec<u8> {
    Record {
        time: observed,
        observed_time: observed,
        kind: RecordKind::Json,
        source: "test".into(),
        attrs: Vec::new(),
        raw: format!("{{\"n\":{n},\"user\":\"u{}\"}}", n % 7).into_bytes(),
    }
    .encode()
}

#[test]
fn pieces_follow_receipt_days_and_expire_whole() {
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
    let group = GroupName::parse("app/days").expect("group");
    let (mut writer, _) =
        JournalWriter::open(&layout, master.clone(), JournalConfig::default()).expect("writer");
    // Three receipt days (the journal's clock is the caller's): 10 records each.
    let days: Vec<Timestamp> = (0..3)
        .map(|day| Timestamp::from_unix_nanos(now.unix_nanos() - (2 - day) * DAY))
        .collect();
    for (day, observed) in days.iter().enumerate() {
        let records: Vec<Vec<u8>> = (0..10)
            .map(|n| record(day as u64 * 10 + n, *observed))
            .collect();
        writer.append(&group, &records, *observed).expect("append");
        writer.commit().expect("commit");
    }
    writer.close(now).expect("close");

    let reader = JournalReader::new(&layout, master.clone());
    {
        let catalog = Catalog::open(&layout, master.clone()).expect("catalog");
        let mut indexer = Indexer::new(catalog.clone(), reader.clone());
        // Index in small batches: a batch may span a day boundary.
        while indexer.index_group(&group, 30, 7).expect("index") > 0 {}
        indexer.close().expect("close");
        let metas: Vec<_> = catalog
            .pieces(&group)
            .iter()
            .map(|piece| piece.meta())
            .collect();
        assert_eq!(metas.len(), 3, "{metas:?}");
        for (index, meta) in metas.iter().enumerate() {
            assert_eq!(meta.first_seq, index as u64 * 10);
            assert_eq!(meta.next_seq, index as u64 * 10 + 10);
            assert_eq!(meta.docs, 10);
        }
    }

    // Reopened: the position comes back from the pieces' commits; nothing is indexed twice.
    let catalog = Catalog::open(&layout, master.clone()).expect("catalog");
    assert_eq!(catalog.next_seq(&group), 30);
    let mut indexer = Indexer::new(catalog.clone(), reader);
    assert_eq!(indexer.index_group(&group, 30, 100).expect("index"), 0);

    // Retention removed the first 15 records: only the first piece is wholly gone.
    let dirs_before: Vec<_> = catalog
        .pieces(&group)
        .iter()
        .map(|piece| piece.dir.clone())
        .collect();
    assert_eq!(indexer.drop_expired(&group, 15).expect("drop"), 1);
    assert!(
        !dirs_before[0].exists(),
        "the expired piece's files are deleted"
    );
    assert!(dirs_before[1].exists() && dirs_before[2].exists());
    let firsts: Vec<u64> = catalog
        .pieces(&group)
        .iter()
        .map(|piece| piece.meta().first_seq)
        .collect();
    assert_eq!(firsts, vec![10, 20]);
    // The newest piece stays even when everything expired: it carries the position.
    assert_eq!(indexer.drop_expired(&group, 30).expect("drop"), 1);
    assert_eq!(catalog.next_seq(&group), 30);
    indexer.close().expect("close");
    let reopened = Catalog::open(&layout, master.clone()).expect("catalog");
    assert_eq!(reopened.pieces(&group).len(), 1);
    assert_eq!(reopened.next_seq(&group), 30);
    let meta_file = reopened.pieces(&group)[0].dir.join("meta.json");
    drop(reopened);

    // A damaged piece does not stop the index from opening: the group starts over from the
    // journal (its records are still there to be indexed again).
    let mut bytes = std::fs::read(&meta_file).expect("meta.json");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&meta_file, bytes).expect("write");
    let rebuilt = Catalog::open(&layout, master).expect("catalog opens despite the damage");
    assert!(rebuilt.pieces(&group).is_empty());
    assert_eq!(rebuilt.next_seq(&group), 0);
}
