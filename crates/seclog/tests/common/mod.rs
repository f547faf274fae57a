//! Helpers for the end-to-end tests: the real `seclog` binary, run in temporary directories.
//!
//! - [`Store`]: a temporary directory holding a data directory (`data/`) and the server logs
//!   (`logs/`, outside the data directory so that scanning one never sees the other).
//! - [`Server`]: `seclog serve` on a free 127.0.0.1 port, with stdout/stderr in files.
//! - [`run`] / [`run_ok`]: one CLI command.
//! - [`Reply`], [`get`], [`post`]: plain-HTTP requests that never turn a status into an error.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code, unreachable_pub)]

mod http;
pub mod receiver;
mod server;

// Not every test binary uses every re-export.
#[allow(unused_imports)]
pub use http::{Reply, agent, get, post, try_get, try_post, try_send};
#[allow(unused_imports)]
pub use server::{Server, free_port, send_sigterm};

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_seclog");

/// Small epochs keep key derivation cheap: one minute each, 1000 of them.
pub const FAST_EPOCHS: [&str; 4] = ["--epoch-secs", "60", "--epochs", "1000"];

/// A `seclog` command with an environment that cannot change its behaviour.
pub fn seclog() -> Command {
    let mut command = Command::new(BIN);
    command
        .env_remove("RUST_LOG")
        .env_remove("SECLOG_MASTER_KEY_FILE")
        .stdin(Stdio::null());
    command
}

/// Runs `seclog args...` to completion.
pub fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    seclog()
        .args(args)
        .output()
        .expect("the seclog binary runs")
}

/// Runs `seclog args...` with `SECLOG_TOKEN` set to `token`.
pub fn run_with_token(token: &str, args: &[&str]) -> Output {
    seclog()
        .args(args)
        .env("SECLOG_TOKEN", token)
        .output()
        .expect("the seclog binary runs")
}

/// Runs `seclog args...` in `dir` to completion.
pub fn run_in<I, S>(dir: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    seclog()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the seclog binary runs")
}

/// Runs `seclog args...`, asserts it exits 0 and returns its stdout.
pub fn run_ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<S> = args.into_iter().collect();
    let shown: Vec<String> = args
        .iter()
        .map(|arg| arg.as_ref().to_string_lossy().into_owned())
        .collect();
    let output = run(&args);
    assert!(
        output.status.success(),
        "`seclog {}` failed\n{}",
        shown.join(" "),
        describe(&output)
    );
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

/// Fails the test unless Python can run `import` (a client `scripts/test` installs as `what`).
pub fn require_python(import: &str, what: &str) {
    let status = Command::new("python3")
        .args(["-c", import])
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "{what} is not installed: run scripts/test (it installs it)"
    );
}

/// Exit status, stdout and stderr, for failure messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A data directory (`data/`, created by `init` or `serve`) and a log directory (`logs/`).
pub struct Store {
    root: tempfile::TempDir,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// A fresh, empty store.
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("seclog-e2e-")
            .tempdir()
            .expect("temporary directory");
        fs::create_dir(root.path().join("logs")).expect("log directory");
        Store { root }
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// The data directory as a string argument.
    pub fn data_arg(&self) -> String {
        self.data().to_str().expect("UTF-8 temp path").to_string()
    }

    /// Where server stdout/stderr files go.
    pub fn logs(&self) -> PathBuf {
        self.root.path().join("logs")
    }

    /// `seclog init` with small epochs; returns the admin token.
    pub fn init(&self) -> String {
        self.init_with_epochs(&FAST_EPOCHS)
    }

    /// `seclog init` with the given `--epoch-secs`/`--epochs` flags; returns the admin token.
    pub fn init_with_epochs(&self, epoch_args: &[&str]) -> String {
        let data = self.data_arg();
        let mut args = vec!["init", "--data", data.as_str()];
        args.extend(epoch_args);
        let stdout = run_ok(&args);
        parse_admin_token(&stdout)
    }

    /// `seclog token create` (only while no server runs: the metadata store is locked).
    pub fn create_token(&self, role: &str, groups: &str) -> String {
        let data = self.data_arg();
        let stdout = run_ok([
            "token", "create", "--data", &data, "--role", role, "--groups", groups,
        ]);
        let token = stdout.trim().to_string();
        assert!(
            token.len() > 20 && !token.contains(char::is_whitespace),
            "`token create` printed {stdout:?}"
        );
        token
    }

    /// Starts `seclog serve` on this store with `extra` flags (small epochs are always passed).
    pub fn serve(&self, extra: &[&str]) -> Server {
        Server::start(&self.data(), &self.logs(), extra)
    }

