//! RFC 6962 / RFC 9162 Merkle tree hashing over SHA-256: roots, inclusion and consistency proofs.
//!
//! A leaf is hashed as `SHA-256(0x00 || leaf_input)` and an interior node as
//! `SHA-256(0x01 || left || right)`; the distinct prefixes keep a leaf from posing as a node. A tree
//! of `n > 1` leaves splits at `k`, the largest power of two below `n`: `MTH(D[0..n]) =
//! node_hash(MTH(D[0..k]), MTH(D[k..n]))`. The empty tree's root is `SHA-256("")`.
//!
//! Retention deletes the oldest leaves, but the tree must keep proving the rest. The first `b`
//! leaves form perfect subtrees, one per set bit of `b` (for `b = 6`: leaves `0..4` and `4..6`).
//! Their roots, a [`Frontier`], replace the deleted leaves: every node that a proof about a
//! retained leaf needs is either one of them or built from retained leaves, so a [`TreeView`] of
//! frontier plus retained leaf hashes produces the same roots and proofs as the full tree, and
//! answers [`ProofError::Pruned`] when asked about a deleted leaf.
//!
//! ```text
//!                root
//!              /      \
//!         [0..4)      [4..7)          b = 6 deleted: frontier = [0..4), [4..6)
//!         /    \      /    \          retained leaf: 6
//!      [0..2) [2..4) [4..6) 6
//! ```

use sha2::{Digest, Sha256};

/// A SHA-256 output: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// Largest tree size a [`Frontier`] accepts from [`Frontier::from_parts`]. It keeps
/// `frontier size + retained leaf count` inside `u64`.
pub const MAX_TREE_SIZE: u64 = 1 << 63;

/// Why a proof could not be produced or did not verify.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange {
        /// Requested leaf index.
        index: u64,
        /// Tree size the index was checked against.
        size: u64,
    },
    /// The proof has too few or too many hashes for the claimed sizes.
    #[error("proof has {actual} hashes, expected {expected}")]
    WrongProofLength {
        /// Length the sizes call for.
        expected: usize,
        /// Length received.
        actual: usize,
    },
    /// The root computed from the proof is not the claimed (new) root.
    #[error("computed root does not match the expected root")]
    RootMismatch,
    /// The old root computed from a consistency proof is not the claimed old root.
    #[error("computed old root does not match the expected old root")]
    OldRootMismatch,
    /// A consistency proof was asked for from a larger tree to a smaller one.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    OldSizeExceedsNew {
        /// Claimed old size.
        old_size: u64,
        /// Claimed new size.
        new_size: u64,
    },
    /// Consistency with the empty tree proves nothing, so it is neither produced nor accepted.
    #[error("consistency with an empty old tree proves nothing")]
    EmptyOldTree,
    /// The requested tree size is larger than the tree known to the view.
    #[error("tree size {requested} requested but only {available} leaves are known")]
    SizeBeyondTree {
        /// Requested tree size.
        requested: u64,
        /// Leaves known to the view.
        available: u64,
    },
    /// `start > end` or `end` beyond the tree in [`TreeView::range_hash`].
    #[error("leaf range {start}..{end} is invalid for a tree of {size} leaves")]
    InvalidRange {
        /// Range start (inclusive).
        start: u64,
        /// Range end (exclusive).
        end: u64,
        /// Leaves known to the view.
        size: u64,
    },
    /// The answer needs a leaf or node that retention deleted.
    #[error("the proof needs a leaf deleted by retention")]
    Pruned,
    /// [`Frontier::from_parts`] got a node count other than `size.count_ones()`.
    #[error("frontier of {size} leaves needs {} nodes, got {node_count}", size.count_ones())]
    InvalidFrontier {
        /// Claimed tree size.
        size: u64,
        /// Nodes supplied.
        node_count: usize,
    },
    /// [`Frontier::from_parts`] got a size above [`MAX_TREE_SIZE`].
    #[error("tree size {size} exceeds the maximum {MAX_TREE_SIZE}")]
    TreeTooLarge {
        /// Claimed tree size.
        size: u64,
    },
}

const LEAF_PREFIX: [u8; 1] = [0x00];
const NODE_PREFIX: [u8; 1] = [0x01];

/// Hash of one leaf: `SHA-256(0x00 || leaf_input)`.
pub fn leaf_hash(leaf_input: &[u8]) -> Hash {
    Sha256::new()
        .chain_update(LEAF_PREFIX)
        .chain_update(leaf_input)
        .finalize()
        .into()
}

/// Hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update(NODE_PREFIX)
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// Root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Root of the tree over `leaves` (leaf hashes, in order).
pub fn root_of(leaves: &[Hash]) -> Hash {
    slice_root(leaves)
}

