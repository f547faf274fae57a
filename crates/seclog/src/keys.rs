//! The master key: where it comes from (a file, an environment variable, or a command that
//! prints it, such as a secret manager's CLI), and rotating it (`seclog keys rotate`).
//!
//! Providers, first match wins:
//! - `SECLOG_MASTER_KEY_COMMAND`: run with `sh -c`; its standard output is the key;
//! - `SECLOG_MASTER_KEY`: the key itself;
//! - the file: `--master-key-file` / `SECLOG_MASTER_KEY_FILE`, else `DIR/keys/master.key`.
//!
//! The key is the master key file's text (`seclog-master-key-v1 <64 hex digits>`) or the hex
//! digits alone (`seclog keys generate` prints one). Errors name the provider, never the key.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use seclog_journal::{Layout, MasterKey, rotation};

/// Where the master key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Provider {
    /// A shell command printing the key.
    Command(String),
    /// The `SECLOG_MASTER_KEY` environment variable.
    Environment,
    /// A key file.
    File(PathBuf),
}

impl Provider {
    pub(crate) fn for_layout(layout: &Layout) -> Provider {
        if let Some(command) =
            std::env::var_os("SECLOG_MASTER_KEY_COMMAND").filter(|command| !command.is_empty())
        {
            return Provider::Command(command.to_string_lossy().into_owned());
        }
        if std::env::var_os("SECLOG_MASTER_KEY").is_some_and(|key| !key.is_empty()) {
            return Provider::Environment;
        }
        Provider::File(layout.master_key().to_path_buf())
    }

