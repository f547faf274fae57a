//! Unit tests of the Merkle module: proofs against the RFC definitions, retention views.

use super::*;

const MAX_SIZE: usize = 70;

fn sample_leaves(count: usize) -> Vec<Hash> {
    (0..count as u64)
        .map(|i| leaf_hash(&i.to_be_bytes()))
        .collect()
}

fn hex(hash: &Hash) -> String {
    hash.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn naive_split(count: usize) -> usize {
    let mut split = 1;
    while split * 2 < count {
        split *= 2;
    }
    split
}

/// RFC 6962 §2.1 MTH, straight from the definition.
fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [leaf] => *leaf,
        _ => {
            let (left, right) = leaves.split_at(naive_split(leaves.len()));
            node_hash(&naive_root(left), &naive_root(right))
        }
    }
}

/// RFC 6962 §2.1.1 PATH(m, D[n]).
fn naive_path(index: usize, leaves: &[Hash]) -> Vec<Hash> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let split = naive_split(leaves.len());
    let (left, right) = leaves.split_at(split);
    let (mut path, sibling) = if index < split {
        (naive_path(index, left), naive_root(right))
    } else {
        (naive_path(index - split, right), naive_root(left))
    };
    path.push(sibling);
    path
}

/// RFC 6962 §2.1.2 SUBPROOF(m, D[n], b).
fn naive_subproof(old_size: usize, leaves: &[Hash], whole_old_tree: bool) -> Vec<Hash> {
    if old_size == leaves.len() {
        return if whole_old_tree {
            Vec::new()
        } else {
            vec![naive_root(leaves)]
        };
    }
    let split = naive_split(leaves.len());
    let (left, right) = leaves.split_at(split);
    let (mut proof, sibling) = if old_size <= split {
        (
            naive_subproof(old_size, left, whole_old_tree),
            naive_root(right),
        )
    } else {
        (
            naive_subproof(old_size - split, right, false),
            naive_root(left),
        )
    };
    proof.push(sibling);
    proof
}

fn frontier_of(leaves: &[Hash]) -> Frontier {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        frontier.push(*leaf);
    }
    frontier
}

