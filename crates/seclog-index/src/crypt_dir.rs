//! A tantivy [`Directory`] that never puts plaintext on disk.
//!
//! Every file gets its own random data key, wrapped by the master key and bound to the file's
//! name, and is cut into chunks of [`CHUNK`] plaintext bytes, each sealed with XChaCha20-Poly1305
//! under a nonce made of a per-file random prefix and the chunk number. The last chunk is sealed
//! with a different associated datum, so a truncated or extended file fails to open. Reads decrypt
//! only the chunks a range touches. Writes keep at most one chunk of plaintext in memory.
//!
//! File layout: `SLIDX01\n` | wrapped-key length (u16 LE) | wrapped key | nonce prefix (16) |
//! chunks (`CHUNK` + 16 bytes each; the last one shorter, possibly just its 16-byte tag).

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use seclog_journal::{MasterKey, SecretKey};
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, DirectoryLock, FileHandle, Lock, OwnedBytes, TerminatingWrite, WatchCallback,
    WatchHandle, WritePtr,
};
use tantivy::{Directory, HasLen};

const MAGIC: &[u8; 8] = b"SLIDX01\n";
/// Plaintext bytes per sealed chunk.
pub const CHUNK: usize = 32 * 1024;
const TAG: usize = 16;
const PREFIX: usize = 16;

/// Reads at least this long are kept decrypted in the range cache.
const MIN_CACHED_RANGE: usize = 64 * 1024;

/// Bytes of decrypted ranges kept for reuse (default 1 GiB).
static CACHE_BUDGET: AtomicUsize = AtomicUsize::new(1 << 30);
static NEXT_FILE_ID: AtomicU64 = AtomicU64::new(1);
static CACHE: LazyLock<Mutex<RangeCache>> = LazyLock::new(|| Mutex::new(RangeCache::default()));

/// Sets how many bytes of decrypted index data are kept in memory for reuse (0 disables it).
///
/// tantivy reads whole columns and posting lists as byte ranges; on a plain index the page
/// cache serves repeated reads for free, here every read would decrypt again. The cache keeps
/// the decrypted ranges of open files (never on disk) and forgets a file's ranges when the file
/// is closed.
pub fn set_cache_budget(bytes: usize) {
    CACHE_BUDGET.store(bytes, Ordering::Relaxed);
    if let Ok(mut cache) = CACHE.lock() {
        cache.shrink_to(bytes);
    }
}

/// Decrypted ranges of open index files, least recently used first out.
#[derive(Default)]
struct RangeCache {
    entries: HashMap<(u64, usize, usize), (OwnedBytes, u64)>,
    bytes: usize,
    tick: u64,
}

impl RangeCache {
    fn get(&mut self, key: (u64, usize, usize)) -> Option<OwnedBytes> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(&key).map(|(bytes, used)| {
            *used = tick;
            bytes.clone()
        })
    }

    fn insert(&mut self, key: (u64, usize, usize), bytes: OwnedBytes, budget: usize) {
        if bytes.len() > budget / 4 {
            return;
        }
        self.tick += 1;
        self.bytes += bytes.len();
        if let Some((old, _)) = self.entries.insert(key, (bytes, self.tick)) {
            self.bytes -= old.len();
        }
        self.shrink_to(budget);
    }

    fn shrink_to(&mut self, budget: usize) {
        if self.bytes <= budget {
            return;
        }
        let mut by_age: Vec<((u64, usize, usize), u64)> = self
            .entries
            .iter()
            .map(|(key, (_, used))| (*key, *used))
            .collect();
        by_age.sort_by_key(|(_, used)| *used);
        // Evict down to three quarters of the budget, so that eviction is not run per insert.
        for (key, _) in by_age {
            if self.bytes <= budget / 4 * 3 {
                break;
            }
            if let Some((bytes, _)) = self.entries.remove(&key) {
                self.bytes -= bytes.len();
            }
        }
    }

    fn forget_file(&mut self, id: u64) {
        let mut freed = 0;
        self.entries.retain(|(file, _, _), (bytes, _)| {
            if *file == id {
                freed += bytes.len();
                false
            } else {
                true
            }
        });
        self.bytes -= freed;
    }
}

