//! Master-key rotation of N data keys (default 100,000; `cargo bench -p seclog-journal --bench
//! rotation -- N`): seclog's way (every key re-wrapped, one logged batch, one file-system sync)
//! beside the straightforward one (each key written to a temporary file, fsynced and renamed).
//! The data keys are real wrapped keys in a real `keys/data/` tree; no segment is touched by
//! either.

use std::time::Instant;

use seclog_journal::{JournalWriter, Layout, MasterKey, SecretKey, rotation};
use seclog_model::GroupName;

fn main() {
    let count: u64 = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or_else(|| ".".into()))
        .expect("temporary directory");
    let layout = Layout::new(dir.path(), None);
    let old = MasterKey::create(layout.master_key()).expect("master key");
    let groups: Vec<GroupName> = (0..20)
        .map(|index| GroupName::parse(&format!("app/service-{index}")).expect("group"))
        .collect();
    let started = Instant::now();
    for seq in 0..count {
        let group = &groups[(seq % groups.len() as u64) as usize];
        let path = layout.data_key(group, seq);
        if seq < groups.len() as u64 {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("key directory");
        }
        let key = SecretKey::generate().expect("key");
        let wrapped = old
            .wrap(&key, &JournalWriter::key_context(group, seq))
            .expect("wrap");
        std::fs::write(&path, wrapped).expect("write data key");
    }
    println!(
        "created {count} wrapped data keys in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // seclog: list, unwrap, wrap; one logged batch; in-place writes; one syncfs.
    let new = MasterKey::generate().expect("new key");
    let started = Instant::now();
    let rewraps = rotation::data_key_rewraps(&layout, &old, &new).expect("rewraps");
    let log = layout.keys_dir().join("rotation.log");
    rotation::write_log(&log, &rewraps).expect("log");
    rotation::apply(layout.root(), &rewraps).expect("apply");
    std::fs::remove_file(&log).expect("remove log");
    let logged = started.elapsed().as_secs_f64();
    assert_eq!(rewraps.len() as u64, count);
    // Every key now opens with the new master key only.
    for seq in (0..count).step_by((count / 1000).max(1) as usize) {
        let group = &groups[(seq % groups.len() as u64) as usize];
        let wrapped = std::fs::read(layout.data_key(group, seq)).expect("read");
        let context = JournalWriter::key_context(group, seq);
        assert!(new.unwrap_key(&wrapped, &context).is_ok());
        assert!(old.unwrap_key(&wrapped, &context).is_err());
    }

    // The straightforward way, back to the old key: temporary file, fsync, rename, per key.
    let started = Instant::now();
    for seq in 0..count {
        let group = &groups[(seq % groups.len() as u64) as usize];
        let path = layout.data_key(group, seq);
        let context = JournalWriter::key_context(group, seq);
        let key = new
            .unwrap_key(&std::fs::read(&path).expect("read"), &context)
            .expect("unwrap");
        let temp = path.with_extension("tmp");
        {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&temp).expect("create");
            file.write_all(&old.wrap(&key, &context).expect("wrap"))
                .expect("write");
            file.sync_all().expect("fsync");
        }
        std::fs::rename(&temp, &path).expect("rename");
    }
    for group in &groups {
        std::fs::File::open(layout.data_keys_dir(group))
            .and_then(|dir| dir.sync_all())
            .expect("sync directory");
    }
    let per_key = started.elapsed().as_secs_f64();
    println!("| method | data keys | seconds | keys/s |");
    println!("|---|---|---|---|");
    println!(
        "| seclog: logged batch, one syncfs | {count} | {logged:.2} | {:.0} |",
        count as f64 / logged
    );
    println!(
        "| temp file + fsync + rename per key | {count} | {per_key:.2} | {:.0} |",
        count as f64 / per_key
    );
}
