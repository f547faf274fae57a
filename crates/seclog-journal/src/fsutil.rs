//! Durable file-system helpers: every rename and create is followed by an fsync of the directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{JournalError, Result};

/// Creates a directory tree with mode 0700 for any new directory, durably: each new directory's
/// entry is fsynced in its parent, so a crash cannot lose a directory that data was put in.
pub(crate) fn create_dir_all_private(path: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut current = Some(path);
    while let Some(dir) = current {
        if dir.as_os_str().is_empty() || fs::metadata(dir).is_ok() {
            break;
        }
        missing.push(dir);
        current = dir.parent();
    }
    for dir in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => sync_parent(dir)?,
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(JournalError::io("create directory", dir)(error)),
        }
    }
    Ok(())
}

/// Creates a new file (never replacing one) holding `bytes`, durably (file and directory entry
/// fsynced), and returns it open for appending.
pub(crate) fn create_append_durable(path: &Path, bytes: &[u8]) -> Result<fs::File> {
    let mut file = fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path)
        .map_err(JournalError::io("create", path))?;
    file.write_all(bytes)
        .map_err(JournalError::io("write", path))?;
    file.sync_all().map_err(JournalError::io("sync", path))?;
    sync_parent(path)?;
    Ok(file)
}

/// Fsyncs a directory so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    fs::File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(JournalError::io("sync directory", path))
}

/// Fsyncs the directory containing `path`.
pub(crate) fn sync_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => sync_dir(Path::new(".")),
    }
}

/// Writes `bytes` to `path` atomically and durably: temp file, fsync, rename, fsync directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let temp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temp)
        .map_err(JournalError::io("create", &temp))?;
    file.write_all(bytes)
        .map_err(JournalError::io("write", &temp))?;
    file.sync_all().map_err(JournalError::io("sync", &temp))?;
    fs::rename(&temp, path).map_err(JournalError::io("rename into place", path))?;
    sync_parent(path)
}

/// Removes a file and fsyncs its directory. A missing file is not an error.
pub(crate) fn remove_durable(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_parent(path),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(JournalError::io("remove", path)(error)),
    }
}

/// Cuts a file to `len` bytes and makes the cut durable.
pub(crate) fn truncate_durable(path: &Path, len: u64) -> Result<()> {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(JournalError::io("open", path))?;
    file.set_len(len)
        .map_err(JournalError::io("truncate", path))?;
    file.sync_all().map_err(JournalError::io("sync", path))
}
