//! Listing and reading a group's files: shared by the writer's recovery, readers and `verify`.

use std::fs;
use std::path::{Path, PathBuf};

use seclog_model::GroupName;

use crate::error::{JournalError, Result};
use crate::layout::{Layout, parse_numbered};

/// The files of one group directory, sorted by first sequence number.
#[derive(Debug, Default)]
pub(crate) struct GroupFiles {
    pub(crate) segments: Vec<(u64, PathBuf)>,
    pub(crate) tombstones: Vec<(u64, PathBuf)>,
    /// Signed shreds, by the record they end at.
    pub(crate) shreds: Vec<(u64, PathBuf)>,
    /// Anything else found in the directory.
    pub(crate) unexpected: Vec<PathBuf>,
}

impl GroupFiles {
    /// Records below this were crypto-shredded: their segments stay but cannot be read.
    pub(crate) fn shredded_below(&self) -> u64 {
        self.shreds.last().map_or(0, |(upto, _)| *upto)
    }
}

pub(crate) fn list_group_files(dir: &Path) -> Result<GroupFiles> {
    let mut files = GroupFiles::default();
    for entry in fs::read_dir(dir).map_err(JournalError::io("list", dir))? {
        let entry = entry.map_err(JournalError::io("list", dir))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_str().unwrap_or_default();
        if let Some(seq) = parse_numbered(name, "seg") {
            files.segments.push((seq, path));
        } else if let Some(seq) = parse_numbered(name, "tomb") {
            files.tombstones.push((seq, path));
        } else if let Some(seq) = parse_numbered(name, "shred") {
            files.shreds.push((seq, path));
        } else {
            files.unexpected.push(path);
        }
    }
    files.segments.sort();
    files.tombstones.sort();
    files.shreds.sort();
    Ok(files)
}

/// Group directories under `journal/groups` (name, path); entries that are not valid group
/// directory names are returned separately.
/// Group directories found, and entries that are not group directories.
pub(crate) type GroupListing = (Vec<(GroupName, PathBuf)>, Vec<PathBuf>);

pub(crate) fn list_groups(layout: &Layout) -> Result<GroupListing> {
    let dir = layout.groups_dir();
    let mut groups = Vec::new();
    let mut unexpected = Vec::new();
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok((groups, unexpected));
        }
        Err(error) => return Err(JournalError::io("list", &dir)(error)),
    };
    for entry in entries {
        let entry = entry.map_err(JournalError::io("list", &dir))?;
        let path = entry.path();
        let is_dir = entry.file_type().map(|kind| kind.is_dir()).unwrap_or(false);
        match entry.file_name().to_str().map(GroupName::from_dir_name) {
            Some(Ok(name))
                if is_dir && name.to_dir_name() == entry.file_name().to_string_lossy() =>
            {
                groups.push((name, path))
            }
            _ => unexpected.push(path),
        }
    }
    groups.sort();
    Ok((groups, unexpected))
}

/// Names of every group in the store.
pub fn group_names(layout: &Layout) -> Result<Vec<GroupName>> {
    Ok(list_groups(layout)?
        .0
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

/// The first sequence number `group` still holds (0 when it has no segments). Reads only the
/// directory listing.
pub fn first_retained(layout: &Layout, group: &GroupName) -> Result<u64> {
    let files = list_group_files(&layout.group_dir(group))?;
    Ok(files.segments.first().map_or(0, |(first, _)| *first))
}

/// The records a group currently holds: `(first retained, one past the last)`. Needs no key.
pub fn group_extent(layout: &Layout, group: &GroupName) -> Result<(u64, u64)> {
    let files = list_group_files(&layout.group_dir(group))?;
    let (Some((first, _)), Some((_, last_path))) = (files.segments.first(), files.segments.last())
    else {
        return Ok((0, 0));
    };
    let bytes = fs::read(last_path).map_err(JournalError::io("read", last_path))?;
    let (header, header_len) = crate::segment::SegmentHeader::parse(&bytes)
        .map_err(|reason| JournalError::corrupt(last_path, reason))?;
    let mut next = header.first_seq;
    for frame in crate::frame::frames(&bytes, header_len)
        .filter(|frame| frame.tag == crate::segment::TAG_BLOCK)
    {
        if let Ok(block) = crate::segment::BlockView::parse(frame.payload) {
            next = block.end_seq();
        }
    }
    Ok((*first, next))
}
