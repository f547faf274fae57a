//! Sealing latency: acknowledged records are covered by a signed checkpoint within the seal
//! delay (500 ms, checked with 1.5 s of slack for a debug build on a busy machine), also under
//! continuous traffic, and idle servers sign heartbeat checkpoints.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Store, checkpoint_seq_and_size, get};

/// Longest accepted time from an acknowledgement to a visible checkpoint covering it.
const SEAL_BOUND: Duration = Duration::from_millis(1500);

/// Polls `seclog checkpoint` until `group` has at least `size` records in it; returns the time
/// it took and the checkpoint's seq, or panics after `SEAL_BOUND`.
fn wait_for_seal(
    store: &Store,
    server: &common::Server,
    group: &str,
    size: u64,
) -> (Duration, u64) {
    let started = Instant::now();
    loop {
        let text = store.checkpoint();
        if let Some(text) = &text {
            let (seq, sealed) = checkpoint_seq_and_size(text, group);
            if sealed.is_some_and(|sealed| sealed >= size) {
                return (started.elapsed(), seq);
            }
        }
        assert!(
            started.elapsed() < SEAL_BOUND,
            "no checkpoint covering {size} records of {group} within {SEAL_BOUND:?}; newest:\n{}\n--- server stderr ---\n{}",
            text.unwrap_or_default(),
            server.stderr_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// After each acknowledged ingest, a checkpoint covering the new records appears within the
/// seal bound, and the server's own seal-latency statistics stay within the configured delay.
#[test]
fn acknowledged_records_are_sealed_within_the_seal_delay() {
    let store = Store::new();
    let token = store.init();
    // A long heartbeat: only the seal delay can produce these checkpoints.
    let mut server = store.serve(&["--seal-delay-ms", "500", "--heartbeat-secs", "60"]);
    let genesis = store
        .checkpoint()
        .expect("init signs the genesis checkpoint");
    assert!(
        genesis.contains("seq 0\n")
            && genesis.contains("epoch 0\n")
            && !genesis.contains("\ngroup "),
        "only the empty genesis checkpoint before any ingest: {genesis}"
    );

    server.ingest_ok(&token, "app/seal", b"a\nb\nc\nd\ne\n");
    let (first_wait, first_seq) = wait_for_seal(&store, &server, "app/seal", 5);
    server.ingest_ok(&token, "app/seal", b"f\ng\nh\n");
    let (second_wait, second_seq) = wait_for_seal(&store, &server, "app/seal", 8);
    assert!(
        second_seq > first_seq,
        "a new checkpoint for the new records"
    );
    println!("sealed after {first_wait:?} and {second_wait:?}");

    // The server records a seal's latency just after its fsync, which can trail the file that
    // `seclog checkpoint` read by a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    let status = loop {
        let status = get(&server.url("/api/v1/status"), Some(&token)).json();
        if status["stats"]["seal_latency_samples"].as_u64() >= Some(2) || Instant::now() > deadline
        {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stats = &status["stats"];
    assert!(
        stats["seal_latency_samples"].as_u64() >= Some(2),
        "{status}"
    );
    let max_ms = stats["seal_latency_max_ms"].as_f64().expect("max latency");
    assert!(
        (0.0..=1000.0).contains(&max_ms),
        "acknowledgement-to-checkpoint latency {max_ms} ms exceeds the 1000 ms promise: {status}"
    );
    server.stop_ok();
}

/// Under continuous traffic (a request every 50 ms for 3 s) every acknowledgement is still
/// covered by a checkpoint within the seal bound: traffic does not postpone sealing.
#[test]
fn continuous_traffic_does_not_postpone_sealing() {
    let store = Store::new();
    let token = store.init();
    let mut server = store.serve(&["--seal-delay-ms", "500", "--heartbeat-secs", "60"]);
    let acks: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    let observer_token = token.clone();
    let sender = {
        let acks = Arc::clone(&acks);
        let url = server.url("/api/v1/ingest/app/stream");
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut n = 0;
            while started.elapsed() < Duration::from_secs(3) {
                let reply =
                    common::post(&url, Some(&token), &[], format!("event {n}\n").as_bytes());
                assert_eq!(reply.status, 200, "{}", reply.text());
                let last = reply.json()["last_seq"].as_u64().expect("last_seq");
                acks.lock().expect("acks").push((Instant::now(), last));
                n += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    // Observations of the newest durable checkpoint's size for the group (over HTTP, so the
    // observer does not spawn processes on a busy machine), with when they were made.
    let mut observed: Vec<(Instant, u64)> = Vec::new();
    let checkpoint_url = server.url("/api/v1/checkpoint");
    let deadline = Instant::now() + Duration::from_secs(3) + SEAL_BOUND + Duration::from_secs(1);
    while Instant::now() < deadline {
        let reply = get(&checkpoint_url, Some(&observer_token));
        if reply.status == 200
            && let (_, Some(size)) = checkpoint_seq_and_size(&reply.text(), "app/stream")
        {
            observed.push((Instant::now(), size));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    sender.join().expect("sender");
    let acks = acks.lock().expect("acks");
    assert!(acks.len() >= 20, "only {} requests in 3 s", acks.len());
    let mut worst = Duration::ZERO;
    for (acked_at, last_seq) in acks.iter() {
        let covered = observed
            .iter()
            .find(|(seen_at, size)| seen_at >= acked_at && *size > *last_seq)
            .unwrap_or_else(|| {
                panic!(
                    "record {last_seq} was never seen covered by a checkpoint\n--- server stderr ---\n{}",
                    server.stderr_tail()
                )
            });
        worst = worst.max(covered.0 - *acked_at);
    }
    println!(
        "{} acknowledgements, worst time to a visible checkpoint {worst:?}",
        acks.len()
    );
    assert!(worst <= SEAL_BOUND, "worst time to a checkpoint {worst:?}");
    server.stop_ok();
}

/// With `--heartbeat-secs 1` and no traffic at all, the checkpoint seq keeps increasing (a
/// heartbeat per second), the checkpoint time advances, and the chain verifies.
#[test]
fn idle_server_signs_heartbeat_checkpoints() {
    let store = Store::new();
    store.init();
    let mut server = store.serve(&["--heartbeat-secs", "1"]);
    let started = Instant::now();
    let first = loop {
        if let Some(text) = store.checkpoint() {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no heartbeat checkpoint within 5 s\n--- server stderr ---\n{}",
            server.stderr_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(3200));
    let later = store.checkpoint().expect("a later checkpoint");
    let (first_seq, _) = checkpoint_seq_and_size(&first, "none");
    let (later_seq, _) = checkpoint_seq_and_size(&later, "none");
    println!("heartbeat checkpoints: #{first_seq} then #{later_seq} 3.2 s later");
    assert!(
        later_seq >= first_seq + 2,
        "expected about three heartbeats in 3.2 s, got #{first_seq} -> #{later_seq}"
    );
    let time = |text: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix("time "))
            .expect("time line")
            .to_string()
    };
    assert!(time(&later) > time(&first), "{first}\n{later}");
    server.stop_ok();
    let verify = store.verify(&[]);
    assert!(verify.status.success(), "{}", common::describe(&verify));
}