/// Directories locked by this process (tantivy's own lock files would outlive a crash).
static LOCKS: LazyLock<Mutex<HashSet<PathBuf>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// An encrypted directory rooted at one index piece.
#[derive(Clone)]
pub struct EncryptedDirectory {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    /// What the wrapped keys are bound to besides the file name (the piece's identity).
    context: String,
    master: MasterKey,
    /// Open read handles, shared so that repeated opens reuse the unwrapped key.
    handles: Mutex<HashMap<PathBuf, std::sync::Weak<EncryptedFile>>>,
}

impl std::fmt::Debug for EncryptedDirectory {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EncryptedDirectory")
            .field("root", &self.inner.root)
            .finish_non_exhaustive()
    }
}

impl EncryptedDirectory {
    /// Opens (creating if needed) the directory `root`; `context` names the piece (for example
    /// `aws%2Fcloudtrail/00000000000000000000`) so that files cannot be moved between pieces.
    pub fn open(root: &Path, context: &str, master: MasterKey) -> io::Result<Self> {
        fs::create_dir_all(root)?;
        Ok(EncryptedDirectory {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                context: context.to_string(),
                master,
                handles: Mutex::new(HashMap::new()),
            }),
        })
    }

    fn full(&self, path: &Path) -> PathBuf {
        self.inner.root.join(path)
    }

    fn aad_base(&self, path: &Path) -> Vec<u8> {
        format!("seclog-index-v1:{}/{}", self.inner.context, path.display()).into_bytes()
    }

    fn open_file(&self, path: &Path) -> Result<Arc<EncryptedFile>, OpenReadError> {
        let full = self.full(path);
        if let Ok(handles) = self.inner.handles.lock()
            && let Some(existing) = handles.get(path).and_then(std::sync::Weak::upgrade)
        {
            return Ok(existing);
        }
        let file = File::open(&full).map_err(|error| {
            if error.kind() == io::ErrorKind::NotFound {
                OpenReadError::FileDoesNotExist(path.to_path_buf())
            } else {
                OpenReadError::wrap_io_error(error, path.to_path_buf())
            }
        })?;
        let opened = EncryptedFile::open(file, &self.inner.master, self.aad_base(path))
            .map_err(|error| OpenReadError::wrap_io_error(error, path.to_path_buf()))?;
        let opened = Arc::new(opened);
        if let Ok(mut handles) = self.inner.handles.lock() {
            handles.retain(|_, weak| weak.strong_count() > 0);
            handles.insert(path.to_path_buf(), Arc::downgrade(&opened));
        }
        Ok(opened)
    }

    fn seal_whole(&self, path: &Path, data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(data.len() + 256);
        let mut writer = ChunkSealer::new(&self.inner.master, self.aad_base(path), &mut out)?;
        writer.write_all(data)?;
        writer.finish()?;
        Ok(out)
    }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

