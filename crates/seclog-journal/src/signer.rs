//! Forward-secure checkpoint signing.
//!
//! Time is cut into epochs of `epoch_secs` from `start`. Epoch `k` has a seed `s_k`, with
//! `s_{k+1} = SHA-256("seclog-fs-next-v1" || s_k)` (one-way), and an Ed25519 key pair derived from
//! `SHA-256("seclog-fs-sign-v1" || s_k)`. At `init` every epoch's public key is derived and the
//! verification key commits to all of them as the root of an RFC 6962 Merkle tree, then `s_0` is
//! discarded. The host keeps only the current seed (sealed by the master key, in one of two slots
//! of `keys/signing.state`); moving to a later epoch overwrites the older slot with zeros. Whoever
//! takes the host at epoch `k` can compute keys for `k` and later, never for earlier epochs, and
//! an auditor needs nothing secret to check a signature: the epoch's public key plus its Merkle
//! path to the verification key.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use seclog_model::Timestamp;
use zeroize::Zeroizing;

use crate::codec::{ByteReader, crc32};
use crate::crypto::{MasterKey, sha256};
use crate::error::{JournalError, Result};
use crate::fsutil;
use crate::layout::Layout;
use crate::merkle::{self, Frontier, Hash, TreeView};
use crate::textform::parse_hash;

const NANOS: i64 = 1_000_000_000;

/// How epochs are laid out in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochParams {
    /// Unix seconds at which epoch 0 starts.
    pub start_unix: i64,
    /// Length of one epoch.
    pub epoch_secs: u64,
    /// Number of epochs committed to by the verification key.
    pub count: u32,
}

impl EpochParams {
    /// One-hour epochs for five years from `start`.
    pub fn default_from(start: Timestamp) -> Self {
        EpochParams {
            start_unix: start.unix_seconds(),
            epoch_secs: 3600,
            count: 5 * 366 * 24,
        }
    }
}

/// The public verification key: epoch parameters and the Merkle root over every epoch public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationKey {
    /// Epoch layout.
    pub params: EpochParams,
    /// Root of the tree whose leaf `k` is epoch `k`'s public key.
    pub root: Hash,
}

impl VerificationKey {
    /// One line: `seclog-vk v1 start=<unix> epoch-secs=<n> epochs=<n> root=<hex>`.
    pub fn to_text(&self) -> String {
        format!(
            "seclog-vk v1 start={} epoch-secs={} epochs={} root={}\n",
            self.params.start_unix,
            self.params.epoch_secs,
            self.params.count,
            hex::encode(self.root)
        )
    }

