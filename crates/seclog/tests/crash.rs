//! Crash safety of `seclog serve` under SIGKILL, with real fsync: concurrent clients write while
//! the server is killed at random moments and restarted on the same data directory, round after
//! round. Every acknowledged event must be stored exactly once, at the sequence numbers its
//! acknowledgement gave, and the store must verify afterwards.
//!
//! `SECLOG_CRASH_ROUNDS` overrides the number of rounds (default 20); `SECLOG_CRASH_SEED`
//! replays a run (the seed is printed).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, Store, checkpoint_seq_and_size, describe, try_post};
use serde_json::Value;

const CLIENTS: usize = 4;
const GROUPS: [&str; 3] = ["crash/alpha", "crash/beta", "crash/gamma"];
/// Small segments, so that kills also land in segment rolls (footer, new key, new file).
const SEGMENT_MAX_BYTES: &str = "16384";

/// One acknowledged request.
struct Acked {
    group: &'static str,
    first_seq: u64,
    ids: Vec<String>,
}

/// What all clients saw, across rounds.
#[derive(Default)]
struct Ledger {
    /// Every line ever sent, by id.
    sent: HashMap<String, String>,
    acked: Vec<Acked>,
    /// Requests that failed while the server was supposed to be up.
    unexpected: Vec<String>,
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|text| {
        text.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {text:?}"))
    })
}

/// What one client thread needs.
struct ClientParams {
    base: String,
    token: Arc<String>,
    round: usize,
    client: usize,
    seed: u64,
    /// Set just before the SIGKILL: failures after it are expected.
    killed: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
}

/// One client: batches of 1..=50 events to random groups until the server goes away.
fn client(params: ClientParams) {
    let ClientParams {
        base,
        token,
        round,
        client,
        seed,
        killed,
        ledger,
    } = params;
    let mut rng = fastrand::Rng::with_seed(seed);
    let agent = common::agent(Duration::from_secs(20));
    let mut counter = 0usize;
    loop {
        let group = GROUPS[rng.usize(..GROUPS.len())];
        let size = rng.usize(1..=50);
        let mut ids = Vec::with_capacity(size);
        let mut body = String::new();
        {
            let mut ledger = ledger.lock().expect("ledger");
            for _ in 0..size {
                let id = format!("r{round}-c{client}-{counter}");
                counter += 1;
                let line = format!(
                    "{{\"id\":\"{id}\",\"eventTime\":{},\"pad\":\"{}\"}}",
                    1_700_000_000_000u64 + counter as u64,
                    "p".repeat(rng.usize(0..200))
                );
                body.push_str(&line);
                body.push('\n');
                ledger.sent.insert(id.clone(), line);
                ids.push(id);
            }
        }
        let url = format!("{base}/api/v1/ingest/{group}");
        match try_post(&agent, &url, Some(&token), &[], body.as_bytes()) {
            Ok(reply) if reply.status == 200 => {
                let json = reply.json();
                let first = json["first_seq"].as_u64().expect("first_seq");
                let last = json["last_seq"].as_u64().expect("last_seq");
                let mut ledger = ledger.lock().expect("ledger");
                if json["accepted"] != size
                    || json["rejected"] != 0
                    || last + 1 - first != size as u64
                {
                    ledger
                        .unexpected
                        .push(format!("reply {json} for a batch of {size}"));
                }
                ledger.acked.push(Acked {
                    group,
                    first_seq: first,
                    ids,
                });
            }
            Ok(reply) => {
                // A request cut by the kill can only fail to connect or lose its reply.
                let mut ledger = ledger.lock().expect("ledger");
                ledger
                    .unexpected
                    .push(format!("status {}: {}", reply.status, reply.text()));
                return;
            }
            Err(error) => {
                if !killed.load(Ordering::SeqCst) {
                    let mut ledger = ledger.lock().expect("ledger");
                    ledger
                        .unexpected
                        .push(format!("request failed before the kill: {error}"));
                }
                return;
            }
        }
    }
}

/// Counts lines mentioning `needle` in every server stderr file.
fn count_in_logs(store: &Store, needle: &str) -> usize {
    common::walk_files(&store.logs())
        .iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "stderr"))
        .map(|path| {
            std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .filter(|line| line.contains(needle))
                .count()
        })
        .sum()
}