impl Directory for EncryptedDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        Ok(self.open_file(path)?)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        if let Ok(mut handles) = self.inner.handles.lock() {
            handles.remove(path);
        }
        fs::remove_file(self.full(path)).map_err(|error| {
            if error.kind() == io::ErrorKind::NotFound {
                DeleteError::FileDoesNotExist(path.to_path_buf())
            } else {
                DeleteError::IoError {
                    io_error: Arc::new(error),
                    filepath: path.to_path_buf(),
                }
            }
        })
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        Ok(self.full(path).exists())
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let full = self.full(path);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&full)
            .map_err(|error| {
                if error.kind() == io::ErrorKind::AlreadyExists {
                    OpenWriteError::FileAlreadyExists(path.to_path_buf())
                } else {
                    OpenWriteError::wrap_io_error(error, path.to_path_buf())
                }
            })?;
        let sealer = ChunkSealer::new(&self.inner.master, self.aad_base(path), FileSink(file))
            .map_err(|error| OpenWriteError::wrap_io_error(error, path.to_path_buf()))?;
        Ok(io::BufWriter::with_capacity(
            CHUNK,
            Box::new(sealer) as Box<dyn TerminatingWrite + Send + Sync>,
        ))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        let file = self.open_file(path)?;
        let bytes = file
            .read_bytes(0..file.len())
            .map_err(|error| OpenReadError::wrap_io_error(error, path.to_path_buf()))?;
        Ok(bytes.as_slice().to_vec())
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let sealed = self.seal_whole(path, data)?;
        let full = self.full(path);
        let temp = full.with_extension("seclog-tmp");
        {
            let mut file = File::create(&temp)?;
            file.write_all(&sealed)?;
            file.sync_all()?;
        }
        fs::rename(&temp, &full)?;
        if let Ok(mut handles) = self.inner.handles.lock() {
            handles.remove(path);
        }
        sync_dir(&self.inner.root)
    }

    fn sync_directory(&self) -> io::Result<()> {
        sync_dir(&self.inner.root)
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        let key = self.full(&lock.filepath);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let acquired = LOCKS
                .lock()
                .map_err(|_| LockError::IoError(Arc::new(io::Error::other("lock table poisoned"))))?
                .insert(key.clone());
            if acquired {
                return Ok(DirectoryLock::from(Box::new(ProcessLock(key))));
            }
            // A blocking lock (the meta lock, held briefly by commits, reloads and file
            // clean-up) is waited for; the writer lock is not.
            if !lock.is_blocking || std::time::Instant::now() >= deadline {
                return Err(LockError::LockBusy);
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    fn watch(&self, _callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        // Readers are reloaded explicitly after each commit.
        Ok(WatchHandle::empty())
    }
}

struct ProcessLock(PathBuf);

impl Drop for ProcessLock {
    fn drop(&mut self) {
        if let Ok(mut locks) = LOCKS.lock() {
            locks.remove(&self.0);
        }
    }
}

fn chunk_nonce(prefix: &[u8; PREFIX], index: u64) -> [u8; 24] {
    let mut nonce = [0u8; 24];
    nonce[..PREFIX].copy_from_slice(prefix);
    nonce[PREFIX..].copy_from_slice(&index.to_le_bytes());
    nonce
}

fn chunk_aad(base: &[u8], last: bool) -> Vec<u8> {
    let mut aad = base.to_vec();
    aad.extend_from_slice(if last { b":last" } else { b":more" });
    aad
}

/// The wrapped file keys of every index file under `index_root` (`<group>/<piece>/<file>`),
/// unwrapped with `keyring` and wrapped with `new`, as in-place rewraps (paths relative to
/// `data_root`). Files whose key does not unwrap are left out and counted: the index is
/// derived, and a piece that cannot be read is rebuilt from the journal.
pub fn header_rewraps(
    index_root: &Path,
    data_root: &Path,
    keyring: &MasterKey,
    new: &MasterKey,
) -> io::Result<(Vec<seclog_journal::rotation::Rewrap>, usize)> {
    let mut rewraps = Vec::new();
    let mut skipped = 0;
    let Ok(groups) = fs::read_dir(index_root) else {
        return Ok((rewraps, skipped));
    };
    for group in groups {
        let group = group?;
        if !group.file_type()?.is_dir() {
            continue;
        }
        for piece in fs::read_dir(group.path())? {
            let piece = piece?;
            if !piece.file_type()?.is_dir() {
                continue;
            }
            let context = format!(
                "{}/{}",
                group.file_name().to_string_lossy(),
                piece.file_name().to_string_lossy()
            );
            for file in fs::read_dir(piece.path())? {
                let file = file?;
                if !file.file_type()?.is_file() {
                    continue;
                }
                let path = file.path();
                let handle = File::open(&path)?;
                let mut head = [0u8; 10];
                if handle.read_exact_at(&mut head, 0).is_err() || &head[..8] != MAGIC {
                    continue;
                }
                let wrapped_len = u16::from_le_bytes([head[8], head[9]]) as usize;
                let mut wrapped = vec![0u8; wrapped_len];
                handle.read_exact_at(&mut wrapped, 10)?;
                let aad = format!(
                    "seclog-index-v1:{context}/{}",
                    file.file_name().to_string_lossy()
                )
                .into_bytes();
                let Ok(key) = keyring.unwrap_key(&wrapped, &aad) else {
                    skipped += 1;
                    continue;
                };
                let rewrapped = new.wrap(&key, &aad).map_err(key_error)?;
                if rewrapped.len() != wrapped_len {
                    skipped += 1;
                    continue;
                }
                rewraps.push(seclog_journal::rotation::Rewrap {
                    path: path
                        .strip_prefix(data_root)
                        .map_or_else(|_| path.clone(), Path::to_path_buf),
                    offset: 10,
                    whole: false,
                    bytes: rewrapped,
                });
            }
        }
    }
    Ok((rewraps, skipped))
}

fn key_error(error: seclog_journal::JournalError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error.to_string())
}