    /// Parses [`VerificationKey::to_text`].
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut words = text.split_whitespace();
        if words.next() != Some("seclog-vk") || words.next() != Some("v1") {
            return Err("not a seclog verification key (expected 'seclog-vk v1 ...')".into());
        }
        let (mut start, mut epoch_secs, mut count, mut root) = (None, None, None, None);
        for word in words {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| format!("malformed field {word:?}"))?;
            match key {
                "start" => start = value.parse::<i64>().ok(),
                "epoch-secs" => epoch_secs = value.parse::<u64>().ok().filter(|secs| *secs > 0),
                "epochs" => count = value.parse::<u32>().ok().filter(|count| *count > 0),
                "root" => root = parse_hash(value),
                _ => return Err(format!("unknown field {key:?}")),
            }
        }
        let missing = |name: &str| format!("missing or invalid field {name}");
        Ok(VerificationKey {
            params: EpochParams {
                start_unix: start.ok_or_else(|| missing("start"))?,
                epoch_secs: epoch_secs.ok_or_else(|| missing("epoch-secs"))?,
                count: count.ok_or_else(|| missing("epochs"))?,
            },
            root: root.ok_or_else(|| missing("root"))?,
        })
    }

    /// Loads a verification key file.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text =
            fs::read_to_string(path).map_err(JournalError::io("read verification key", path))?;
        Self::parse(&text).map_err(|reason| JournalError::corrupt(path, reason))
    }

    /// The epoch containing `time`, if the key covers it.
    pub fn epoch_of(&self, time: Timestamp) -> Option<u32> {
        let since_start = time
            .unix_nanos()
            .checked_sub(self.params.start_unix.checked_mul(NANOS)?)?;
        if since_start < 0 {
            return None;
        }
        let epoch_nanos = i64::try_from(self.params.epoch_secs)
            .ok()?
            .checked_mul(NANOS)?;
        let epoch = u32::try_from(since_start / epoch_nanos).ok()?;
        (epoch < self.params.count).then_some(epoch)
    }

    /// Checks that `proof` is the public key of its epoch under this verification key.
    pub fn check_epoch_key(&self, proof: &EpochKeyProof) -> Result<(), String> {
        if proof.epoch >= self.params.count {
            return Err(format!(
                "epoch {} is beyond the verification key's {} epochs",
                proof.epoch, self.params.count
            ));
        }
        let leaf = epoch_leaf(proof.epoch, &proof.public_key);
        merkle::verify_inclusion(
            u64::from(proof.epoch),
            u64::from(self.params.count),
            &leaf,
            &proof.path,
            &self.root,
        )
        .map_err(|error| {
            format!(
                "epoch {} public key is not committed by the verification key: {error}",
                proof.epoch
            )
        })
    }

    /// Verifies a signature made at `time` by the key of the epoch `proof` claims.
    pub fn verify_signature(
        &self,
        proof: &EpochKeyProof,
        time: Timestamp,
        message: &[u8],
        signature: &[u8; 64],
    ) -> Result<(), String> {
        self.check_epoch_key(proof)?;
        match self.epoch_of(time) {
            Some(epoch) if epoch == proof.epoch => {}
            Some(epoch) => {
                return Err(format!(
                    "signed with the key of epoch {} but dated {} (epoch {epoch})",
                    proof.epoch, time
                ));
            }
            None => {
                return Err(format!(
                    "dated {time}, outside the verification key's epochs"
                ));
            }
        }
        let key = VerifyingKey::from_bytes(&proof.public_key)
            .map_err(|_| "malformed epoch public key".to_string())?;
        key.verify_strict(message, &Signature::from_bytes(signature))
            .map_err(|_| {
                format!(
                    "signature does not verify with the key of epoch {}",
                    proof.epoch
                )
            })
    }
}

/// An epoch's public key with its Merkle path to the verification key root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochKeyProof {
    /// The epoch.
    pub epoch: u32,
    /// Its Ed25519 public key.
    pub public_key: [u8; 32],
    /// Inclusion path of the key in the verification key's tree.
    pub path: Vec<Hash>,
}

impl EpochKeyProof {
    /// Binary form: `epoch u32 | public key | path_len u8 | path`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(37 + 32 * self.path.len());
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.public_key);
        out.push(self.path.len() as u8);
        for node in &self.path {
            out.extend_from_slice(node);
        }
        out
    }

    pub(crate) fn decode(reader: &mut ByteReader<'_>) -> Result<Self, String> {
        let short = |_| "epoch key record truncated".to_string();
        let epoch = reader.u32().map_err(short)?;
        let public_key = reader.array().map_err(short)?;
        let path_len = reader.u8().map_err(short)?;
        if path_len > 32 {
            return Err(format!("epoch key path of {path_len} nodes is too long"));
        }
        let mut path = Vec::with_capacity(usize::from(path_len));
        for _ in 0..path_len {
            path.push(reader.array().map_err(short)?);
        }
        Ok(EpochKeyProof {
            epoch,
            public_key,
            path,
        })
    }
}

fn next_seed(seed: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(sha256(&[b"seclog-fs-next-v1", seed]))
}

