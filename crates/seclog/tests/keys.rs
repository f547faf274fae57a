//! The master key on the real binary: rotation re-wraps every data key, index file key, the
//! signing state and the detector state without rewriting data (the old key opens nothing
//! afterwards, the index is not rebuilt, `verify` passes); a rotation killed mid-way leaves the
//! store refused until it is run again, then whole; and the key may come from an environment
//! variable or from a command instead of a file, never showing up in the output.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Stdio;
use std::time::Duration;

use common::{Store, walk_files};
use serde_json::{Value, json};

/// Events of every group, from `seclog cat` (with `envs` for the key provider).
fn all_events(store: &Store, envs: &[(&str, &str)]) -> BTreeMap<String, Vec<Value>> {
    let mut events = BTreeMap::new();
    for group in store.groups().keys() {
        let output = common::seclog()
            .args(["cat", "--data", &store.data_arg(), "--group", group])
            .envs(envs.iter().copied())
            .output()
            .expect("seclog cat runs");
        assert!(output.status.success(), "{}", common::describe(&output));
        let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).expect("NDJSON"))
            .collect();
        events.insert(group.clone(), lines);
    }
    events
}

/// Every group but `seclog/access` (which records the reads) holds what it held before.
fn assert_same_events(mut before: BTreeMap<String, Vec<Value>>, store: &Store) {
    let mut after = all_events(store, &[]);
    after.remove("seclog/access");
    before.remove("seclog/access");
    assert_eq!(after, before);
}

/// Events written in many small segments (many data keys), indexed, with detector state.
fn populated_store() -> (Store, String) {
    let store = Store::new();
    let admin = store.init();
    let mut server = store.serve(&["--segment-max-bytes", "256"]);
    for index in 0..40 {
        let group = format!("app/service-{}", index % 4);
        server.ingest_ok(
            &admin,
            &group,
            json!({ "message": format!("payment {index}"), "user": "alice" })
                .to_string()
                .as_bytes(),
        );
    }
    wait_searchable(&server, &admin, 40);
    server.stop_ok();
    (store, admin)
}