/// Where sealed bytes go: a file being written, or memory for `atomic_write`.
trait Sink: Write {
    fn finish_sink(&mut self) -> io::Result<()>;
}

struct FileSink(File);

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Sink for FileSink {
    fn finish_sink(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }
}

impl Sink for &mut Vec<u8> {
    fn finish_sink(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Seals plaintext chunk by chunk into a sink.
struct ChunkSealer<S: Sink> {
    sink: S,
    key: SecretKey,
    prefix: [u8; PREFIX],
    aad: Vec<u8>,
    pending: Vec<u8>,
    next_chunk: u64,
    finished: bool,
}

impl<S: Sink> ChunkSealer<S> {
    fn new(master: &MasterKey, aad: Vec<u8>, mut sink: S) -> io::Result<Self> {
        let key = SecretKey::generate().map_err(key_error)?;
        let wrapped = master.wrap(&key, &aad).map_err(key_error)?;
        let prefix: [u8; PREFIX] = seclog_journal::crypto::random_bytes().map_err(key_error)?;
        let wrapped_len =
            u16::try_from(wrapped.len()).map_err(|_| io::Error::other("wrapped key too long"))?;
        sink.write_all(MAGIC)?;
        sink.write_all(&wrapped_len.to_le_bytes())?;
        sink.write_all(&wrapped)?;
        sink.write_all(&prefix)?;
        Ok(ChunkSealer {
            sink,
            key,
            prefix,
            aad,
            pending: Vec::with_capacity(CHUNK),
            next_chunk: 0,
            finished: false,
        })
    }

    fn seal_pending(&mut self, last: bool) -> io::Result<()> {
        let nonce = chunk_nonce(&self.prefix, self.next_chunk);
        let sealed = self
            .key
            .seal_with_nonce(&nonce, &self.pending, &chunk_aad(&self.aad, last))
            .map_err(key_error)?;
        self.sink.write_all(&sealed)?;
        self.pending.clear();
        self.next_chunk += 1;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.seal_pending(true)?;
        self.finished = true;
        self.sink.flush()?;
        self.sink.finish_sink()
    }
}

impl<S: Sink> Write for ChunkSealer<S> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        if self.finished {
            return Err(io::Error::other("write after terminate"));
        }
        let total = buf.len();
        while !buf.is_empty() {
            let room = CHUNK - self.pending.len();
            let (now, rest) = buf.split_at(room.min(buf.len()));
            self.pending.extend_from_slice(now);
            buf = rest;
            // A full chunk is sealed only once more bytes arrive, so that the last chunk is
            // always the one `finish` seals.
            if self.pending.len() == CHUNK && !buf.is_empty() {
                self.seal_pending(false)?;
            }
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }
}

impl<S: Sink> TerminatingWrite for ChunkSealer<S> {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        self.finish()
    }
}

/// An encrypted file opened for reading.
pub(crate) struct EncryptedFile {
    /// Identity in the range cache.
    id: u64,
    file: File,
    key: SecretKey,
    prefix: [u8; PREFIX],
    aad: Vec<u8>,
    data_start: u64,
    chunks: u64,
    plain_len: usize,
    /// The most recently decrypted chunk: tantivy often reads neighbouring small ranges.
    last: Mutex<Option<(u64, Arc<Vec<u8>>)>>,
}