fn signing_key(seed: &[u8; 32]) -> SigningKey {
    let secret = Zeroizing::new(sha256(&[b"seclog-fs-sign-v1", seed]));
    SigningKey::from_bytes(&secret)
}

fn epoch_leaf(epoch: u32, public_key: &[u8; 32]) -> Hash {
    merkle::leaf_hash(
        &[
            b"seclog-epoch-key-v1".as_slice(),
            &epoch.to_le_bytes(),
            public_key,
        ]
        .concat(),
    )
}

const SLOT_SIZE: u64 = 128;
const SLOT_MAGIC: &[u8; 4] = b"SLSS";

fn slot_context(epoch: u32) -> Vec<u8> {
    [b"seclog-signing-state-v1:".as_slice(), &epoch.to_le_bytes()].concat()
}

/// The forward-secure signer: holds only the current epoch's seed.
pub struct Signer {
    state_path: PathBuf,
    master: MasterKey,
    verification_key: VerificationKey,
    pubkeys: Vec<[u8; 32]>,
    epoch_leaves: Vec<Hash>,
    epoch: u32,
    active_slot: u64,
    seed: Zeroizing<[u8; 32]>,
    key: SigningKey,
    proof: EpochKeyProof,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Signer")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Creates the signing state, the epoch public keys and the verification key for a new store.
    pub fn init(
        layout: &Layout,
        master: &MasterKey,
        params: EpochParams,
    ) -> Result<VerificationKey> {
        if params.count == 0 || params.epoch_secs == 0 {
            return Err(JournalError::Invalid(
                "epochs and epoch length must be positive".into(),
            ));
        }
        let first_seed: Zeroizing<[u8; 32]> = Zeroizing::new(crate::crypto::random_bytes()?);
        let mut seed = first_seed.clone();
        let mut pubkeys = Vec::with_capacity(params.count as usize * 32);
        let mut tree = Frontier::new();
        for epoch in 0..params.count {
            let public_key = signing_key(&seed).verifying_key().to_bytes();
            pubkeys.extend_from_slice(&public_key);
            tree.push(epoch_leaf(epoch, &public_key));
            seed = next_seed(&seed);
        }
        let verification_key = VerificationKey {
            params,
            root: tree.root(),
        };
        fsutil::create_dir_all_private(&layout.keys_dir())?;
        fsutil::write_atomic(&layout.epoch_pubkeys(), &pubkeys, 0o644)?;
        let mut state = vec![0u8; (SLOT_SIZE * 2) as usize];
        let slot = encode_slot(master, 0, &first_seed)?;
        state
            .get_mut(..slot.len())
            .ok_or_else(|| JournalError::Invalid("slot too large".into()))?
            .copy_from_slice(&slot);
        fsutil::write_atomic(&layout.signing_state(), &state, 0o600)?;
        fsutil::write_atomic(
            &layout.verification_key(),
            verification_key.to_text().as_bytes(),
            0o644,
        )?;
        // The genesis checkpoint: #0, empty, signed in epoch 0. `verify` requires it, so a store
        // rebuilt later by whoever holds a later epoch's key cannot pass for this one.
        let mut signer = Signer::open(layout, master)?;
        let start = Timestamp::from_unix_nanos(params.start_unix.saturating_mul(NANOS));
        let (mut log, _) = crate::checkpoint::CheckpointLog::open(layout)?;
        if log.last().is_none() {
            log.append(&mut signer, start, std::collections::BTreeMap::new())?;
        }
        Ok(verification_key)
    }