/// Compact state of a tree of `size` leaves: the roots of its maximal perfect subtrees, left to
/// right (one per set bit of `size`, largest first). Enough to append leaves and compute the root,
/// and the base of a [`TreeView`] whose oldest leaves were deleted.
///
/// Invariant: `nodes.len() == size.count_ones()`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a frontier from its parts, e.g. read back from storage. Fails with
    /// [`ProofError::InvalidFrontier`] unless `nodes.len() == size.count_ones()`, and with
    /// [`ProofError::TreeTooLarge`] above [`MAX_TREE_SIZE`]. The hashes themselves cannot be
    /// checked here; a wrong one shows up as a root mismatch.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Result<Self, ProofError> {
        if size > MAX_TREE_SIZE {
            return Err(ProofError::TreeTooLarge { size });
        }
        if u32::try_from(nodes.len()) != Ok(size.count_ones()) {
            return Err(ProofError::InvalidFrontier {
                size,
                node_count: nodes.len(),
            });
        }
        Ok(Self { size, nodes })
    }

    /// Number of leaves summarised.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Roots of the maximal perfect subtrees, largest (leftmost) first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends a perfect subtree of `2^height` leaves whose root is `root`. The frontier's size
    /// must be a multiple of `2^height` (the subtree is aligned), as when a range is cut into
    /// aligned pieces from the left.
    pub fn push_subtree(&mut self, height: u32, root: Hash) -> Result<(), ProofError> {
        let width = 1u64
            .checked_shl(height)
            .filter(|width| *width <= MAX_TREE_SIZE)
            .ok_or(ProofError::TreeTooLarge { size: u64::MAX })?;
        let new_size = self
            .size
            .checked_add(width)
            .filter(|size| *size <= MAX_TREE_SIZE)
            .ok_or(ProofError::TreeTooLarge { size: u64::MAX })?;
        if !self.size.is_multiple_of(width) {
            return Err(ProofError::InvalidRange {
                start: self.size,
                end: new_size,
                size: self.size,
            });
        }
        self.merge_in(height, root);
        self.size = new_size;
        Ok(())
    }

    /// Appends one leaf hash. Equal-size subtrees merge as in a binary counter increment, so this
    /// is amortised O(1) hashes and allocates only when the node vector grows (at most 64 nodes).
    pub fn push(&mut self, leaf: Hash) {
        self.merge_in(0, leaf);
        // Cannot overflow: from_parts caps the size at 2^63, so this needs 2^63 pushes.
        self.size += 1;
    }

    /// Adds the aligned subtree of `2^height` leaves with root `root` to the nodes (not the size):
    /// each one bit of `size >> height` is a subtree as large as the merged one, absorbed in turn.
    fn merge_in(&mut self, height: u32, root: Hash) {
        let mut merged = root;
        let mut trailing_subtrees = self.size >> height;
        while trailing_subtrees & 1 == 1 {
            let Some(left) = self.nodes.pop() else {
                debug_assert!(
                    false,
                    "frontier invariant broken: fewer nodes than set bits"
                );
                break;
            };
            merged = node_hash(&left, &merged);
            trailing_subtrees >>= 1;
        }
        self.nodes.push(merged);
    }

    /// Root of the summarised tree; [`empty_root`] for size 0.
    pub fn root(&self) -> Hash {
        // MTH splits at the largest power of two, so the root nests subtrees to the right.
        let mut from_right = self.nodes.iter().rev();
        let Some(rightmost) = from_right.next() else {
            return empty_root();
        };
        from_right.fold(*rightmost, |right, left| node_hash(left, &right))
    }

    /// The frontier node spanning exactly leaves `start..end`, if there is one.
    fn node_for_range(&self, start: u64, end: u64) -> Option<Hash> {
        let mut offset = 0u64;
        let mut nodes = self.nodes.iter();
        for bit in (0..u64::BITS).rev() {
            let span = 1u64 << bit;
            if self.size & span == 0 {
                continue;
            }
            let node = nodes.next()?;
            if offset >= end {
                return None;
            }
            if offset == start && offset + span == end {
                return Some(*node);
            }
            offset += span;
        }
        None
    }
}

/// A tree whose first `base.size()` leaves are known only through a frontier (they were deleted
/// by retention) followed by explicit leaf hashes. Every proof that does not need a deleted leaf
/// works.
#[derive(Debug, Clone, Copy)]
pub struct TreeView<'a> {
    base: &'a Frontier,
    /// `leaves[i]` is the hash of leaf `base.size() + i`.
    leaves: &'a [Hash],
}