/// SIGKILL at random moments under concurrent load, restart, repeat: acknowledged events are
/// all stored exactly once at their acknowledged sequence numbers, unacknowledged ones at most
/// once, nothing else appears, and `seclog verify` passes after a clean stop.
#[test]
fn acknowledged_events_survive_sigkill_exactly_once() {
    let started = Instant::now();
    let rounds = env_number("SECLOG_CRASH_ROUNDS").unwrap_or(20) as usize;
    let seed = env_number("SECLOG_CRASH_SEED").unwrap_or_else(|| fastrand::u64(..));
    println!("crash test: {rounds} rounds, SECLOG_CRASH_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let store = Store::new();
    // Five-second epochs: the run crosses several epoch boundaries, so kills also land around
    // checkpoint-log rolls.
    let token = Arc::new(store.init_with_epochs(&["--epoch-secs", "5", "--epochs", "1000"]));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let serve_args = ["--segment-max-bytes", SEGMENT_MAX_BYTES];

    let mut acked_per_round = Vec::new();
    for round in 0..rounds {
        let mut server = store.serve(&serve_args);
        let acked_before = ledger.lock().expect("ledger").acked.len();
        let killed = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..CLIENTS)
            .map(|index| {
                let base = server.base.clone();
                let token = Arc::clone(&token);
                let killed = Arc::clone(&killed);
                let ledger = Arc::clone(&ledger);
                let client_seed = rng.u64(..);
                std::thread::spawn(move || {
                    client(ClientParams {
                        base,
                        token,
                        round,
                        client: index,
                        seed: client_seed,
                        killed,
                        ledger,
                    })
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.u64(50..=400)));
        killed.store(true, Ordering::SeqCst);
        server.kill_hard();
        for thread in threads {
            thread.join().expect("client thread");
        }
        let ledger = ledger.lock().expect("ledger");
        assert!(
            ledger.unexpected.is_empty(),
            "round {round}: {:?}\n--- server stderr ---\n{}",
            ledger.unexpected,
            server.stderr_tail()
        );
        acked_per_round.push(ledger.acked.len() - acked_before);
    }

    // A last start recovers the last crash; SIGTERM then seals everything.
    let mut server = store.serve(&serve_args);
    server.stop_ok();

    let ledger = ledger.lock().expect("ledger");
    let mut stored: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for group in GROUPS {
        stored.insert(group, store.cat(group));
    }
    // Every stored event: contiguous seqs, an id that was sent, its exact content, at most once.
    let mut seen: HashMap<String, (&str, u64)> = HashMap::new();
    for (group, events) in &stored {
        for (index, event) in events.iter().enumerate() {
            assert_eq!(event["seq"], index, "{group}: sequence gap at {event}");
            let id = event["event"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{group}: event without id: {event}"));
            let line = ledger
                .sent
                .get(id)
                .unwrap_or_else(|| panic!("{group}: stored id {id} was never sent"));
            let sent: Value = serde_json::from_str(line).expect("sent line is JSON");
            assert_eq!(event["event"], sent, "{group}: content of {id}");
            let millis = sent["eventTime"].as_i64().expect("eventTime");
            let time = common::rfc3339_from_unix_nanos(millis * 1_000_000);
            assert_eq!(event["time"], time.as_str(), "{group}: event time of {id}");
            if let Some(previous) = seen.insert(id.to_string(), (*group, index as u64)) {
                panic!("{id} is stored twice: {previous:?} and ({group}, {index})");
            }
        }
    }
    // Every acknowledged event: present, in the acknowledged group at the acknowledged seq.
    let mut acked_events = 0usize;
    let mut missing = Vec::new();
    for acked in &ledger.acked {
        for (offset, id) in acked.ids.iter().enumerate() {
            acked_events += 1;
            let expected = (acked.group, acked.first_seq + offset as u64);
            match seen.get(id) {
                Some(found) if *found == expected => {}
                found => missing.push(format!(
                    "{id}: acknowledged at {expected:?}, found {found:?}"
                )),
            }
        }
    }
    let total_stored: usize = stored.values().map(Vec::len).sum();
    let recoveries = count_in_logs(&store, "recovery: truncated");
    let checkpoint_repairs = count_in_logs(&store, "interrupted checkpoint append");
    println!(
        "crash test summary: {rounds} rounds, {} acknowledged requests, {acked_events} acknowledged \
         events, {total_stored} stored ({} unacknowledged but stored), per-round acked requests \
         {acked_per_round:?}, torn segment tails truncated {recoveries}, torn checkpoint tails \
         truncated {checkpoint_repairs}, {:.1} s",
        ledger.acked.len(),
        total_stored - acked_events.min(total_stored),
        started.elapsed().as_secs_f64()
    );
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost or moved, first: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        acked_events > 0
            && acked_per_round.iter().filter(|&&count| count > 0).count() * 2 >= rounds,
        "the clients got too few acknowledgements to test anything: {acked_per_round:?}"
    );

    let verify = store.verify(&[]);
    assert!(
        verify.status.success(),
        "seclog verify after the crashes\n{}",
        describe(&verify)
    );
    let stdout = String::from_utf8_lossy(&verify.stdout);
    // Besides the events: the records of the reads above (`seclog cat` records each read).
    let access = store.groups().get("seclog/access").copied().unwrap_or(0) as usize;
    let all = total_stored + access;
    assert!(
        stdout.contains(&format!("{all} records")),
        "verify should cover all {all} records ({total_stored} events, {access} reads): {stdout}"
    );
}

/// After a clean stop: every event is readable, `seclog verify` passes and the newest
/// checkpoint covers `expected` records of each listed group.
fn assert_recovered(store: &Store, server: &Server, expected: &[(&str, u64)]) {
    let verify = store.verify(&[]);
    assert!(
        verify.status.success(),
        "verify after recovery\n{}\n--- server stderr ---\n{}",
        describe(&verify),
        server.stderr_tail()
    );
    let checkpoint = store.checkpoint().expect("a checkpoint after recovery");
    for (group, count) in expected {
        assert_eq!(store.cat(group).len() as u64, *count, "{group}");
        assert_eq!(
            checkpoint_seq_and_size(&checkpoint, group).1,
            Some(*count),
            "{group} in the newest checkpoint:\n{checkpoint}"
        );
    }
}

/// A crash while a segment file was being created (the file exists, its header is missing or
/// partly written) is repaired on start: nothing in such a file was ever acknowledged.
#[test]
fn crash_during_segment_creation_is_recovered() {
    let store = Store::new();
    let token = store.init();
    let mut server = store.serve(&[]);
    server.ingest_ok(&token, "app/a", b"{\"n\":1}\n{\"n\":2}\n");
    server.stop_ok();

    let groups = store.data().join("journal/groups");
    // A new group whose first segment was just created (empty), and one whose header was cut.
    let empty = groups.join("app%2Fb");
    std::fs::create_dir(&empty).expect("group directory");
    std::fs::write(empty.join("00000000000000000000.seg"), b"").expect("empty segment");
    let partial = groups.join("app%2Fc");
    std::fs::create_dir(&partial).expect("group directory");
    std::fs::write(
        partial.join("00000000000000000000.seg"),
        b"SLOGSEG\0\x01\x00\x05\x00app/c",
    )
    .expect("partial segment header");

    let mut server = store.serve(&[]);
    let stderr = server.stderr();
    assert!(
        stderr.contains("recovery"),
        "the repair should be logged:\n{stderr}"
    );
    for group in ["app/a", "app/b", "app/c"] {
        server.ingest_ok(&token, group, b"{\"n\":3}\n");
    }
    server.stop_ok();
    assert_recovered(&store, &server, &[("app/a", 3), ("app/b", 1), ("app/c", 1)]);
}

/// A crash while the first checkpoint log was being created (empty file) is repaired on start.
#[test]
fn crash_during_checkpoint_log_creation_is_recovered() {
    let store = Store::new();
    let token = store.init();
    let checkpoints = store.data().join("journal/checkpoints");
    std::fs::create_dir_all(&checkpoints).expect("checkpoint directory");
    std::fs::write(checkpoints.join("00000000000000000000.ckpt"), b"").expect("empty log");

    let mut server = store.serve(&[]);
    server.ingest_ok(&token, "app/a", b"{\"n\":1}\n");
    server.stop_ok();
    assert_recovered(&store, &server, &[("app/a", 1)]);
}

/// Length of a checkpoint log's header plus its first frame (the epoch key record):
/// `header[26] | tag u8 | len u32 | payload | crc u32`.
fn header_and_epoch_key_len(log: &[u8]) -> usize {
    const HEADER: usize = 8 + 2 + 8 + 4 + 4;
    let payload = u32::from_le_bytes(log[HEADER + 1..HEADER + 5].try_into().expect("4 bytes"));
    HEADER + 1 + 4 + payload as usize + 4
}

/// A crash after a new checkpoint log was started (header and epoch key record written and
/// synced, as at every epoch change) but before its first checkpoint was appended: on restart
/// the server must continue the checkpoint chain from the previous log and keep sealing.
#[test]
fn crash_between_checkpoint_log_roll_and_its_first_checkpoint_is_recovered() {
    let store = Store::new();
    // Two-second epochs: a new checkpoint log is started every two seconds.
    let token = store.init_with_epochs(&["--epoch-secs", "2", "--epochs", "1000"]);
    let fast = ["--heartbeat-secs", "1", "--seal-delay-ms", "100"];
    let mut server = store.serve(&fast);
    server.ingest_ok(&token, "app/a", b"{\"n\":1}\n");
    let checkpoints = store.data().join("journal/checkpoints");
    let deadline = Instant::now() + Duration::from_secs(15);
    while common::walk_files(&checkpoints).len() < 3 {
        assert!(Instant::now() < deadline, "no epoch change within 15 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop_ok();

    // The newest log, cut back to what `roll` writes and syncs before the first checkpoint.
    let logs = common::walk_files(&checkpoints);
    let newest = logs.last().expect("checkpoint logs");
    let previous_text = {
        let bytes = std::fs::read(newest).expect("newest log");
        std::fs::write(newest, &bytes[..header_and_epoch_key_len(&bytes)]).expect("cut log");
        // What the previous log's last checkpoint is now the newest one.
        store.checkpoint()
    };
    println!(
        "cut {} back to its epoch key record; newest checkpoint now: {previous_text:?}",
        newest.display()
    );

    let mut server = store.serve(&fast);
    server.ingest_ok(&token, "app/a", b"{\"n\":2}\n");
    std::thread::sleep(Duration::from_millis(1500));
    let stderr = server.stderr();
    server.stop_ok();
    assert!(
        !stderr.contains("ERROR"),
        "the restarted server failed to seal:\n{}",
        common::tail(&stderr, 10)
    );
    assert_recovered(&store, &server, &[("app/a", 2)]);
}