    /// Opens the signing state of an existing store.
    pub fn open(layout: &Layout, master: &MasterKey) -> Result<Self> {
        let verification_key = VerificationKey::load(&layout.verification_key())?;
        let pubkey_bytes = fs::read(layout.epoch_pubkeys())
            .map_err(JournalError::io("read", layout.epoch_pubkeys()))?;
        let pubkeys: Vec<[u8; 32]> = pubkey_bytes
            .chunks_exact(32)
            .filter_map(|chunk| chunk.try_into().ok())
            .collect();
        if pubkeys.len() != verification_key.params.count as usize {
            return Err(JournalError::corrupt(
                layout.epoch_pubkeys(),
                "wrong number of epoch public keys",
            ));
        }
        // Hashed once: the root check here, and every later epoch's key path, use these leaves.
        let epoch_leaves: Vec<Hash> = pubkeys
            .iter()
            .enumerate()
            .map(|(epoch, key)| epoch_leaf(epoch as u32, key))
            .collect();
        if merkle::root_of(&epoch_leaves) != verification_key.root {
            return Err(JournalError::corrupt(
                layout.epoch_pubkeys(),
                "epoch public keys do not match the verification key",
            ));
        }
        let state_path = layout.signing_state();
        let state = fs::read(&state_path).map_err(JournalError::io("read", &state_path))?;
        let mut best: Option<(u64, u32, Zeroizing<[u8; 32]>)> = None;
        for slot in 0..2u64 {
            let start = (slot * SLOT_SIZE) as usize;
            let Some(bytes) = state.get(start..start + SLOT_SIZE as usize) else {
                continue;
            };
            if let Some((epoch, seed)) = decode_slot(master, bytes)
                && best
                    .as_ref()
                    .is_none_or(|(_, best_epoch, _)| epoch > *best_epoch)
            {
                best = Some((slot, epoch, seed));
            }
        }
        let (active_slot, epoch, seed) = best.ok_or_else(|| {
            JournalError::Signing(format!(
                "{} holds no valid signing seed",
                state_path.display()
            ))
        })?;
        let key = signing_key(&seed);
        let proof = epoch_proof(&pubkeys, &epoch_leaves, epoch)?;
        if proof.public_key != key.verifying_key().to_bytes() {
            return Err(JournalError::Signing(
                "signing seed does not match the epoch public keys".into(),
            ));
        }
        let signer = Signer {
            state_path,
            master: master.clone(),
            verification_key,
            pubkeys,
            epoch_leaves,
            epoch,
            active_slot,
            seed,
            key,
            proof,
        };
        // A crash between writing the new slot and erasing the old one leaves both: erase now.
        signer.erase_slot(1 - active_slot)?;
        Ok(signer)
    }

    /// The verification key this signer's epochs belong to.
    pub fn verification_key(&self) -> &VerificationKey {
        &self.verification_key
    }

    /// The current epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// When the current epoch began: nothing signed now may be dated earlier.
    pub fn epoch_start(&self) -> Timestamp {
        let params = self.verification_key.params;
        let seconds = params.start_unix.saturating_add(
            i64::from(self.epoch)
                .saturating_mul(i64::try_from(params.epoch_secs).unwrap_or(i64::MAX)),
        );
        Timestamp::from_unix_nanos(seconds.saturating_mul(NANOS))
    }

    /// The current epoch's public key and path.
    pub fn epoch_proof(&self) -> &EpochKeyProof {
        &self.proof
    }

    /// Moves to the epoch of `now` (if later), erasing every older seed. Returns true if it moved.
    pub fn advance_for(&mut self, now: Timestamp) -> Result<bool> {
        let Some(target) = self.verification_key.epoch_of(now) else {
            return Err(JournalError::Signing(format!(
                "{now} is outside the verification key's epochs; create a new signing chain"
            )));
        };
        if target <= self.epoch {
            return Ok(false);
        }
        let mut seed = self.seed.clone();
        for _ in self.epoch..target {
            seed = next_seed(&seed);
        }
        let new_slot = 1 - self.active_slot;
        self.write_slot(new_slot, &encode_slot(&self.master, target, &seed)?)?;
        self.erase_slot(self.active_slot)?;
        self.key = signing_key(&seed);
        self.proof = epoch_proof(&self.pubkeys, &self.epoch_leaves, target)?;
        self.seed = seed;
        self.epoch = target;
        self.active_slot = new_slot;
        Ok(true)
    }