impl std::fmt::Debug for EncryptedFile {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EncryptedFile")
            .field("plain_len", &self.plain_len)
            .finish_non_exhaustive()
    }
}

impl EncryptedFile {
    fn open(file: File, master: &MasterKey, aad: Vec<u8>) -> io::Result<Self> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        let total = file.metadata()?.len();
        let mut head = [0u8; 10];
        file.read_exact_at(&mut head, 0)
            .map_err(|_| invalid("not a seclog index file (too short)"))?;
        if &head[..8] != MAGIC {
            return Err(invalid("not a seclog index file"));
        }
        let wrapped_len = u16::from_le_bytes([head[8], head[9]]) as usize;
        let mut wrapped = vec![0u8; wrapped_len];
        file.read_exact_at(&mut wrapped, 10)?;
        let key = master.unwrap_key(&wrapped, &aad).map_err(key_error)?;
        let mut prefix = [0u8; PREFIX];
        file.read_exact_at(&mut prefix, 10 + wrapped_len as u64)?;
        let data_start = (10 + wrapped_len + PREFIX) as u64;
        let data_len = total
            .checked_sub(data_start)
            .filter(|len| *len >= TAG as u64)
            .ok_or_else(|| invalid("index file truncated"))?;
        let sealed_chunk = (CHUNK + TAG) as u64;
        let chunks = data_len.div_ceil(sealed_chunk);
        let last_len = data_len - (chunks - 1) * sealed_chunk;
        if last_len < TAG as u64 {
            return Err(invalid("index file truncated"));
        }
        let plain_len = usize::try_from(data_len - chunks * TAG as u64)
            .map_err(|_| invalid("index file too large"))?;
        Ok(EncryptedFile {
            id: NEXT_FILE_ID.fetch_add(1, Ordering::Relaxed),
            file,
            key,
            prefix,
            aad,
            data_start,
            chunks,
            plain_len,
            last: Mutex::new(None),
        })
    }

    fn chunk(&self, index: u64) -> io::Result<Arc<Vec<u8>>> {
        if let Ok(last) = self.last.lock()
            && let Some((cached, bytes)) = last.as_ref()
            && *cached == index
        {
            return Ok(Arc::clone(bytes));
        }
        let sealed_chunk = (CHUNK + TAG) as u64;
        let start = self.data_start + index * sealed_chunk;
        let is_last = index + 1 == self.chunks;
        let len = if is_last {
            self.plain_len - (index as usize) * CHUNK + TAG
        } else {
            CHUNK + TAG
        };
        let mut sealed = vec![0u8; len];
        self.file.read_exact_at(&mut sealed, start)?;
        let plain = self
            .key
            .open_with_nonce(
                &chunk_nonce(&self.prefix, index),
                &sealed,
                &chunk_aad(&self.aad, is_last),
            )
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("index chunk {index} fails authentication"),
                )
            })?;
        let plain = Arc::new(plain);
        if let Ok(mut last) = self.last.lock() {
            *last = Some((index, Arc::clone(&plain)));
        }
        Ok(plain)
    }
}

impl Drop for EncryptedFile {
    fn drop(&mut self) {
        if let Ok(mut cache) = CACHE.lock() {
            cache.forget_file(self.id);
        }
    }
}

impl HasLen for EncryptedFile {
    fn len(&self) -> usize {
        self.plain_len
    }
}

impl FileHandle for EncryptedFile {
    fn read_bytes(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        let budget = CACHE_BUDGET.load(Ordering::Relaxed);
        if range.len() < MIN_CACHED_RANGE || budget == 0 {
            return self.decrypt_range(range);
        }
        let key = (self.id, range.start, range.end);
        if let Some(hit) = CACHE.lock().ok().and_then(|mut cache| cache.get(key)) {
            return Ok(hit);
        }
        let bytes = self.decrypt_range(range)?;
        if let Ok(mut cache) = CACHE.lock() {
            cache.insert(key, bytes.clone(), budget);
        }
        Ok(bytes)
    }
}