impl<'a> TreeView<'a> {
    /// A view of `base` followed by `leaves`; `leaves[i]` is leaf index `base.size() + i`.
    pub fn new(base: &'a Frontier, leaves: &'a [Hash]) -> Self {
        Self { base, leaves }
    }

    /// Total number of leaves, deleted and retained.
    pub fn size(&self) -> u64 {
        // No overflow: base.size() <= 2^63 and a slice holds fewer than 2^63 elements.
        self.base.size() + self.leaves.len() as u64
    }

    /// MTH of leaves `[start, end)` ([`empty_root`] when `start == end`). Fails with
    /// [`ProofError::InvalidRange`] if `start > end` or `end > self.size()`. Inside the deleted
    /// prefix only frontier nodes are known, so a range needing anything finer fails with
    /// [`ProofError::Pruned`]; ranges used by proofs about retained leaves never do.
    pub fn range_hash(&self, start: u64, end: u64) -> Result<Hash, ProofError> {
        if start > end || end > self.size() {
            return Err(ProofError::InvalidRange {
                start,
                end,
                size: self.size(),
            });
        }
        if start == end {
            return Ok(empty_root());
        }
        self.subtree_hash(start, end)
    }

    /// Root of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, ProofError> {
        self.check_size(size)?;
        self.range_hash(0, size)
    }

    /// RFC 6962 `PATH(index, D[0..size])`: sibling hashes from the leaf up to the root.
    /// [`ProofError::Pruned`] if the leaf was deleted by retention.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        if index < self.base.size() {
            return Err(ProofError::Pruned);
        }
        let mut proof = Vec::with_capacity(inclusion_proof_len(index, size));
        // Walk down from the root; each level contributes the sibling of the side holding `index`.
        let (mut start, mut end) = (0, size);
        while end - start > 1 {
            let split = start + largest_power_of_two_below(end - start);
            if index < split {
                proof.push(self.subtree_hash(split, end)?);
                end = split;
            } else {
                proof.push(self.subtree_hash(start, split)?);
                start = split;
            }
        }
        proof.reverse();
        Ok(proof)
    }

    /// RFC 6962 `PROOF(old_size, D[0..new_size])` (`SUBPROOF` with `b = true`). Empty when the sizes
    /// are equal; [`ProofError::EmptyOldTree`] for `old_size == 0`; [`ProofError::Pruned`] when a
    /// needed node lies inside the deleted prefix (possible only if `old_size < base.size()`).
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(new_size)?;
        if old_size > new_size {
            return Err(ProofError::OldSizeExceedsNew { old_size, new_size });
        }
        if old_size == 0 {
            return Err(ProofError::EmptyOldTree);
        }
        let mut proof = Vec::with_capacity(consistency_proof_len(old_size, new_size));
        // Walk down from the root along the old tree's right edge. `whole_old_tree` is SUBPROOF's
        // `b`: true while `[0, old_size)` is still one piece, whose root the verifier already has.
        let (mut start, mut end) = (0, new_size);
        let mut whole_old_tree = true;
        loop {
            if old_size == end {
                if !whole_old_tree {
                    proof.push(self.subtree_hash(start, end)?);
                }
                break;
            }
            let split = start + largest_power_of_two_below(end - start);
            if old_size <= split {
                proof.push(self.subtree_hash(split, end)?);
                end = split;
            } else {
                proof.push(self.subtree_hash(start, split)?);
                start = split;
                whole_old_tree = false;
            }
        }
        proof.reverse();
        Ok(proof)
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        if size > self.size() {
            return Err(ProofError::SizeBeyondTree {
                requested: size,
                available: self.size(),
            });
        }
        Ok(())
    }

    /// MTH of the non-empty, in-bounds range `[start, end)`.
    fn subtree_hash(&self, start: u64, end: u64) -> Result<Hash, ProofError> {
        debug_assert!(start < end && end <= self.size());
        let deleted = self.base.size();
        if start >= deleted {
            let retained = usize::try_from(start - deleted)
                .ok()
                .zip(usize::try_from(end - deleted).ok())
                .and_then(|(from, to)| self.leaves.get(from..to))
                .ok_or(ProofError::InvalidRange {
                    start,
                    end,
                    size: self.size(),
                })?;
            return Ok(slice_root(retained));
        }
        if end <= deleted {
            if let Some(node) = self.base.node_for_range(start, end) {
                return Ok(node);
            }
            if end - start == 1 {
                return Err(ProofError::Pruned);
            }
        }
        // Straddles the boundary, or may be a union of frontier nodes: recurse, left first. Deleted
        // leaves all lie left of retained ones, so a pruned range fails after O(log n) frontier
        // lookups and before hashing any retained leaf.
        let split = start + largest_power_of_two_below(end - start);
        Ok(node_hash(
            &self.subtree_hash(start, split)?,
            &self.subtree_hash(split, end)?,
        ))
    }
}