    /// Signs `message` with the current epoch's key.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    fn write_slot(&self, slot: u64, bytes: &[u8]) -> Result<()> {
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .open(&self.state_path)
            .map_err(JournalError::io("open", &self.state_path))?;
        let mut padded = vec![0u8; SLOT_SIZE as usize];
        padded
            .get_mut(..bytes.len())
            .ok_or_else(|| JournalError::Invalid("slot too large".into()))?
            .copy_from_slice(bytes);
        file.seek(SeekFrom::Start(slot * SLOT_SIZE))
            .map_err(JournalError::io("seek", &self.state_path))?;
        file.write_all(&padded)
            .map_err(JournalError::io("write", &self.state_path))?;
        file.sync_all()
            .map_err(JournalError::io("sync", &self.state_path))
    }

    fn erase_slot(&self, slot: u64) -> Result<()> {
        let mut current = vec![0u8; SLOT_SIZE as usize];
        let mut file =
            fs::File::open(&self.state_path).map_err(JournalError::io("open", &self.state_path))?;
        file.seek(SeekFrom::Start(slot * SLOT_SIZE))
            .map_err(JournalError::io("seek", &self.state_path))?;
        file.read_exact(&mut current)
            .map_err(JournalError::io("read", &self.state_path))?;
        if current.iter().all(|byte| *byte == 0) {
            return Ok(());
        }
        self.write_slot(slot, &[])
    }
}

/// The signing state file with every live slot re-sealed under `new` (opened with `keyring`,
/// which may hold both keys of a rotation); erased slots stay zero.
pub fn resealed_state(layout: &Layout, keyring: &MasterKey, new: &MasterKey) -> Result<Vec<u8>> {
    let path = layout.signing_state();
    let state = fs::read(&path).map_err(JournalError::io("read", &path))?;
    let mut out = vec![0u8; (SLOT_SIZE * 2) as usize];
    let mut live = 0;
    for slot in 0..2usize {
        let range = slot * SLOT_SIZE as usize..(slot + 1) * SLOT_SIZE as usize;
        let Some(bytes) = state.get(range.clone()) else {
            continue;
        };
        if bytes.iter().all(|byte| *byte == 0) {
            continue;
        }
        let (epoch, seed) = decode_slot(keyring, bytes).ok_or_else(|| {
            JournalError::Key(format!(
                "{}: a signing slot does not open with the master key",
                path.display()
            ))
        })?;
        let sealed = encode_slot(new, epoch, &seed)?;
        out.get_mut(range.start..range.start + sealed.len())
            .ok_or_else(|| JournalError::Invalid("slot too large".into()))?
            .copy_from_slice(&sealed);
        live += 1;
    }
    if live == 0 {
        return Err(JournalError::Key(format!(
            "{}: no live signing slot",
            path.display()
        )));
    }
    Ok(out)
}

fn encode_slot(master: &MasterKey, epoch: u32, seed: &[u8; 32]) -> Result<Vec<u8>> {
    let mut slot = Vec::with_capacity(SLOT_SIZE as usize);
    slot.extend_from_slice(SLOT_MAGIC);
    slot.extend_from_slice(&epoch.to_le_bytes());
    slot.extend_from_slice(&master.seal(seed, &slot_context(epoch))?);
    let crc = crc32(&[&slot]);
    slot.extend_from_slice(&crc.to_le_bytes());
    Ok(slot)
}

fn decode_slot(master: &MasterKey, bytes: &[u8]) -> Option<(u32, Zeroizing<[u8; 32]>)> {
    let mut reader = ByteReader::new(bytes);
    if &reader.array::<4>().ok()? != SLOT_MAGIC {
        return None;
    }
    let epoch = reader.u32().ok()?;
    let sealed = reader.take(24 + 32 + 16).ok()?;
    let body_len = reader.position();
    let crc = reader.u32().ok()?;
    if crc32(&[bytes.get(..body_len)?]) != crc {
        return None;
    }
    let plain = master.open(sealed, &slot_context(epoch)).ok()?;
    let seed: [u8; 32] = plain.as_slice().try_into().ok()?;
    Some((epoch, Zeroizing::new(seed)))
}

