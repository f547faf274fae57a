//! Keys and primitives: the master key, per-segment data keys (envelope encryption), AEAD, hashing.
//!
//! Data keys are random 256-bit XChaCha20-Poly1305 keys, one per segment, stored only wrapped
//! (encrypted) by the master key in `keys/data/`. Deleting a wrapped data key crypto-shreds its
//! segment; re-wrapping them rotates the master key without touching segments.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{JournalError, Result};
use crate::fsutil;

/// Length of every symmetric key.
pub const KEY_LEN: usize = 32;
/// XChaCha20 nonce length.
pub const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Fills a buffer from the OS random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|error| JournalError::Key(format!("os random source: {error}")))?;
    Ok(bytes)
}

/// A 256-bit symmetric key, wiped from memory on drop. Never printed.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self> {
        Ok(SecretKey(Zeroizing::new(random_bytes()?)))
    }

    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        SecretKey(Zeroizing::new(bytes))
    }

    /// The raw key bytes.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&(*self.0).into())
    }

    /// Encrypts `plaintext` under a random nonce; returns `nonce || ciphertext || tag`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let nonce: [u8; NONCE_LEN] = random_bytes()?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&self.seal_with_nonce(&nonce, plaintext, aad)?);
        Ok(out)
    }

    /// Encrypts with a caller-chosen nonce (which must never repeat under this key).
    pub fn seal_with_nonce(
        &self,
        nonce: &[u8; NONCE_LEN],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>> {
        let nonce = XNonce::from(*nonce);
        self.cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| JournalError::Key("encryption failed".into()))
    }

    /// Decrypts the output of [`SecretKey::seal`].
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let Some((nonce, ciphertext)) = sealed.split_first_chunk::<NONCE_LEN>() else {
            return Err(JournalError::Key("sealed value too short".into()));
        };
        self.open_with_nonce(nonce, ciphertext, aad)
    }

    /// Decrypts a ciphertext produced with [`SecretKey::seal_with_nonce`].
    pub fn open_with_nonce(
        &self,
        nonce: &[u8; NONCE_LEN],
        ciphertext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>> {
        let nonce = XNonce::from(*nonce);
        self.cipher()
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| JournalError::Key("decryption failed: wrong key or altered data".into()))
    }
}

/// The key-encryption key. It wraps data keys and the signing state and never leaves the host.
///
/// During a rotation it also holds the other key of the pair ([`MasterKey::with_fallback`]):
/// what it opens may be under either key; what it wraps is under its own.
#[derive(Clone, Debug)]
pub struct MasterKey(SecretKey, Option<SecretKey>);

const MASTER_KEY_MAGIC: &str = "seclog-master-key-v1";

