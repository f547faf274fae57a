//! Followers deliver committed events from a durable cursor: nothing before `commit`, each
//! event again after a restart without a cursor commit, only new events after one.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Store, app_x, app_y, at, default_epochs};
use seclog_journal::{CursorStore, Follower, JournalReader, Result, StoredEvent};
use seclog_model::GroupName;

/// Cursors kept in memory, as a consumer's database would keep them.
#[derive(Default)]
struct MemoryCursors(Mutex<HashMap<(String, GroupName), u64>>);

impl CursorStore for MemoryCursors {
    fn load_cursor(&self, consumer: &str, group: &GroupName) -> Result<u64> {
        let cursors = self.0.lock().expect("cursor lock");
        Ok(cursors
            .get(&(consumer.to_string(), group.clone()))
            .copied()
            .unwrap_or(0))
    }

    fn save_cursor(&self, consumer: &str, group: &GroupName, next_seq: u64) -> Result<()> {
        self.0
            .lock()
            .expect("cursor lock")
            .insert((consumer.to_string(), group.clone()), next_seq);
        Ok(())
    }
}

const WAIT: Duration = Duration::from_millis(50);

fn seqs(events: &[StoredEvent]) -> Vec<u64> {
    events.iter().map(|event| event.seq).collect()
}

/// Polls until nothing more comes.
fn drain(follower: &mut Follower) -> Vec<StoredEvent> {
    let mut all = Vec::new();
    loop {
        let batch = follower.poll(1000, WAIT).expect("poll");
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

/// Events become visible to followers only once committed; a follower restarted from its
/// saved cursor gets only newer events; one restarted without a cursor commit gets the
/// uncommitted events again; `max` bounds a poll; other consumers and groups are independent.
#[test]
fn follower_delivers_committed_events_from_its_cursor() {
    let mut store = Store::init(default_epochs());
    let (mut writer, _) = store.writer();
    let heads = writer.heads();
    let cursors: Arc<dyn CursorStore> = Arc::new(MemoryCursors::default());
    let reader = JournalReader::new(&store.layout, store.master.clone());
    let follow = |consumer: &str| {
        Follower::new(
            reader.clone(),
            Arc::clone(&heads),
            Arc::clone(&cursors),
            consumer,
            app_x(),
        )
        .expect("follower")
    };

    let mut follower = follow("indexer");
    assert_eq!(follower.position(), 0);
    store.append(&mut writer, &app_x(), 5, at(1));
    assert!(
        follower.poll(100, WAIT).expect("poll").is_empty(),
        "appended but not committed: invisible"
    );
    writer.commit().expect("commit");
    let first = follower.poll(100, WAIT).expect("poll");
    assert_eq!(seqs(&first), vec![0, 1, 2, 3, 4]);
    for event in &first {
        assert_eq!(event.group, app_x());
        assert_eq!(
            event.record.encode(),
            store.appended[&app_x()][event.seq as usize],
            "event {} differs",
            event.seq
        );
    }
    follower.commit().expect("save cursor");

    store.append(&mut writer, &app_x(), 3, at(2));
    store.append(&mut writer, &app_y(), 4, at(2));
    writer.commit().expect("commit");
    assert_eq!(
        seqs(&follower.poll(2, WAIT).expect("poll")),
        vec![5, 6],
        "max bounds a poll"
    );
    assert_eq!(seqs(&follower.poll(100, WAIT).expect("poll")), vec![7]);
    assert!(follower.poll(100, WAIT).expect("poll").is_empty());
    drop(follower); // crash before committing the cursor

    let mut restarted = follow("indexer");
    assert_eq!(restarted.position(), 5, "resumes from the saved cursor");
    assert_eq!(
        seqs(&drain(&mut restarted)),
        vec![5, 6, 7],
        "uncommitted events are delivered again"
    );
    restarted.commit().expect("save cursor");
    drop(restarted);

    store.append(&mut writer, &app_x(), 2, at(3));
    writer.commit().expect("commit");
    let mut resumed = follow("indexer");
    assert_eq!(resumed.position(), 8);
    assert_eq!(
        seqs(&drain(&mut resumed)),
        vec![8, 9],
        "only new events after a cursor commit"
    );

    let mut other = follow("alerts");
    assert_eq!(
        seqs(&drain(&mut other)),
        (0..10).collect::<Vec<_>>(),
        "another consumer starts at 0"
    );

    // A follower waiting in poll wakes up when a commit publishes new durable records.
    let waiter =
        std::thread::spawn(move || resumed.poll(100, Duration::from_secs(10)).expect("poll"));
    std::thread::sleep(Duration::from_millis(50));
    store.append(&mut writer, &app_x(), 1, at(4));
    writer.commit().expect("commit");
    assert_eq!(seqs(&waiter.join().expect("waiter")), vec![10]);
}

/// `JournalReader::read` returns at most `limit` events, from `from_seq`, before `end_seq`.
///
/// With `limit == 0` it returns none (pushing before checking the limit returned one, and
/// `Follower::poll(0, ..)` then delivered, and skipped past, one event).
#[test]
fn reader_respects_limits_and_ranges() {
    let mut store = Store::init(default_epochs());
    let (mut writer, _) = store.writer();
    store.append(&mut writer, &app_x(), 50, at(1));
    writer.commit().expect("commit");
    let reader = JournalReader::new(&store.layout, store.master.clone());
    assert_eq!(
        seqs(&reader.read(&app_x(), 10, 5, None).expect("read")),
        vec![10, 11, 12, 13, 14]
    );
    assert_eq!(
        seqs(&reader.read(&app_x(), 45, 100, None).expect("read")),
        vec![45, 46, 47, 48, 49]
    );
    assert_eq!(
        seqs(&reader.read(&app_x(), 20, 100, Some(23)).expect("read")),
        vec![20, 21, 22]
    );
    assert!(
        reader
            .read(&app_x(), 50, 100, None)
            .expect("read")
            .is_empty()
    );
    assert!(
        reader.read(&app_x(), 0, 0, None).expect("read").is_empty(),
        "limit 0 must return no event"
    );
}