#[test]
fn known_answers() {
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_eq!(hex(&empty_root()), empty);
    assert_eq!(hex(&root_of(&[])), empty);
    assert_eq!(
        hex(&leaf_hash(b"")),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
    let leaves = [leaf_hash(b"a"), leaf_hash(b"b")];
    let mut preimage = vec![0x01];
    preimage.extend_from_slice(&leaves[0]);
    preimage.extend_from_slice(&leaves[1]);
    assert_eq!(root_of(&leaves), <Hash>::from(Sha256::digest(&preimage)));
}

#[test]
fn frontier_tracks_naive_root_and_subtrees() {
    let leaves = sample_leaves(MAX_SIZE);
    let mut frontier = Frontier::new();
    for size in 0..=MAX_SIZE {
        let prefix = &leaves[..size];
        assert_eq!(frontier.size(), size as u64);
        assert_eq!(frontier.root(), naive_root(prefix), "size {size}");
        assert_eq!(root_of(prefix), naive_root(prefix));
        let mut offset = 0;
        let mut expected_nodes = Vec::new();
        for bit in (0..usize::BITS).rev().map(|bit| 1usize << bit) {
            if size & bit != 0 {
                expected_nodes.push(naive_root(&leaves[offset..offset + bit]));
                offset += bit;
            }
        }
        assert_eq!(frontier.nodes(), expected_nodes.as_slice(), "size {size}");
        if let Some(leaf) = leaves.get(size) {
            frontier.push(*leaf);
        }
    }
}

#[test]
fn from_parts_checks_node_count_and_size() {
    let frontier = frontier_of(&sample_leaves(5));
    assert_eq!(
        Frontier::from_parts(5, frontier.nodes().to_vec()),
        Ok(frontier.clone())
    );
    for wrong_count in [0, 1, 3] {
        let nodes = vec![[7u8; 32]; wrong_count];
        assert_eq!(
            Frontier::from_parts(5, nodes),
            Err(ProofError::InvalidFrontier {
                size: 5,
                node_count: wrong_count
            })
        );
    }
    assert!(matches!(
        Frontier::from_parts(0, vec![[0u8; 32]]),
        Err(ProofError::InvalidFrontier { .. })
    ));
    assert_eq!(Frontier::from_parts(0, Vec::new()), Ok(Frontier::new()));
    assert_eq!(
        Frontier::from_parts(u64::MAX, vec![[0u8; 32]; 64]),
        Err(ProofError::TreeTooLarge { size: u64::MAX })
    );
    assert!(Frontier::from_parts(MAX_TREE_SIZE, vec![[0u8; 32]]).is_ok());
}

#[test]
fn full_tree_proofs_match_rfc_definition_and_verify() {
    let leaves = sample_leaves(MAX_SIZE);
    let base = Frontier::new();
    let view = TreeView::new(&base, &leaves);
    assert_eq!(view.root(0), Ok(empty_root()));
    for size in 1..=MAX_SIZE {
        let prefix = &leaves[..size];
        let root = naive_root(prefix);
        let tree_size = size as u64;
        assert_eq!(view.root(tree_size), Ok(root), "size {size}");
        for (index, leaf) in prefix.iter().enumerate() {
            let proof = view
                .inclusion_proof(index as u64, tree_size)
                .expect("full tree");
            assert_eq!(
                proof,
                naive_path(index, prefix),
                "index {index} size {size}"
            );
            assert_eq!(
                verify_inclusion(index as u64, tree_size, leaf, &proof, &root),
                Ok(())
            );
            let other_leaf = leaf_hash(b"other");
            assert!(verify_inclusion(index as u64, tree_size, &other_leaf, &proof, &root).is_err());
        }
        for old_size in 1..=size {
            let old_root = naive_root(&leaves[..old_size]);
            let proof = view
                .consistency_proof(old_size as u64, tree_size)
                .expect("full tree");
            assert_eq!(
                proof,
                naive_subproof(old_size, prefix, true),
                "{old_size} -> {size}"
            );
            assert_eq!(
                verify_consistency(old_size as u64, tree_size, &old_root, &root, &proof),
                Ok(()),
                "{old_size} -> {size}"
            );
            assert!(
                verify_consistency(old_size as u64, tree_size, &root, &old_root, &proof).is_err()
                    || old_size == size
            );
        }
    }
}

#[test]
fn retained_leaves_prove_as_in_full_tree() {
    let leaves = sample_leaves(MAX_SIZE);
    let empty_base = Frontier::new();
    let full = TreeView::new(&empty_base, &leaves);
    // Full-tree answers, indexed by [size][index] and [size][old_size - 1].
    let sizes = 0..=MAX_SIZE as u64;
    let full_roots: Vec<_> = sizes.clone().map(|size| full.root(size)).collect();
    let full_inclusion: Vec<Vec<_>> = sizes
        .clone()
        .map(|size| {
            (0..size)
                .map(|index| full.inclusion_proof(index, size))
                .collect()
        })
        .collect();
    let full_consistency: Vec<Vec<_>> = sizes
        .clone()
        .map(|size| {
            (1..=size)
                .map(|old| full.consistency_proof(old, size))
                .collect()
        })
        .collect();
    for deleted in 0..=MAX_SIZE {
        let (gone, retained) = leaves.split_at(deleted);
        let base = frontier_of(gone);
        let view = TreeView::new(&base, retained);
        assert_eq!(view.size(), MAX_SIZE as u64);
        let mut resumed = base.clone();
        for leaf in retained {
            resumed.push(*leaf);
        }
        assert_eq!(resumed.root(), naive_root(&leaves));
        let deleted = deleted as u64;
        for size in sizes.clone() {
            let root = view.root(size);
            let full_root = &full_roots[size as usize];
            if size >= deleted {
                assert_eq!(&root, full_root, "deleted {deleted} size {size}");
            } else {
                assert!(&root == full_root || root == Err(ProofError::Pruned));
            }
            for (index, full_proof) in (0..size).zip(&full_inclusion[size as usize]) {
                let proof = view.inclusion_proof(index, size);
                if index < deleted {
                    assert_eq!(
                        proof,
                        Err(ProofError::Pruned),
                        "deleted {deleted} index {index}"
                    );
                } else {
                    assert_eq!(
                        &proof, full_proof,
                        "deleted {deleted} index {index} size {size}"
                    );
                }
            }
            for (old_size, full_proof) in (1..=size).zip(&full_consistency[size as usize]) {
                let proof = view.consistency_proof(old_size, size);
                if old_size >= deleted {
                    assert_eq!(&proof, full_proof, "deleted {deleted} {old_size} -> {size}");
                } else {
                    assert!(&proof == full_proof || proof == Err(ProofError::Pruned));
                }
            }
        }
    }
}

#[test]
fn range_hash_is_mth_of_any_range() {
    let leaves = sample_leaves(24);
    let base = Frontier::new();
    let view = TreeView::new(&base, &leaves);
    for start in 0..=leaves.len() {
        for end in start..=leaves.len() {
            let range = view.range_hash(start as u64, end as u64);
            assert_eq!(range, Ok(naive_root(&leaves[start..end])), "{start}..{end}");
        }
    }
    assert!(matches!(
        view.range_hash(3, 2),
        Err(ProofError::InvalidRange { .. })
    ));
    assert!(matches!(
        view.range_hash(0, 25),
        Err(ProofError::InvalidRange { .. })
    ));
    let pruned_base = frontier_of(&leaves[..16]);
    let pruned = TreeView::new(&pruned_base, &leaves[16..]);
    assert_eq!(pruned.range_hash(0, 16), view.range_hash(0, 16));
    assert_eq!(pruned.range_hash(0, 8), Err(ProofError::Pruned));
    assert_eq!(pruned.range_hash(15, 17), Err(ProofError::Pruned));
}

#[test]
fn views_reject_bad_requests() {
    let leaves = sample_leaves(8);
    let base = Frontier::new();
    let view = TreeView::new(&base, &leaves);
    let beyond = Err(ProofError::SizeBeyondTree {
        requested: 9,
        available: 8,
    });
    assert_eq!(view.root(9), beyond);
    assert_eq!(
        view.inclusion_proof(0, 9),
        beyond.clone().map(|_: Hash| Vec::new())
    );
    assert_eq!(
        view.consistency_proof(1, 9),
        beyond.map(|_: Hash| Vec::new())
    );
    assert_eq!(
        view.inclusion_proof(8, 8),
        Err(ProofError::IndexOutOfRange { index: 8, size: 8 })
    );
    assert_eq!(
        view.inclusion_proof(0, 0),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(
        view.consistency_proof(5, 4),
        Err(ProofError::OldSizeExceedsNew {
            old_size: 5,
            new_size: 4
        })
    );
    assert_eq!(view.consistency_proof(0, 4), Err(ProofError::EmptyOldTree));
    assert_eq!(view.consistency_proof(4, 4), Ok(Vec::new()));
}

#[test]
fn verifiers_reject_tampering_and_malformed_proofs() {
    let leaves = sample_leaves(21);
    let base = Frontier::new();
    let view = TreeView::new(&base, &leaves);
    let size = leaves.len() as u64;
    let root = naive_root(&leaves);
    for (index, leaf) in (0..size).zip(&leaves) {
        let proof = view.inclusion_proof(index, size).expect("full tree");
        for position in 0..proof.len() {
            let mut tampered = proof.clone();
            tampered[position][0] ^= 1;
            assert_eq!(
                verify_inclusion(index, size, leaf, &tampered, &root),
                Err(ProofError::RootMismatch)
            );
        }
        let mut longer = proof.clone();
        longer.push(root);
        assert!(matches!(
            verify_inclusion(index, size, leaf, &longer, &root),
            Err(ProofError::WrongProofLength { .. })
        ));
        if let Some((_, shorter)) = proof.split_last() {
            assert!(verify_inclusion(index, size, leaf, shorter, &root).is_err());
        }
        assert!(verify_inclusion(index ^ 1, size, leaf, &proof, &root).is_err());
    }
    for old_size in 1..size {
        let old_root = naive_root(&leaves[..old_size as usize]);
        let proof = view.consistency_proof(old_size, size).expect("full tree");
        for position in 0..proof.len() {
            let mut tampered = proof.clone();
            tampered[position][31] ^= 0x80;
            assert!(verify_consistency(old_size, size, &old_root, &root, &tampered).is_err());
        }
        let mut longer = proof.clone();
        longer.push(root);
        assert!(verify_consistency(old_size, size, &old_root, &root, &longer).is_err());
        assert!(verify_consistency(old_size, size, &old_root, &root, &proof[1..]).is_err());
        assert!(verify_consistency(old_size, size, &old_root, &root, &[]).is_err());
    }
    let any = [9u8; 32];
    assert_eq!(
        verify_inclusion(3, 3, &any, &[], &any),
        Err(ProofError::IndexOutOfRange { index: 3, size: 3 })
    );
    assert_eq!(
        verify_consistency(0, 0, &any, &any, &[]),
        Err(ProofError::EmptyOldTree)
    );
    assert_eq!(
        verify_consistency(0, 5, &any, &any, &[]),
        Err(ProofError::EmptyOldTree)
    );
    assert_eq!(
        verify_consistency(3, 2, &any, &any, &[]),
        Err(ProofError::OldSizeExceedsNew {
            old_size: 3,
            new_size: 2
        })
    );
    assert_eq!(verify_consistency(4, 4, &any, &any, &[]), Ok(()));
    assert_eq!(
        verify_consistency(4, 4, &any, &root, &[]),
        Err(ProofError::RootMismatch)
    );
    assert!(verify_consistency(4, 4, &any, &any, &[any]).is_err());
}

#[test]
fn verifiers_do_not_panic_on_extreme_sizes() {
    let any = [3u8; 32];
    let proof = vec![any; 130];
    for size in [1, 2, u64::MAX - 1, u64::MAX, 1 << 63, (1 << 63) + 1] {
        for index in [0, 1, size / 2, size - 1, size, u64::MAX] {
            for length in [0, 1, 63, 64, 65, 128] {
                let _ = verify_inclusion(index, size, &any, &proof[..length], &any);
                let _ = verify_consistency(index, size, &any, &any, &proof[..length]);
                let _ = verify_consistency(size, index, &any, &any, &proof[..length]);
            }
        }
    }
    assert_eq!(inclusion_proof_len(u64::MAX - 1, u64::MAX), 63);
    assert_eq!(inclusion_proof_len(0, u64::MAX), 64);
}

#[test]
fn aligned_subtree_pushes_equal_leaf_pushes() {
    let leaves: Vec<Hash> = (0u32..100).map(|n| leaf_hash(&n.to_le_bytes())).collect();
    for cut in [0usize, 1, 3, 4, 37, 64, 99] {
        let mut by_leaf = Frontier::new();
        let mut by_piece = Frontier::new();
        let mut position = 0usize;
        while position < leaves.len() {
            let limit = if position < cut { cut } else { leaves.len() };
            let mut height = 0u32;
            while position.is_multiple_of(1 << (height + 1))
                && position + (1 << (height + 1)) <= limit
            {
                height += 1;
            }
            let piece = &leaves[position..position + (1 << height)];
            by_piece.push_subtree(height, root_of(piece)).unwrap();
            for leaf in piece {
                by_leaf.push(*leaf);
            }
            assert_eq!(by_piece, by_leaf);
            position += 1 << height;
        }
        assert_eq!(by_piece.root(), root_of(&leaves));
    }
    let mut odd = Frontier::new();
    odd.push(leaves[0]);
    assert!(odd.push_subtree(1, leaves[1]).is_err(), "unaligned subtree");
}