impl MasterKey {
    /// Creates a new master key file (mode 0600). Refuses to overwrite an existing one.
    pub fn create(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            fsutil::create_dir_all_private(parent)?;
        }
        let key = Self::generate()?;
        key.save(path, false)?;
        Ok(key)
    }

    /// A new random master key, in memory only.
    pub fn generate() -> Result<Self> {
        Ok(MasterKey(SecretKey::generate()?, None))
    }

    /// Writes this key to a new file (mode 0600) in the master key file format; refuses to
    /// overwrite one unless `replace`.
    pub fn save(&self, path: &Path, replace: bool) -> Result<()> {
        let text = Zeroizing::new(self.to_text());
        if replace {
            return fsutil::write_atomic(path, text.as_bytes(), 0o600);
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(JournalError::io("create master key", path))?;
        file.write_all(text.as_bytes())
            .map_err(JournalError::io("write master key", path))?;
        file.sync_all()
            .map_err(JournalError::io("sync master key", path))?;
        fsutil::sync_parent(path)
    }

    /// The master key file's text (`seclog-master-key-v1 <hex>`): secret, for a key provider.
    pub fn to_text(&self) -> String {
        format!("{MASTER_KEY_MAGIC} {}\n", hex::encode(self.0.expose()))
    }

    /// Parses a key given by a provider (an environment variable, a command's output): the
    /// master key file's text, or the 64 hex digits alone. Errors never quote the text.
    pub fn parse(text: &str) -> std::result::Result<Self, &'static str> {
        let trimmed = text.trim();
        if trimmed.starts_with(MASTER_KEY_MAGIC) {
            return Self::from_text(trimmed);
        }
        Self::from_text(&format!("{MASTER_KEY_MAGIC} {trimmed}"))
    }

    /// A short public identifier of the key (a hash of a value derived from it), for logs and
    /// rotation records; it reveals nothing about the key.
    pub fn fingerprint(&self) -> String {
        hex::encode(sha256(&[b"seclog-master-fingerprint-v1", self.0.expose()]))
            .get(..16)
            .unwrap_or_default()
            .to_string()
    }

    /// This key, also opening what `other` wrapped or sealed (during a rotation).
    pub fn with_fallback(&self, other: &MasterKey) -> MasterKey {
        MasterKey(self.0.clone(), Some(other.0.clone()))
    }

    fn open_any(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>> {
        match (self.0.open(sealed, context), &self.1) {
            (Ok(plain), _) => Ok(plain),
            (Err(_), Some(other)) => other.open(sealed, context),
            (Err(error), None) => Err(error),
        }
    }

    /// Loads a master key file; refuses files readable by group or others.
    pub fn load(path: &Path) -> Result<Self> {
        let metadata = fs::metadata(path).map_err(JournalError::io("open master key", path))?;
        if metadata.permissions().mode() & 0o077 != 0 {
            return Err(JournalError::Key(format!(
                "{} is readable by group or others (mode {:o}); run chmod 600 on it",
                path.display(),
                metadata.permissions().mode() & 0o777
            )));
        }
        let text = Zeroizing::new(
            fs::read_to_string(path).map_err(JournalError::io("read master key", path))?,
        );
        Self::from_text(&text)
            .map_err(|reason| JournalError::Key(format!("{}: {reason}", path.display())))
    }

    fn from_text(text: &str) -> std::result::Result<Self, &'static str> {
        let encoded = text
            .trim()
            .strip_prefix(MASTER_KEY_MAGIC)
            .ok_or("not a seclog master key file")?;
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(encoded.trim(), bytes.as_mut_slice())
            .map_err(|_| "malformed key material")?;
        Ok(MasterKey(SecretKey::from_bytes(*bytes), None))
    }

    /// Encrypts a data key for storage, bound to `context` (what the key is for).
    pub fn wrap(&self, data_key: &SecretKey, context: &[u8]) -> Result<Vec<u8>> {
        self.0.seal(
            data_key.expose(),
            &[b"seclog-wrap-v1:".as_slice(), context].concat(),
        )
    }

    /// Decrypts a wrapped data key; fails if it was wrapped for another context or altered.
    pub fn unwrap_key(&self, wrapped: &[u8], context: &[u8]) -> Result<SecretKey> {
        let plain = Zeroizing::new(
            self.open_any(wrapped, &[b"seclog-wrap-v1:".as_slice(), context].concat())?,
        );
        let bytes: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| JournalError::Key("wrapped key has the wrong length".into()))?;
        Ok(SecretKey::from_bytes(bytes))
    }

    /// Encrypts arbitrary secret state (the signing seed) bound to `context`.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>> {
        self.0.seal(plaintext, context)
    }

    /// Decrypts what [`MasterKey::seal`] produced.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(self.open_any(sealed, context)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_is_bound_to_context_and_detects_alteration() {
        let master = MasterKey::generate().unwrap();
        let data_key = SecretKey::generate().unwrap();
        let wrapped = master.wrap(&data_key, b"g/1").unwrap();
        assert_eq!(
            master.unwrap_key(&wrapped, b"g/1").unwrap().expose(),
            data_key.expose()
        );
        assert!(master.unwrap_key(&wrapped, b"g/2").is_err());
        let mut altered = wrapped;
        altered[30] ^= 1;
        assert!(master.unwrap_key(&altered, b"g/1").is_err());
    }

    #[test]
    fn a_rotation_keyring_opens_under_both_keys_and_wraps_under_the_new_one() {
        let old = MasterKey::generate().unwrap();
        let new = MasterKey::generate().unwrap();
        let data_key = SecretKey::generate().unwrap();
        let under_old = old.wrap(&data_key, b"g/1").unwrap();
        let keyring = new.with_fallback(&old);
        assert_eq!(
            keyring.unwrap_key(&under_old, b"g/1").unwrap().expose(),
            data_key.expose()
        );
        let rewrapped = keyring.wrap(&data_key, b"g/1").unwrap();
        assert!(new.unwrap_key(&rewrapped, b"g/1").is_ok());
        assert!(old.unwrap_key(&rewrapped, b"g/1").is_err());
        assert_ne!(old.fingerprint(), new.fingerprint());
        assert_eq!(keyring.fingerprint(), new.fingerprint());
        // A provider's text: the file format or the hex alone; errors never quote it.
        let text = new.to_text();
        let hex = text.split_whitespace().last().unwrap();
        assert_eq!(
            MasterKey::parse(&text).unwrap().fingerprint(),
            new.fingerprint()
        );
        assert_eq!(
            MasterKey::parse(hex).unwrap().fingerprint(),
            new.fingerprint()
        );
        let error = MasterKey::parse(&hex[..60]).unwrap_err();
        assert!(!error.contains(&hex[..60]));
    }

    #[test]
    fn master_key_file_round_trip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/master.key");
        let created = MasterKey::create(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let loaded = MasterKey::load(&path).unwrap();
        assert_eq!(created.0.expose(), loaded.0.expose());
        assert!(MasterKey::create(&path).is_err(), "never overwrites a key");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(MasterKey::load(&path).is_err());
    }
}
