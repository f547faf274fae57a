//! Master-key rotation: every data key (and the signing state, and whatever else a caller
//! adds) re-wrapped under a new master key, the data itself untouched.
//!
//! Re-wrapping is a list of byte ranges to overwrite ([`Rewrap`]). The whole list is first
//! written to a rewrap log with one fsync; then the ranges are written in place without an
//! fsync each, and the file system is synced once. A crash at any point leaves the log, and
//! replaying it ([`apply`]) is idempotent, so rotating 100,000 data keys costs two syncs rather
//! than 100,000.

use std::fs;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use seclog_model::GroupName;

use crate::crypto::{MasterKey, sha256};
use crate::error::{JournalError, Result};
use crate::fsutil;
use crate::layout::Layout;

const LOG_MAGIC: &[u8; 8] = b"SLRWv1\n\0";

/// Bytes to write at an offset of a file under the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrap {
    /// Path relative to the data directory.
    pub path: PathBuf,
    /// Where the bytes go.
    pub offset: u64,
    /// The file is exactly these bytes (cut to their length).
    pub whole: bool,
    /// The new wrapped key or sealed state.
    pub bytes: Vec<u8>,
}

fn relative(layout: &Layout, path: &Path) -> PathBuf {
    path.strip_prefix(layout.root())
        .map_or_else(|_| path.to_path_buf(), Path::to_path_buf)
}

/// Every segment's data key, unwrapped with `keyring` (which may hold both keys of a
/// rotation) and wrapped with `new`.
pub fn data_key_rewraps(
    layout: &Layout,
    keyring: &MasterKey,
    new: &MasterKey,
) -> Result<Vec<Rewrap>> {
    let root = layout.keys_dir().join("data");
    let mut rewraps = Vec::new();
    let Ok(groups) = fs::read_dir(&root) else {
        return Ok(rewraps);
    };
    for group_entry in groups {
        let group_entry = group_entry.map_err(JournalError::io("list", &root))?;
        let Some(group) = group_entry
            .file_name()
            .to_str()
            .and_then(|name| GroupName::from_dir_name(name).ok())
        else {
            continue;
        };
        let dir = group_entry.path();
        // Keys a signed shred declares destroyed are not carried over (a crash may have left
        // them): they are destroyed now.
        let shredded_below = crate::store::list_group_files(&layout.group_dir(&group))
            .map(|files| files.shredded_below())
            .unwrap_or(0);
        for entry in fs::read_dir(&dir).map_err(JournalError::io("list", &dir))? {
            let path = entry.map_err(JournalError::io("list", &dir))?.path();
            let Some(first_seq) = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(".dek"))
                .and_then(|seq| seq.parse::<u64>().ok())
            else {
                continue;
            };
            if first_seq < shredded_below {
                fsutil::remove_durable(&path)?;
                continue;
            }
            let context = crate::writer::JournalWriter::key_context(&group, first_seq);
            let wrapped = fs::read(&path).map_err(JournalError::io("read data key", &path))?;
            let key = keyring
                .unwrap_key(&wrapped, &context)
                .map_err(|error| JournalError::Key(format!("{}: {error}", path.display())))?;
            rewraps.push(Rewrap {
                path: relative(layout, &path),
                offset: 0,
                whole: true,
                bytes: new.wrap(&key, &context)?,
            });
        }
    }
    rewraps.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(rewraps)
}

/// The signing state re-sealed under `new` (see [`crate::signer::Signer::resealed_state`]).
pub fn signing_state_rewrap(
    layout: &Layout,
    keyring: &MasterKey,
    new: &MasterKey,
) -> Result<Rewrap> {
    Ok(Rewrap {
        path: relative(layout, &layout.signing_state()),
        offset: 0,
        whole: true,
        bytes: crate::signer::resealed_state(layout, keyring, new)?,
    })
}

fn encode(entries: &[Rewrap]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    out.extend_from_slice(LOG_MAGIC);
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    for entry in entries {
        let path = entry.path.to_str().ok_or_else(|| {
            JournalError::Invalid(format!("{} is not UTF-8", entry.path.display()))
        })?;
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&entry.offset.to_le_bytes());
        out.push(u8::from(entry.whole));
        out.extend_from_slice(&(entry.bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&entry.bytes);
    }
    let digest = sha256(&[&out]);
    out.extend_from_slice(&digest);
    Ok(out)
}

