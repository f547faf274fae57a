//! Runs the shared RFC 6962 proof vectors (`shared/data/merkle-vectors/{inclusion,consistency}`)
//! through the verifiers: every JSON file must verify when `wantErr` is false and fail when true.
//!
//! The vectors carry hashes as base64 byte strings, some deliberately of the wrong length, while
//! the verifiers take `[u8; 32]`. A wrong-length leaf hash is rejected while decoding, as the
//! reference verifier rejects it before hashing (one vector, a single-leaf tree whose empty leaf
//! hash equals its empty root, depends on that). Roots and proof entries are opaque values that
//! are only compared or hashed, so a wrong-length one becomes a tagged 32-byte stand-in: equal
//! inputs stay equal, no real tree hash can match it, and the verifier itself must reject it (one
//! vector, equal sizes with two equal 12-byte roots, expects success and depends on that).

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use seclog_journal::merkle::{Hash, verify_consistency, verify_inclusion};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InclusionVector {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsistencyVector {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/merkle-vectors")
}

/// Every `.json` file under `dir`, recursively, in a stable order.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = fs::read_dir(&current)
            .unwrap_or_else(|error| panic!("read {}: {error}", current.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .is_some_and(|extension| extension == "json")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn decode(path: &Path, base64: &str) -> Vec<u8> {
    STANDARD
        .decode(base64)
        .unwrap_or_else(|error| panic!("{}: bad base64 {base64:?}: {error}", path.display()))
}

/// A leaf hash must be exactly 32 bytes; `None` means the input is rejected while decoding.
fn decode_leaf_hash(path: &Path, base64: &str) -> Option<Hash> {
    Hash::try_from(decode(path, base64).as_slice()).ok()
}

/// A root or proof entry; a wrong-length value becomes an equality-preserving stand-in.
fn decode_opaque_hash(path: &Path, base64: &str) -> Hash {
    let bytes = decode(path, base64);
    Hash::try_from(bytes.as_slice()).unwrap_or_else(|_| {
        Sha256::new()
            .chain_update(b"merkle_vectors: not a 32-byte hash")
            .chain_update(&bytes)
            .finalize()
            .into()
    })
}

fn decode_proof(path: &Path, proof: Option<&[String]>) -> Vec<Hash> {
    proof
        .unwrap_or_default()
        .iter()
        .map(|hash| decode_opaque_hash(path, hash))
        .collect()
}

fn read_json<T: DeserializeOwned>(path: &Path) -> T {
    let text =
        fs::read_to_string(path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("parse {}: {error}", path.display()))
}

/// Runs one vector file through its verifier.
type VectorRunner = fn(&Path) -> Outcome;

/// How one vector came out.
struct Outcome {
    as_expected: bool,
    /// Rejected while decoding, before reaching the verifier.
    rejected_by_decoder: bool,
    desc: String,
}

fn run_inclusion(path: &Path) -> Outcome {
    let vector: InclusionVector = read_json(path);
    let root = decode_opaque_hash(path, &vector.root);
    let proof = decode_proof(path, vector.proof.as_deref());
    let leaf = decode_leaf_hash(path, &vector.leaf_hash);
    let verified = leaf.is_some_and(|leaf| {
        verify_inclusion(vector.leaf_idx, vector.tree_size, &leaf, &proof, &root).is_ok()
    });
    Outcome {
        as_expected: verified != vector.want_err,
        rejected_by_decoder: leaf.is_none(),
        desc: vector.desc,
    }
}

fn run_consistency(path: &Path) -> Outcome {
    let vector: ConsistencyVector = read_json(path);
    let old_root = decode_opaque_hash(path, &vector.root1);
    let new_root = decode_opaque_hash(path, &vector.root2);
    let proof = decode_proof(path, vector.proof.as_deref());
    let verified =
        verify_consistency(vector.size1, vector.size2, &old_root, &new_root, &proof).is_ok();
    Outcome {
        as_expected: verified != vector.want_err,
        rejected_by_decoder: false,
        desc: vector.desc,
    }
}

#[test]
fn shared_vectors_verify_as_expected() {
    let root = vectors_dir();
    if fs::metadata(&root).is_err() {
        eprintln!("skipping: no merkle vectors at {}", root.display());
        return;
    }
    let mut checked = 0usize;
    let mut rejected_by_decoder = 0usize;
    let mut failures = Vec::new();
    let suites: [(&str, VectorRunner); 2] = [
        ("inclusion", run_inclusion),
        ("consistency", run_consistency),
    ];
    for (suite, run) in suites {
        let files = json_files(&root.join(suite));
        assert!(
            !files.is_empty(),
            "no {suite} vectors under {}",
            root.display()
        );
        for path in files {
            let outcome = run(&path);
            checked += 1;
            rejected_by_decoder += usize::from(outcome.rejected_by_decoder);
            if !outcome.as_expected {
                failures.push(format!("{} ({})", path.display(), outcome.desc));
            }
        }
    }
    eprintln!(
        "checked {checked} merkle vectors ({rejected_by_decoder} rejected for a wrong-length leaf \
         hash before verifying), {} unexpected",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "vectors with an unexpected outcome:\n{}",
        failures.join("\n")
    );
    assert!(
        checked > 100,
        "only {checked} vectors found under {}",
        root.display()
    );
}