    pub(crate) fn load(&self) -> Result<MasterKey> {
        match self {
            Provider::File(path) => MasterKey::load(path)
                .with_context(|| format!("loading the master key {}", path.display())),
            Provider::Environment => {
                let text = zeroize::Zeroizing::new(
                    std::env::var("SECLOG_MASTER_KEY").context("SECLOG_MASTER_KEY is not UTF-8")?,
                );
                MasterKey::parse(&text)
                    .map_err(|reason| anyhow::anyhow!("SECLOG_MASTER_KEY: {reason}"))
            }
            Provider::Command(command) => {
                let mut child = Command::new("sh")
                    .args(["-c", command])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .context("running SECLOG_MASTER_KEY_COMMAND")?;
                let mut text = zeroize::Zeroizing::new(String::new());
                child
                    .stdout
                    .take()
                    .context("the master key command's output")?
                    .take(4096)
                    .read_to_string(&mut text)
                    .context("reading the master key command's output")?;
                let status = child
                    .wait()
                    .context("waiting for SECLOG_MASTER_KEY_COMMAND")?;
                if !status.success() {
                    bail!("SECLOG_MASTER_KEY_COMMAND exited with {status}");
                }
                MasterKey::parse(&text).map_err(|reason| {
                    anyhow::anyhow!("SECLOG_MASTER_KEY_COMMAND printed no master key: {reason}")
                })
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Provider::File(path) => path.display().to_string(),
            Provider::Environment => "SECLOG_MASTER_KEY".into(),
            Provider::Command(_) => "SECLOG_MASTER_KEY_COMMAND".into(),
        }
    }
}

/// Files that say a rotation is under way.
fn rotation_files(layout: &Layout) -> (PathBuf, PathBuf) {
    (
        layout.keys_dir().join("rotation.log"),
        layout.keys_dir().join("master.key.next"),
    )
}

/// Refuses to use a store whose master-key rotation is unfinished.
pub(crate) fn refuse_unfinished_rotation(layout: &Layout) -> Result<()> {
    let (log, next) = rotation_files(layout);
    if log.exists() || next.exists() {
        bail!(
            "a master-key rotation of {} is unfinished: run `seclog keys rotate --data {}` again to finish it",
            layout.root().display(),
            layout.root().display()
        );
    }
    Ok(())
}

/// What a rotation did.
#[derive(Debug, Default)]
pub(crate) struct RotationReport {
    pub(crate) data_keys: usize,
    pub(crate) index_files: usize,
    pub(crate) index_skipped: usize,
    pub(crate) detector_state: bool,
    pub(crate) seconds: f64,
}

/// Rotates the master key of a stopped store: every data key, index file key, the signing
/// state and the detector state are re-wrapped under the new key (`new_key_file`, else a
/// generated one); the data is not rewritten. Resumes an interrupted rotation.
pub(crate) fn rotate(
    layout: &Layout,
    meta: &seclog_meta::MetaStore,
    new_key_file: Option<&Path>,
) -> Result<RotationReport> {
    let started = Instant::now();
    let provider = Provider::for_layout(layout);
    let (log_path, next_path) = rotation_files(layout);
    if new_key_file.is_none() && !matches!(provider, Provider::File(_)) {
        bail!(
            "the master key comes from {}: give the new key with --new-key-file (from `seclog keys generate`) so that your provider can hand it out afterwards",
            provider.describe()
        );
    }
    // The new key is kept in `master.key.next` until the rotation is done, whatever its
    // source: a resumed rotation must use the very key the interrupted one wrote with.
    let given = new_key_file
        .map(|path| {
            MasterKey::load(path)
                .with_context(|| format!("loading the new master key {}", path.display()))
        })
        .transpose()?;
    let new = if next_path.exists() {
        let next = MasterKey::load(&next_path)
            .with_context(|| format!("loading {}", next_path.display()))?;
        if given
            .as_ref()
            .is_some_and(|given| given.fingerprint() != next.fingerprint())
        {
            bail!(
                "an unfinished rotation is writing under another new key ({}); finish it with that key or without --new-key-file",
                next_path.display()
            );
        }
        next
    } else {
        if log_path.exists() {
            bail!(
                "{} exists without {}: the rotation cannot be resumed safely",
                log_path.display(),
                next_path.display()
            );
        }
        let key = match given {
            Some(key) => key,
            None => MasterKey::generate()?,
        };
        key.save(&next_path, false)?;
        key
    };
    let mut report = RotationReport::default();
    if log_path.exists() {
        // Interrupted after the log was written: finish writing it.
        let entries = rotation::read_log(&log_path)?;
        rotation::apply(layout.root(), &entries)?;
    }
    let old = provider.load().with_context(|| {
        format!(
            "loading the current master key from {} (after an interrupted rotation, the current key is still the old one)",
            provider.describe()
        )
    })?;
    if old.fingerprint() == new.fingerprint() {
        if !log_path.exists() && !next_path.exists() {
            bail!("the new master key is the current one");
        }
        // Interrupted after the new key took the old one's place: only the cleanup is left.
        finish(layout, &log_path, &next_path)?;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    // Opens what is under either key: a resumed rotation finds both.
    let keyring = new.with_fallback(&old);
    let mut entries = rotation::data_key_rewraps(layout, &keyring, &new)?;
    report.data_keys = entries.len();
    entries.push(rotation::signing_state_rewrap(layout, &keyring, &new)?);
    let (index, skipped) = seclog_index::crypt_dir::header_rewraps(
        &layout.root().join("index"),
        layout.root(),
        &keyring,
        &new,
    )?;
    report.index_files = index.len();
    report.index_skipped = skipped;
    entries.extend(index);
    rotation::write_log(&log_path, &entries)?;
    rotation::apply(layout.root(), &entries)?;
    report.detector_state = seclog_server::detect::reseal_state(meta, &keyring, &new)
        .map_err(anyhow::Error::msg)
        .context("re-sealing the detector state")?;
    match &provider {
        Provider::File(path) => new.save(path, true)?,
        Provider::Environment | Provider::Command(_) => {
            let Some(file) = new_key_file else {
                bail!("the new key must be given with --new-key-file for this provider");
            };
            eprintln!(
                "the master key is now the one in {}: make {} return it before starting seclog",
                file.display(),
                provider.describe()
            );
        }
    }
    finish(layout, &log_path, &next_path)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Removes the rotation's log and generated key file, durably.
fn finish(layout: &Layout, log_path: &Path, next_path: &Path) -> Result<()> {
    for path in [log_path, next_path] {
        if path.exists() {
            std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    std::fs::File::open(layout.keys_dir())?.sync_all()?;
    Ok(())
}