/// Verifies that `leaf` is leaf `index` of the tree of `size` leaves with root `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if root_from_inclusion(index, size, leaf, proof)? != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The root that an inclusion `proof` for `leaf` at `index` in a tree of `size` leaves leads
/// to (RFC 9162 §2.1.3.2 without the final comparison). Errors on malformed proofs.
pub fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    // RFC names: fn = `node_index`, sn = `last_index`, r = `computed`.
    let mut node_index = index;
    let mut last_index = size - 1;
    let mut computed = *leaf;
    for sibling in proof {
        if last_index == 0 {
            return Err(ProofError::WrongProofLength {
                expected,
                actual: proof.len(),
            });
        }
        if node_index & 1 == 1 || node_index == last_index {
            computed = node_hash(sibling, &computed);
            // A rightmost node without a right sibling moves up unchanged.
            while node_index & 1 == 0 && node_index != 0 {
                node_index >>= 1;
                last_index >>= 1;
            }
        } else {
            computed = node_hash(&computed, sibling);
        }
        node_index >>= 1;
        last_index >>= 1;
    }
    if last_index != 0 {
        return Err(ProofError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    Ok(computed)
}

/// Verifies that the tree of `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root` (RFC 9162 §2.1.4.2). Equal sizes need an empty proof
/// and equal roots; `old_size == 0` is rejected ([`ProofError::EmptyOldTree`]).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::OldSizeExceedsNew { old_size, new_size });
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength {
                expected: 0,
                actual: proof.len(),
            });
        }
        if old_root != new_root {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }
    let expected = consistency_proof_len(old_size, new_size);
    let wrong_length = ProofError::WrongProofLength {
        expected,
        actual: proof.len(),
    };
    if proof.len() != expected {
        return Err(wrong_length);
    }
    // Step 2: a power-of-two old tree is itself a node of the new tree and starts the path.
    let (seed, path) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        proof.split_first().ok_or(wrong_length.clone())?
    };
    // RFC names: fn = `node_index`, sn = `last_index`, fr = `old_computed`, sr = `new_computed`.
    let mut node_index = old_size - 1;
    let mut last_index = new_size - 1;
    while node_index & 1 == 1 {
        node_index >>= 1;
        last_index >>= 1;
    }
    let mut old_computed = *seed;
    let mut new_computed = *seed;
    for hash in path {
        if last_index == 0 {
            return Err(wrong_length);
        }
        if node_index & 1 == 1 || node_index == last_index {
            old_computed = node_hash(hash, &old_computed);
            new_computed = node_hash(hash, &new_computed);
            while node_index & 1 == 0 && node_index != 0 {
                node_index >>= 1;
                last_index >>= 1;
            }
        } else {
            new_computed = node_hash(&new_computed, hash);
        }
        node_index >>= 1;
        last_index >>= 1;
    }
    if last_index != 0 {
        return Err(wrong_length);
    }
    if old_computed != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if new_computed != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Largest power of two strictly below `n`; `n >= 2`.
fn largest_power_of_two_below(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (u64::BITS - 1).saturating_sub((n - 1).leading_zeros())
}

/// MTH of a slice of leaf hashes, recursing at most 64 levels deep and never allocating.
fn slice_root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [leaf] => *leaf,
        _ => {
            // `split < len`, so split_at cannot panic.
            let split = largest_power_of_two_below(leaves.len() as u64) as usize;
            let (left, right) = leaves.split_at(split);
            node_hash(&slice_root(left), &slice_root(right))
        }
    }
}

/// Splits the path of leaf `index` in a tree of `size` leaves (`index < size`) into the levels
/// below the point where it leaves the last leaf's path (`inner`) and the levels above it that
/// have a left sibling (`border`). The inclusion proof has `inner + border` hashes.
fn inclusion_path_shape(index: u64, size: u64) -> (u32, u32) {
    let inner = u64::BITS - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner, border)
}

fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let (inner, border) = inclusion_path_shape(index, size);
    (inner + border) as usize
}

/// Length of the consistency proof for `0 < old_size < new_size`.
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    let (inner, border) = inclusion_path_shape(old_size - 1, new_size);
    // The lowest `shift` levels lie inside the old tree's last perfect subtree, which is sent
    // whole, except when it is the entire old tree (the verifier already has that root).
    let shift = old_size.trailing_zeros();
    let old_subtree_root = u32::from(!old_size.is_power_of_two());
    (inner.saturating_sub(shift) + border + old_subtree_root) as usize
}

#[cfg(test)]
mod tests;