impl EncryptedFile {
    fn decrypt_range(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        if range.end > self.plain_len || range.start > range.end {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of an index file",
            ));
        }
        if range.is_empty() {
            return Ok(OwnedBytes::empty());
        }
        let first = (range.start / CHUNK) as u64;
        let last = ((range.end - 1) / CHUNK) as u64;
        if first == last {
            let chunk = self.chunk(first)?;
            let offset = first as usize * CHUNK;
            let slice = chunk
                .get(range.start - offset..range.end - offset)
                .ok_or_else(|| io::Error::other("chunk shorter than expected"))?;
            return Ok(OwnedBytes::new(slice.to_vec()));
        }
        let mut out = Vec::with_capacity(range.len());
        for index in first..=last {
            let chunk = self.chunk(index)?;
            let offset = index as usize * CHUNK;
            let from = range.start.max(offset) - offset;
            let to = range.end.min(offset + chunk.len()) - offset;
            out.extend_from_slice(
                chunk
                    .get(from..to)
                    .ok_or_else(|| io::Error::other("chunk shorter than expected"))?,
            );
        }
        Ok(OwnedBytes::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(dir: &Path) -> MasterKey {
        MasterKey::create(&dir.join("master.key")).expect("master key")
    }

    #[test]
    fn round_trips_every_size_and_range() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = EncryptedDirectory::open(&tmp.path().join("piece"), "g/0", master(tmp.path()))
            .expect("dir");
        for size in [0usize, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let name = PathBuf::from(format!("f{size}"));
            let mut writer = dir.open_write(&name).expect("open write");
            for piece in data.chunks(1000) {
                writer.write_all(piece).expect("write");
            }
            writer.terminate().expect("terminate");
            let handle = dir.get_file_handle(&name).expect("handle");
            assert_eq!(handle.len(), size);
            for (start, end) in [
                (0, size),
                (size / 3, size / 2),
                (size.saturating_sub(5), size),
            ] {
                let bytes = handle.read_bytes(start..end).expect("read");
                assert_eq!(bytes.as_slice(), &data[start..end], "size {size}");
            }
        }
        dir.atomic_write(Path::new("meta.json"), b"{\"a\":1}")
            .expect("atomic write");
        assert_eq!(
            dir.atomic_read(Path::new("meta.json")).expect("read"),
            b"{\"a\":1}"
        );
    }

    #[test]
    fn flipped_truncated_or_moved_files_fail() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let key = master(tmp.path());
        let dir = EncryptedDirectory::open(&tmp.path().join("p"), "g/0", key.clone()).expect("dir");
        let data = vec![7u8; 2 * CHUNK + 10];
        dir.atomic_write(Path::new("a"), &data).expect("write");
        let path = tmp.path().join("p/a");
        let original = fs::read(&path).expect("read");
        assert!(!original.windows(64).any(|window| window == &data[..64]));

        let mut flipped = original.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        fs::write(&path, &flipped).expect("write");
        let fresh =
            EncryptedDirectory::open(&tmp.path().join("p"), "g/0", key.clone()).expect("dir");
        assert!(fresh.atomic_read(Path::new("a")).is_err());

        // Dropping the last chunk leaves a file whose new last chunk was not sealed as last.
        fs::write(&path, &original[..original.len() - 26]).expect("write");
        let fresh =
            EncryptedDirectory::open(&tmp.path().join("p"), "g/0", key.clone()).expect("dir");
        assert!(fresh.atomic_read(Path::new("a")).is_err());

        fs::write(&path, &original).expect("write");
        fs::copy(&path, tmp.path().join("p/b")).expect("copy");
        let fresh =
            EncryptedDirectory::open(&tmp.path().join("p"), "g/0", key.clone()).expect("dir");
        assert!(fresh.atomic_read(Path::new("a")).is_ok());
        assert!(
            fresh.atomic_read(Path::new("b")).is_err(),
            "renamed file opens"
        );
        let other = EncryptedDirectory::open(&tmp.path().join("p"), "g/1", key).expect("dir");
        assert!(
            other.atomic_read(Path::new("a")).is_err(),
            "moved file opens"
        );
    }
}