fn search_count(server: &common::Server, admin: &str) -> u64 {
    let reply = common::post(
        &server.url("/api/v1/query"),
        Some(admin),
        &[],
        json!({ "query": "filter message like /payment/ | stats count(*) as n", "start": "2020-01-01T00:00:00Z" })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["rows"][0]["n"].as_u64().unwrap_or(0)
}

fn wait_searchable(server: &common::Server, admin: &str, expected: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while search_count(server, admin) != expected {
        assert!(std::time::Instant::now() < deadline, "not searchable");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn data_key_files(store: &Store) -> Vec<std::path::PathBuf> {
    walk_files(&store.data().join("keys/data"))
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "dek"))
        .collect()
}

#[test]
fn rotation_rewraps_every_key_and_nothing_else() {
    let (store, admin) = populated_store();
    let before = all_events(&store, &[]);
    let deks = data_key_files(&store);
    assert!(deks.len() >= 10, "{} data keys", deks.len());
    let segments: BTreeMap<_, _> = walk_files(&store.data().join("journal"))
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("read");
            (path, bytes)
        })
        .collect();
    let old_key = store.logs().join("old.key");
    std::fs::copy(store.data().join("keys/master.key"), &old_key).expect("keep the old key");

    let output = common::run(["keys", "rotate", "--data", &store.data_arg()]);
    assert!(output.status.success(), "{}", common::describe(&output));
    let said = String::from_utf8_lossy(&output.stdout).to_string();
    let rewrapped: usize = said
        .split_once("rotated the master key: ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    // The rotation's own access record may have started a segment of seclog/access.
    assert!(rewrapped >= deks.len(), "{said}");
    assert_eq!(rewrapped, data_key_files(&store).len(), "{said}");
    assert!(said.contains("index files (0 left"), "{said}");
    let mode = std::fs::metadata(store.data().join("keys/master.key"))
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_ne!(
        std::fs::read(store.data().join("keys/master.key")).expect("key"),
        std::fs::read(&old_key).expect("key")
    );
    assert!(!store.data().join("keys/rotation.log").exists());
    assert!(!store.data().join("keys/master.key.next").exists());

    // Segments are the same bytes; checkpoint logs only grew (the rotation's own access record
    // is appended to seclog/access and sealed).
    for (path, bytes) in &segments {
        let now = std::fs::read(path).expect("read");
        let text = path.to_string_lossy();
        if text.contains("seclog%2Faccess") || text.contains("/checkpoints/") {
            assert!(now.starts_with(bytes), "{} rewritten", path.display());
        } else {
            assert!(now == *bytes, "{} rewritten", path.display());
        }
    }
    // The new key reads everything; the old key opens nothing.
    let mut after = all_events(&store, &[]);
    let access_after = after.remove("seclog/access");
    let mut before = before;
    before.remove("seclog/access");
    assert_eq!(after, before);
    assert!(access_after.is_some_and(|records| {
        records
            .iter()
            .any(|r| r["event"]["action"] == "master_key_rotate")
    }));
    let with_old = common::seclog()
        .args([
            "cat",
            "--data",
            &store.data_arg(),
            "--group",
            "app/service-0",
        ])
        .arg("--master-key-file")
        .arg(&old_key)
        .output()
        .expect("runs");
    assert!(
        !with_old.status.success(),
        "the old key still opens data: {}",
        common::describe(&with_old)
    );
    store.verify_ok();

    // The server starts on the new key: the index is used as it is, signing goes on.
    let mut server = store.serve(&[]);
    assert_eq!(search_count(&server, &admin), 40);
    server.ingest_ok(
        &admin,
        "app/service-0",
        br#"{"message":"payment after rotation"}"#,
    );
    wait_searchable(&server, &admin, 41);
    server.stop_ok();
    let stderr = server.stderr();
    assert!(!stderr.contains("unreadable index piece"), "{stderr}");
    assert!(!stderr.contains("opening the detector state"), "{stderr}");
    store.verify_ok();
}