fn decode(bytes: &[u8], path: &Path) -> Result<Vec<Rewrap>> {
    let corrupt = || JournalError::corrupt(path, "not a complete rewrap log");
    let (body, digest) = bytes
        .split_at_checked(bytes.len().saturating_sub(32))
        .ok_or_else(corrupt)?;
    if sha256(&[body]) != digest || !body.starts_with(LOG_MAGIC) {
        return Err(corrupt());
    }
    let mut rest = body.get(LOG_MAGIC.len()..).ok_or_else(corrupt)?;
    let mut take = |len: usize| -> Result<&[u8]> {
        let (head, tail) = rest.split_at_checked(len).ok_or_else(corrupt)?;
        rest = tail;
        Ok(head)
    };
    let u32_at = |bytes: &[u8]| u32::from_le_bytes(bytes.try_into().unwrap_or_default()) as usize;
    let count = u64::from_le_bytes(take(8)?.try_into().map_err(|_| corrupt())?);
    let mut entries = Vec::new();
    for _ in 0..count {
        let path_len = u32_at(take(4)?);
        let path_text = std::str::from_utf8(take(path_len)?).map_err(|_| corrupt())?;
        let offset = u64::from_le_bytes(take(8)?.try_into().map_err(|_| corrupt())?);
        let whole = take(1)? == [1];
        let len = u32_at(take(4)?);
        let bytes = take(len)?.to_vec();
        let relative = PathBuf::from(path_text);
        if relative.is_absolute() || relative.components().any(|part| part.as_os_str() == "..") {
            return Err(corrupt());
        }
        entries.push(Rewrap {
            path: relative,
            offset,
            whole,
            bytes,
        });
    }
    Ok(entries)
}

/// Writes the rewrap log durably (temp file, fsync, rename, fsync directory).
pub fn write_log(path: &Path, entries: &[Rewrap]) -> Result<()> {
    fsutil::write_atomic(path, &encode(entries)?, 0o600)
}

/// Reads a rewrap log written by [`write_log`].
pub fn read_log(path: &Path) -> Result<Vec<Rewrap>> {
    let bytes = fs::read(path).map_err(JournalError::io("read", path))?;
    decode(&bytes, path)
}

/// Writes every entry in place under `root`, then syncs the file system once.
pub fn apply(root: &Path, entries: &[Rewrap]) -> Result<()> {
    for entry in entries {
        let path = root.join(&entry.path);
        let file = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(JournalError::io("open", &path))?;
        file.write_all_at(&entry.bytes, entry.offset)
            .map_err(JournalError::io("write", &path))?;
        if entry.whole {
            file.set_len(entry.offset + entry.bytes.len() as u64)
                .map_err(JournalError::io("truncate", &path))?;
        }
    }
    sync_filesystem(root)
}

/// Flushes every file of the file system holding `root` (one `syncfs`).
fn sync_filesystem(root: &Path) -> Result<()> {
    let dir = fs::File::open(root).map_err(JournalError::io("open", root))?;
    rustix::fs::syncfs(&dir).map_err(|error| JournalError::io("syncfs", root)(error.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_round_trips_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        let entries = vec![
            Rewrap {
                path: "keys/data/a/1.dek".into(),
                offset: 0,
                whole: true,
                bytes: vec![7; 72],
            },
            Rewrap {
                path: "index/a/0/x".into(),
                offset: 10,
                whole: false,
                bytes: vec![9; 72],
            },
        ];
        let log = dir.path().join("rewrap.log");
        write_log(&log, &entries).unwrap();
        assert_eq!(read_log(&log).unwrap(), entries);
        let mut bytes = fs::read(&log).unwrap();
        bytes[20] ^= 1;
        fs::write(&log, &bytes).unwrap();
        assert!(read_log(&log).is_err());
        // Applying writes in place and cuts whole files to size.
        fs::create_dir_all(dir.path().join("keys/data/a")).unwrap();
        fs::create_dir_all(dir.path().join("index/a/0")).unwrap();
        fs::write(dir.path().join("keys/data/a/1.dek"), vec![1; 80]).unwrap();
        fs::write(dir.path().join("index/a/0/x"), vec![2; 100]).unwrap();
        apply(dir.path(), &entries).unwrap();
        assert_eq!(
            fs::read(dir.path().join("keys/data/a/1.dek")).unwrap(),
            vec![7; 72]
        );
        let index = fs::read(dir.path().join("index/a/0/x")).unwrap();
        assert_eq!(
            (index.len(), &index[..10], &index[10..82]),
            (100, &[2; 10][..], &[9; 72][..])
        );
    }
}