    /// Every event of `group`, from `seclog cat`.
    pub fn cat(&self, group: &str) -> Vec<Value> {
        let data = self.data_arg();
        let stdout = run_ok(["cat", "--data", &data, "--group", group]);
        stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("cat printed a non-JSON line {line:?}: {error}"))
            })
            .collect()
    }

    /// `seclog groups` as a map from group name to count.
    pub fn groups(&self) -> BTreeMap<String, u64> {
        let data = self.data_arg();
        let stdout = run_ok(["groups", "--data", &data]);
        stdout
            .lines()
            .map(|line| {
                let (name, count) = line
                    .rsplit_once(' ')
                    .unwrap_or_else(|| panic!("`groups` line {line:?} is not `<group> <count>`"));
                let count = count
                    .parse()
                    .unwrap_or_else(|_| panic!("`groups` line {line:?} has no count"));
                (name.to_string(), count)
            })
            .collect()
    }

    /// `seclog verify` on this store.
    pub fn verify(&self, extra: &[&str]) -> Output {
        let data = self.data_arg();
        let mut args = vec!["verify", "--data", data.as_str()];
        args.extend(extra);
        run(&args)
    }

    /// `seclog verify` on this store, asserting it passes; returns its output.
    pub fn verify_ok(&self) -> Output {
        let output = self.verify(&[]);
        assert!(output.status.success(), "{}", describe(&output));
        output
    }

    /// `seclog checkpoint` output (the newest signed checkpoint), or `None` when it fails.
    pub fn checkpoint(&self) -> Option<String> {
        let data = self.data_arg();
        let output = run(["checkpoint", "--data", &data]);
        output
            .status
            .success()
            .then(|| String::from_utf8(output.stdout).expect("checkpoint text is UTF-8"))
    }
}

/// The token from `admin token: <token>` (the only stdout line of `init`).
pub fn parse_admin_token(stdout: &str) -> String {
    let lines: Vec<&str> = stdout.lines().collect();
    let [line] = lines.as_slice() else {
        panic!("expected one stdout line `admin token: <token>`, got {stdout:?}");
    };
    line.strip_prefix("admin token: ")
        .unwrap_or_else(|| panic!("expected `admin token: <token>`, got {line:?}"))
        .to_string()
}

/// The `seq` and size of `group` in a checkpoint text (`group <name> <size> <root>` lines).
pub fn checkpoint_seq_and_size(text: &str, group: &str) -> (u64, Option<u64>) {
    let mut seq = None;
    let mut size = None;
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("seq ") {
            seq = Some(value.parse().expect("numeric checkpoint seq"));
        }
        let fields: Vec<&str> = line.split(' ').collect();
        if let ["group", name, count, _root, _retention] = fields.as_slice()
            && *name == group
        {
            size = Some(count.parse().expect("numeric group size"));
        }
    }
    (seq.expect("checkpoint has a seq line"), size)
}

/// A stored record, decoded from a proof bundle's `record` field.
///
/// ```text
/// version u8 | kind u8 | time i64 | observed_time i64 | source_len u16 | source
/// | attrs_len u32 | attrs | raw (to the end)
/// ```
#[derive(Debug)]
pub struct BundleRecord {
    /// 0 json, 1 text, 2 invalid.
    pub kind: u8,
    /// Event time, Unix nanoseconds.
    pub time_nanos: i64,
    /// Receipt time, Unix nanoseconds.
    pub observed_nanos: i64,
    /// Source (e.g. `http:127.0.0.1`).
    pub source: String,
    /// The bytes exactly as received.
    pub raw: Vec<u8>,
}

/// Decodes the `record` (base64) field of a proof bundle.
pub fn bundle_record(bundle: &Value) -> BundleRecord {
    let encoded = bundle["record"].as_str().expect("bundle has a record");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("record is base64");
    assert!(bytes.len() >= 24, "record too short: {bytes:?}");
    assert_eq!(bytes[0], 1, "record version");
    let le_i64 = |at: usize| i64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let source_len = usize::from(u16::from_le_bytes([bytes[18], bytes[19]]));
    let source_end = 20 + source_len;
    let attrs_len = u32::from_le_bytes(
        bytes[source_end..source_end + 4]
            .try_into()
            .expect("4 bytes"),
    ) as usize;
    let raw_start = source_end + 4 + attrs_len;
    BundleRecord {
        kind: bytes[1],
        time_nanos: le_i64(2),
        observed_nanos: le_i64(10),
        source: String::from_utf8(bytes[20..source_end].to_vec()).expect("UTF-8 source"),
        raw: bytes[raw_start..].to_vec(),
    }
}

/// `seclog proof` for one record, parsed.
pub fn proof(store: &Store, group: &str, seq: u64) -> Value {
    let data = store.data_arg();
    let stdout = run_ok([
        "proof",
        "--data",
        &data,
        "--group",
        group,
        "--seq",
        &seq.to_string(),
    ]);
    serde_json::from_str(&stdout).expect("proof prints JSON")
}

/// Every regular file under `dir`, recursively, sorted.
pub fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current).expect("readable directory") {
            let path = entry.expect("directory entry").path();
            let kind = fs::symlink_metadata(&path).expect("metadata").file_type();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Random lower-case hex of `bytes` random bytes.
pub fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", fastrand::u8(..)))
        .collect()
}

/// Formats Unix nanoseconds like seclog does: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (fixed width, so
/// these strings compare in time order).
pub fn rfc3339_from_unix_nanos(nanos: i64) -> String {
    let seconds = nanos.div_euclid(1_000_000_000);
    let fraction = nanos.rem_euclid(1_000_000_000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{fraction:09}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// The current time in seclog's RFC 3339 form.
pub fn now_rfc3339() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    rfc3339_from_unix_nanos(i64::try_from(nanos).expect("nanoseconds fit i64"))
}