#[test]
fn a_rotation_killed_midway_is_refused_until_finished() {
    let (store, admin) = populated_store();
    let before = all_events(&store, &[]);
    let new_key = store.logs().join("new.key");
    let output = common::run(["keys", "generate"]);
    assert!(output.status.success());
    std::fs::write(&new_key, &output.stdout).expect("write key");
    std::fs::set_permissions(&new_key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    // Kill rotations at growing delays until one is caught mid-way (or they all finish).
    let mut interrupted = false;
    for delay_ms in [5u64, 10, 20, 40] {
        let mut child = common::seclog()
            .args([
                "keys",
                "rotate",
                "--data",
                &store.data_arg(),
                "--new-key-file",
            ])
            .arg(&new_key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rotate starts");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let status = child.wait().expect("wait");
        if !status.success() {
            interrupted = store.data().join("keys/rotation.log").exists()
                || store.data().join("keys/master.key.next").exists();
            if interrupted {
                break;
            }
        } else {
            break;
        }
    }
    if interrupted {
        let refused = common::run([
            "cat",
            "--data",
            &store.data_arg(),
            "--group",
            "app/service-0",
        ]);
        assert!(!refused.status.success());
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("rotation"),
            "{}",
            common::describe(&refused)
        );
    }
    // Run again (with the same new key): whatever the kill left, the store is whole.
    let output = common::seclog()
        .args([
            "keys",
            "rotate",
            "--data",
            &store.data_arg(),
            "--new-key-file",
        ])
        .arg(&new_key)
        .output()
        .expect("runs");
    // A rotation that had finished before the kill answers that the key is already current.
    let text = common::describe(&output);
    assert!(
        output.status.success() || text.contains("is the current one"),
        "{text}"
    );
    assert_same_events(before, &store);
    assert_eq!(
        std::fs::read(store.data().join("keys/master.key")).expect("key"),
        std::fs::read(&new_key).expect("key")
    );
    store.verify_ok();
    let server = store.serve(&[]);
    assert_eq!(search_count(&server, &admin), 40);
}

/// The state a crash leaves between the rewrap log and the end of its writes: the log
/// written, half of it applied, the new key beside the old. Commands refuse the store; running
/// the rotation again finishes it.
#[test]
fn a_rotation_stopped_after_its_log_finishes_when_run_again() {
    use seclog_journal::{Layout, MasterKey, rotation};
    let (store, admin) = populated_store();
    let before = all_events(&store, &[]);
    let layout = Layout::new(store.data(), None);
    let old = MasterKey::load(layout.master_key()).expect("old key");
    let new = MasterKey::generate().expect("new key");
    new.save(&layout.keys_dir().join("master.key.next"), false)
        .expect("next key");
    let mut entries = rotation::data_key_rewraps(&layout, &old, &new).expect("rewraps");
    entries.push(rotation::signing_state_rewrap(&layout, &old, &new).expect("signing state"));
    assert!(entries.len() > 4);
    rotation::write_log(&layout.keys_dir().join("rotation.log"), &entries).expect("log");
    rotation::apply(layout.root(), &entries[..entries.len() / 2]).expect("half applied");

    let refused = common::run([
        "cat",
        "--data",
        &store.data_arg(),
        "--group",
        "app/service-0",
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("rotation of"),
        "{}",
        common::describe(&refused)
    );
    let output = common::run(["keys", "rotate", "--data", &store.data_arg()]);
    assert!(output.status.success(), "{}", common::describe(&output));
    assert_same_events(before, &store);
    assert_eq!(
        MasterKey::load(layout.master_key())
            .expect("key")
            .fingerprint(),
        new.fingerprint()
    );
    store.verify_ok();
    let server = store.serve(&[]);
    assert_eq!(search_count(&server, &admin), 40);
}

#[test]
fn the_master_key_from_the_environment_or_a_command() {
    let (store, _admin) = populated_store();
    let key_file = store.data().join("keys/master.key");
    let key_text = std::fs::read_to_string(&key_file).expect("key");
    let hex = key_text.split_whitespace().last().expect("hex").to_string();
    let kept = store.logs().join("vault.key");
    std::fs::write(&kept, &key_text).expect("keep");
    std::fs::remove_file(&key_file).expect("remove the key from the data directory");
    let before = {
        let output = common::run([
            "cat",
            "--data",
            &store.data_arg(),
            "--group",
            "app/service-1",
        ]);
        assert!(!output.status.success(), "read without any key");
        let error = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(!error.contains(&hex));
        error
    };
    assert!(before.contains("master key"), "{before}");
    let command = format!("cat {}", kept.display());
    for envs in [
        vec![("SECLOG_MASTER_KEY", hex.as_str())],
        vec![("SECLOG_MASTER_KEY_COMMAND", command.as_str())],
    ] {
        let events = all_events(&store, &envs);
        assert_eq!(events["app/service-1"].len(), 10, "{envs:?}");
        // The server too, and nothing it writes shows the key.
        let mut server = common::Server::start_with_env(&store.data(), &store.logs(), &[], &envs);
        server.stop_ok();
        let output = format!("{}{}", server.stdout(), server.stderr());
        assert!(!output.contains(&hex), "the key is in the server's output");
    }
    // A command that fails, or prints something else, is refused without echoing it.
    for command in ["exit 3", "echo not-a-key-abc123"] {
        let output = common::seclog()
            .args([
                "cat",
                "--data",
                &store.data_arg(),
                "--group",
                "app/service-1",
            ])
            .env("SECLOG_MASTER_KEY_COMMAND", command)
            .output()
            .expect("runs");
        assert!(!output.status.success());
        assert!(
            !String::from_utf8_lossy(&output.stderr).contains("abc123"),
            "{}",
            common::describe(&output)
        );
    }
    let nothing_on_disk = walk_files(&store.data()).iter().all(|path| {
        !std::fs::read(path)
            .unwrap_or_default()
            .windows(hex.len())
            .any(|w| w == hex.as_bytes())
    });
    assert!(
        nothing_on_disk,
        "the key was written into the data directory"
    );
}