fn epoch_proof(pubkeys: &[[u8; 32]], leaves: &[Hash], epoch: u32) -> Result<EpochKeyProof> {
    let public_key = *pubkeys
        .get(epoch as usize)
        .ok_or_else(|| JournalError::Signing(format!("no public key for epoch {epoch}")))?;
    let base = Frontier::new();
    let path = TreeView::new(&base, leaves)
        .inclusion_proof(u64::from(epoch), leaves.len() as u64)
        .map_err(|error| JournalError::Signing(format!("epoch key path: {error}")))?;
    Ok(EpochKeyProof {
        epoch,
        public_key,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;

    fn setup(count: u32) -> (tempfile::TempDir, Layout, MasterKey, VerificationKey) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path(), None);
        let master = MasterKey::create(layout.master_key()).unwrap();
        let params = EpochParams {
            start_unix: 1_000,
            epoch_secs: 10,
            count,
        };
        let vk = Signer::init(&layout, &master, params).unwrap();
        (dir, layout, master, vk)
    }

    #[test]
    fn signatures_verify_only_in_their_epoch_and_old_seeds_are_erased() {
        let (_dir, layout, master, vk) = setup(50);
        let mut signer = Signer::open(&layout, &master).unwrap();
        let at = |secs: i64| Timestamp::from_unix_nanos(secs * NANOS);
        signer.advance_for(at(1_005)).unwrap();
        let early = signer.sign(b"m");
        let early_proof = signer.epoch_proof().clone();
        assert!(
            vk.verify_signature(&early_proof, at(1_005), b"m", &early)
                .is_ok()
        );
        assert!(
            vk.verify_signature(&early_proof, at(1_015), b"m", &early)
                .is_err(),
            "wrong epoch for the date"
        );
        assert!(
            vk.verify_signature(&early_proof, at(1_005), b"n", &early)
                .is_err()
        );

        assert!(signer.advance_for(at(1_033)).unwrap());
        assert_eq!(signer.epoch(), 3);
        // The later key cannot pass for epoch 0, with or without its own proof.
        let forged = signer.sign(b"m");
        assert!(
            vk.verify_signature(&early_proof, at(1_005), b"m", &forged)
                .is_err()
        );
        let late_proof = signer.epoch_proof().clone();
        assert!(
            vk.verify_signature(&late_proof, at(1_005), b"m", &forged)
                .is_err()
        );

        // Only one slot holds a seed, and it is for epoch 3: reopening cannot go back.
        drop(signer);
        let reopened = Signer::open(&layout, &master).unwrap();
        assert_eq!(reopened.epoch(), 3);
        let state = fs::read(layout.signing_state()).unwrap();
        let nonzero_slots = state
            .chunks(SLOT_SIZE as usize)
            .filter(|slot| slot.iter().any(|b| *b != 0))
            .count();
        assert_eq!(nonzero_slots, 1);
    }

    #[test]
    fn verification_key_text_round_trip_and_tampered_paths() {
        let (_dir, layout, master, vk) = setup(7);
        assert_eq!(VerificationKey::parse(&vk.to_text()).unwrap(), vk);
        let signer = Signer::open(&layout, &master).unwrap();
        let mut proof = signer.epoch_proof().clone();
        assert!(vk.check_epoch_key(&proof).is_ok());
        proof.public_key[0] ^= 1;
        assert!(vk.check_epoch_key(&proof).is_err());
        let other_master = MasterKey::create(&layout.keys_dir().join("other.key")).unwrap();
        assert!(
            Signer::open(&layout, &other_master).is_err(),
            "state is sealed by the master key"
        );
        let _ = SecretKey::generate();
    }
}
