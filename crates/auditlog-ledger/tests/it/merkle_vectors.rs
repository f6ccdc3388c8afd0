//! Published RFC 6962 Merkle tree vectors, checked against every way this crate computes roots
//! and proofs (`root_of`, `Frontier`, `MemoryTree`, `TileWriter`, `TileReader`).
//!
//! Sources (github.com/transparency-dev/merkle, Apache-2.0):
//! - `testonly/constants.go`: the 8 RFC 6962 leaf inputs, every complete node hash and the roots
//!   of sizes 0..=8;
//! - `proof/verify_test.go`: inclusion and consistency proofs and the corruption probes;
//! - `proof/proof_test.go`: which nodes make up each proof (combined here with the node hashes
//!   of constants.go into exact expected proofs);
//! - `rfc6962/rfc6962_test.go`: the empty root and leaf hashes;
//! - `testdata/{inclusion,consistency}/N/*.json`: copied verbatim into `testdata/`.

use std::collections::HashMap;

use auditlog_ledger::merkle::{
    Frontier, MemoryTree, NodeReader, consistency_proof, empty_root, inclusion_proof, root_at,
    root_of, verify_consistency, verify_inclusion,
};
use auditlog_ledger::tiles::{FetchedTile, TileReader, TileWriter};
use auditlog_ledger::{Hash, LedgerError, leaf_hash, node_hash};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::{hex_bytes, hex_hash};

/// testonly/constants.go LeafInputs().
const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// testonly/constants.go NodeHashes(): [level][index] of every complete subtree.
const NODE_HASHES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// testonly/constants.go RootHashes(): roots of sizes 0..=8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// proof/verify_test.go inclusionProofs: (1-based leaf, tree size, proof).
const INCLUSION_PROOFS: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        3,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        2,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// proof/verify_test.go consistencyProofs: (size1, size2, proof).
const CONSISTENCY_PROOFS: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// proof/verify_test.go sha256SomeHash.
const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

fn leaves() -> Vec<Hash> {
    LEAF_INPUTS
        .iter()
        .map(|input| leaf_hash(&hex_bytes(input)))
        .collect()
}

fn node(level: usize, index: usize) -> Hash {
    hex_hash(NODE_HASHES[level][index])
}

fn root(size: usize) -> Hash {
    hex_hash(ROOTS[size])
}

fn hashes(list: &[&str]) -> Vec<Hash> {
    list.iter().map(|h| hex_hash(h)).collect()
}

/// The 8-leaf tree as stored tiles: one partial level-0 tile of width 8.
fn tile_store() -> HashMap<(u8, u64), Vec<u8>> {
    let mut writer = TileWriter::new();
    for leaf in leaves() {
        writer.append(leaf);
    }
    writer
        .take_dirty()
        .into_iter()
        .map(|(id, bytes)| ((id.level, id.index), bytes))
        .collect()
}

fn tile_reader(
    store: &HashMap<(u8, u64), Vec<u8>>,
) -> TileReader<impl FnMut(u8, u64) -> FetchedTile + '_> {
    TileReader::new(move |level, index| Ok(store.get(&(level, index)).cloned()))
}

#[test]
fn rfc6962_hasher_vectors_match() {
    // rfc6962/rfc6962_test.go: `echo -n | sha256sum`, `echo -n 00 | xxd -r -p | sha256sum`,
    // `echo -n 004C313233343536 | xxd -r -p | sha256sum`.
    assert_eq!(
        empty_root(),
        hex_hash("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(
        leaf_hash(b""),
        hex_hash("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    );
    assert_eq!(
        leaf_hash(b"L123456"),
        hex_hash("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    );
}

#[test]
fn leaf_and_node_hashes_match_the_reference_tree() {
    let leaves = leaves();
    for (i, leaf) in leaves.iter().enumerate() {
        assert_eq!(*leaf, node(0, i), "leaf {i}");
    }
    for (level, row) in NODE_HASHES.iter().enumerate().skip(1) {
        for index in 0..row.len() {
            assert_eq!(
                node_hash(&node(level - 1, 2 * index), &node(level - 1, 2 * index + 1)),
                node(level, index),
                "node ({level}, {index})"
            );
        }
    }
}

#[test]
fn roots_of_every_prefix_match_the_reference_roots() {
    let leaves = leaves();
    let mut frontier = Frontier::new();
    let mut memory = MemoryTree::new();
    let mut writer = TileWriter::new();
    assert_eq!(frontier.root(), root(0));
    assert_eq!(memory.root(), root(0));
    assert_eq!(writer.root(), root(0));
    assert_eq!(root_of(&[]), root(0));
    for (i, leaf) in leaves.iter().enumerate() {
        frontier.push(*leaf);
        memory.push(*leaf);
        writer.append(*leaf);
        let size = i + 1;
        assert_eq!(root_of(&leaves[..size]), root(size), "root_of {size}");
        assert_eq!(frontier.root(), root(size), "frontier {size}");
        assert_eq!(memory.root(), root(size), "memory tree {size}");
        assert_eq!(writer.root(), root(size), "tile writer {size}");
    }
    let store = tile_store();
    for size in 0..=8u64 {
        assert_eq!(root_at(size, &mut memory).ok(), Some(root(size as usize)));
        let mut reader = tile_reader(&store);
        assert_eq!(root_at(size, &mut reader).ok(), Some(root(size as usize)));
    }
}

#[test]
fn stored_nodes_match_the_reference_node_hashes() {
    let mut memory = MemoryTree::from_leaves(&leaves());
    let store = tile_store();
    let mut reader = tile_reader(&store);
    for (level, row) in NODE_HASHES.iter().enumerate() {
        for index in 0..row.len() {
            let want = node(level, index);
            assert_eq!(memory.node(level as u8, index as u64).ok(), Some(want));
            assert_eq!(reader.node(level as u8, index as u64).ok(), Some(want));
        }
    }
}

#[test]
fn inclusion_proofs_match_verify_test_vectors() {
    let leaves = leaves();
    let mut memory = MemoryTree::from_leaves(&leaves);
    let store = tile_store();
    for (leaf, size, proof) in INCLUSION_PROOFS {
        let index = leaf - 1;
        let want = hashes(proof);
        let from_memory = inclusion_proof(index, size, &mut memory).expect("memory proof");
        let from_tiles =
            inclusion_proof(index, size, &mut tile_reader(&store)).expect("tile proof");
        assert_eq!(from_memory, want, "inclusion {index} in {size}");
        assert_eq!(from_tiles, want, "inclusion {index} in {size} via tiles");
        let leaf_hash = leaves[index as usize];
        let root = root(size as usize);
        assert!(verify_inclusion(index, size, &leaf_hash, &want, &root).is_ok());
        for (desc, probe) in corrupt_inclusion(index, size, &want, &root, &leaf_hash) {
            assert!(
                probe().is_err(),
                "inclusion {index} in {size}: {desc} verified"
            );
        }
    }
}

type Probe<'a> = Box<dyn Fn() -> Result<(), LedgerError> + 'a>;

/// proof/verify_test.go corruptInclusionProof (probes whose inputs are not 32-byte hashes cannot
/// be expressed with `&Hash` and are left out).
fn corrupt_inclusion<'a>(
    index: u64,
    size: u64,
    proof: &'a [Hash],
    root: &'a Hash,
    leaf: &'a Hash,
) -> Vec<(String, Probe<'a>)> {
    let some = hex_hash(SOME_HASH);
    let empty = empty_root();
    let mut probes: Vec<(String, Probe<'a>)> = vec![
        (
            "index - 1".into(),
            Box::new(move || verify_inclusion(index.wrapping_sub(1), size, leaf, proof, root)),
        ),
        (
            "index + 1".into(),
            Box::new(move || verify_inclusion(index + 1, size, leaf, proof, root)),
        ),
        (
            "index ^ 2".into(),
            Box::new(move || verify_inclusion(index ^ 2, size, leaf, proof, root)),
        ),
        (
            "size * 2".into(),
            Box::new(move || verify_inclusion(index, size * 2, leaf, proof, root)),
        ),
        (
            "size / 2".into(),
            Box::new(move || verify_inclusion(index, size / 2, leaf, proof, root)),
        ),
        (
            "empty root".into(),
            Box::new(move || verify_inclusion(index, size, leaf, proof, &empty)),
        ),
        (
            "random root".into(),
            Box::new(move || verify_inclusion(index, size, leaf, proof, &some)),
        ),
        (
            "trailing root".into(),
            Box::new(move || {
                let longer: Vec<Hash> = proof.iter().copied().chain([*root]).collect();
                verify_inclusion(index, size, leaf, &longer, root)
            }),
        ),
        (
            "preceding root".into(),
            Box::new(move || {
                let longer: Vec<Hash> = [*root].into_iter().chain(proof.iter().copied()).collect();
                verify_inclusion(index, size, leaf, &longer, root)
            }),
        ),
    ];
    for i in 0..proof.len() {
        probes.push((
            format!("modified proof[{i}] bit 3"),
            Box::new(move || {
                let mut wrong = proof.to_vec();
                wrong[i][0] ^= 8;
                verify_inclusion(index, size, leaf, &wrong, root)
            }),
        ));
    }
    if !proof.is_empty() {
        probes.push((
            "removed component".into(),
            Box::new(move || verify_inclusion(index, size, leaf, &proof[..proof.len() - 1], root)),
        ));
    }
    if proof.len() > 1 {
        probes.push((
            "inserted component".into(),
            Box::new(move || {
                let mut wrong = vec![proof[0], some];
                wrong.extend_from_slice(&proof[1..]);
                verify_inclusion(index, size, leaf, &wrong, root)
            }),
        ));
    }
    probes
}

#[test]
fn consistency_proofs_match_verify_test_vectors() {
    let mut memory = MemoryTree::from_leaves(&leaves());
    let store = tile_store();
    for (from, to, proof) in CONSISTENCY_PROOFS {
        let want = hashes(proof);
        assert_eq!(
            consistency_proof(from, to, &mut memory).expect("memory proof"),
            want,
            "consistency {from} to {to}"
        );
        assert_eq!(
            consistency_proof(from, to, &mut tile_reader(&store)).expect("tile proof"),
            want,
            "consistency {from} to {to} via tiles"
        );
        let (from_root, to_root) = (root(from as usize), root(to as usize));
        assert!(verify_consistency(from, to, &from_root, &to_root, &want).is_ok());
        if want.is_empty() {
            continue;
        }
        for (desc, probe) in corrupt_consistency(from, to, &from_root, &to_root, &want) {
            assert!(
                probe().is_err(),
                "consistency {from} to {to}: {desc} verified"
            );
        }
    }
}

/// proof/verify_test.go corruptConsistencyProof (minus the non-32-byte inputs).
fn corrupt_consistency<'a>(
    from: u64,
    to: u64,
    from_root: &'a Hash,
    to_root: &'a Hash,
    proof: &'a [Hash],
) -> Vec<(String, Probe<'a>)> {
    let with = move |extra_front: Option<Hash>, extra_back: Option<Hash>| -> Vec<Hash> {
        extra_front
            .into_iter()
            .chain(proof.iter().copied())
            .chain(extra_back)
            .collect()
    };
    let mut probes: Vec<(String, Probe<'a>)> = vec![
        (
            "from - 1".into(),
            Box::new(move || verify_consistency(from - 1, to, from_root, to_root, proof)),
        ),
        (
            "from + 1".into(),
            Box::new(move || verify_consistency(from + 1, to, from_root, to_root, proof)),
        ),
        (
            "from ^ 2".into(),
            Box::new(move || verify_consistency(from ^ 2, to, from_root, to_root, proof)),
        ),
        (
            "to * 2".into(),
            Box::new(move || verify_consistency(from, to * 2, from_root, to_root, proof)),
        ),
        (
            "to / 2".into(),
            Box::new(move || verify_consistency(from, to / 2, from_root, to_root, proof)),
        ),
        (
            "swapped roots".into(),
            Box::new(move || verify_consistency(from, to, to_root, from_root, proof)),
        ),
        (
            "empty proof".into(),
            Box::new(move || verify_consistency(from, to, from_root, to_root, &[])),
        ),
        (
            "trailing from root".into(),
            Box::new(move || {
                verify_consistency(from, to, from_root, to_root, &with(None, Some(*from_root)))
            }),
        ),
        (
            "trailing to root".into(),
            Box::new(move || {
                verify_consistency(from, to, from_root, to_root, &with(None, Some(*to_root)))
            }),
        ),
        (
            "preceding from root".into(),
            Box::new(move || {
                verify_consistency(from, to, from_root, to_root, &with(Some(*from_root), None))
            }),
        ),
        (
            "preceding to root".into(),
            Box::new(move || {
                verify_consistency(from, to, from_root, to_root, &with(Some(*to_root), None))
            }),
        ),
        (
            "preceding proof[0]".into(),
            Box::new(move || {
                verify_consistency(from, to, from_root, to_root, &with(Some(proof[0]), None))
            }),
        ),
        (
            "truncated proof".into(),
            Box::new(move || {
                verify_consistency(from, to, from_root, to_root, &proof[..proof.len() - 1])
            }),
        ),
    ];
    for i in 0..proof.len() {
        probes.push((
            format!("modified proof[{i}] bit 4"),
            Box::new(move || {
                let mut wrong = proof.to_vec();
                wrong[i][0] ^= 16;
                verify_consistency(from, to, from_root, to_root, &wrong)
            }),
        ));
    }
    probes
}

#[test]
fn proofs_are_made_of_the_nodes_proof_test_names() {
    // proof/proof_test.go TestInclusion and TestConsistency list the node ids of each proof;
    // "rehash(begin, end)" nodes fold into one ephemeral node, later (higher) nodes on the left.
    let ephemeral_ij = node_hash(&node(1, 2), &node(0, 6)); // l = hash(i, j)
    let inclusion: Vec<(u64, u64, Vec<Hash>)> = vec![
        (1, 0, vec![]),
        (2, 0, vec![node(0, 1)]),
        (2, 1, vec![node(0, 0)]),
        (3, 1, vec![node(0, 0), node(0, 2)]),
        (7, 0, vec![node(0, 1), node(1, 1), ephemeral_ij]),
        (7, 1, vec![node(0, 0), node(1, 1), ephemeral_ij]),
        (7, 2, vec![node(0, 3), node(1, 0), ephemeral_ij]),
        (7, 3, vec![node(0, 2), node(1, 0), ephemeral_ij]),
        (7, 4, vec![node(0, 5), node(0, 6), node(2, 0)]),
        (7, 5, vec![node(0, 4), node(0, 6), node(2, 0)]),
        (7, 6, vec![node(1, 2), node(2, 0)]),
        (4, 2, vec![node(0, 3), node(1, 0)]),
        (5, 3, vec![node(0, 2), node(1, 0), node(0, 4)]),
        (6, 3, vec![node(0, 2), node(1, 0), node(1, 2)]),
        (6, 4, vec![node(0, 5), node(2, 0)]),
    ];
    let leaves = leaves();
    let mut memory = MemoryTree::from_leaves(&leaves);
    let store = tile_store();
    for (size, index, want) in inclusion {
        assert_eq!(
            inclusion_proof(index, size, &mut memory).ok(),
            Some(want.clone()),
            "inclusion {index} in {size}"
        );
        assert_eq!(
            inclusion_proof(index, size, &mut tile_reader(&store)).ok(),
            Some(want.clone()),
            "inclusion {index} in {size} via tiles"
        );
        let leaf = leaves[index as usize];
        assert!(verify_inclusion(index, size, &leaf, &want, &root(size as usize)).is_ok());
    }

    let consistency: Vec<(u64, u64, Vec<Hash>)> = vec![
        (1, 2, vec![node(0, 1)]),
        (1, 4, vec![node(0, 1), node(1, 1)]),
        (1, 6, vec![node(0, 1), node(1, 1), node(1, 2)]),
        (2, 3, vec![node(0, 2)]),
        (2, 8, vec![node(1, 1), node(2, 1)]),
        (3, 7, vec![node(0, 2), node(0, 3), node(1, 0), ephemeral_ij]),
        (4, 7, vec![ephemeral_ij]),
        (5, 7, vec![node(0, 4), node(0, 5), node(0, 6), node(2, 0)]),
        (6, 7, vec![node(1, 2), node(0, 6), node(2, 0)]),
        (7, 8, vec![node(0, 6), node(0, 7), node(1, 2), node(2, 0)]),
        (1, 1, vec![]),
        (2, 2, vec![]),
        (3, 3, vec![]),
        (4, 4, vec![]),
        (5, 5, vec![]),
        (7, 7, vec![]),
        (8, 8, vec![]),
        (2, 4, vec![node(1, 1)]),
        (3, 5, vec![node(0, 2), node(0, 3), node(1, 0), node(0, 4)]),
        (3, 6, vec![node(0, 2), node(0, 3), node(1, 0), node(1, 2)]),
        (4, 6, vec![node(1, 2)]),
        (1, 7, vec![node(0, 1), node(1, 1), ephemeral_ij]),
    ];
    for (from, to, want) in consistency {
        assert_eq!(
            consistency_proof(from, to, &mut memory).ok(),
            Some(want.clone()),
            "consistency {from} to {to}"
        );
        assert_eq!(
            consistency_proof(from, to, &mut tile_reader(&store)).ok(),
            Some(want.clone()),
            "consistency {from} to {to} via tiles"
        );
        assert!(
            verify_consistency(from, to, &root(from as usize), &root(to as usize), &want).is_ok()
        );
    }
}

#[test]
fn proof_requests_outside_the_tree_are_errors() {
    // proof/proof_test.go error cases.
    let mut memory = MemoryTree::from_leaves(&leaves());
    for (size, index) in [(0, 0), (0, 1), (1, 2), (0, 3), (7, 8)] {
        assert!(matches!(
            inclusion_proof(index, size, &mut memory),
            Err(LedgerError::LeafIndex { .. })
        ));
    }
    for (from, to) in [(5, 0), (9, 8)] {
        assert!(matches!(
            consistency_proof(from, to, &mut memory),
            Err(LedgerError::SizeOrder { .. })
        ));
    }
    // A tree larger than what is stored is a missing node, not a panic.
    assert!(matches!(
        inclusion_proof(3, 9, &mut memory),
        Err(LedgerError::MissingNode { .. })
    ));
    assert!(consistency_proof(3, 100, &mut memory).is_err());
    assert!(root_at(9, &mut memory).is_err());
}

#[test]
fn verify_inclusion_rejects_degenerate_inputs() {
    // proof/verify_test.go TestVerifyInclusion and TestVerifyInclusionSingleEntry.
    let some = hex_hash(SOME_HASH);
    let empty = empty_root();
    for (index, size) in [(0, 0), (0, 1), (1, 0), (2, 1)] {
        assert!(verify_inclusion(index, size, &some, &[], &empty).is_err());
    }
    let hash = leaf_hash(b"data");
    assert!(verify_inclusion(0, 1, &hash, &[], &hash).is_ok());
    assert!(verify_inclusion(0, 1, &hash, &[], &some).is_err());
    assert!(verify_inclusion(0, 1, &some, &[], &hash).is_err());
}

#[test]
fn verify_consistency_edge_cases_follow_verify_test() {
    // proof/verify_test.go TestVerifyConsistency. Our size-0 rule is stricter: the old head of
    // an empty tree must be the empty root (Go accepts any), so "don't care" roots become it.
    let empty = empty_root();
    let (root1, root2) = (leaf_hash(b"don't care 1"), leaf_hash(b"don't care 2"));
    let cases: [(u64, u64, Hash, Hash, Vec<Hash>, bool); 13] = [
        (0, 0, root1, root2, vec![], false),
        (1, 1, root1, root2, vec![], false),
        (0, 0, empty, empty, vec![], true),
        (0, 1, empty, root2, vec![], true),
        (1, 1, root2, root2, vec![], true),
        (1, 0, root1, root2, vec![], false),
        (2, 1, root1, root2, vec![], false),
        (1, 2, root1, root2, vec![], false),
        (0, 0, empty, root2, vec![], false),
        (1, 1, empty, root2, vec![], false),
        (0, 0, empty, empty, vec![empty], false),
        (0, 1, empty, empty, vec![empty], false),
        (1, 1, empty, empty, vec![empty], false),
    ];
    for (from, to, from_root, to_root, proof, ok) in cases {
        assert_eq!(
            verify_consistency(from, to, &from_root, &to_root, &proof).is_ok(),
            ok,
            "{from} to {to}"
        );
    }
    // Go accepts a size-0 old tree with any head; we do not.
    assert!(verify_consistency(0, 1, &root1, &root2, &[]).is_err());
}

/// The fields of a transparency-dev JSON vector (serde_json is the only JSON dev-dependency,
/// without derive, so the cases are read as `Value`s).
struct Case {
    value: serde_json::Value,
}

impl Case {
    fn u64(&self, key: &str) -> u64 {
        self.value[key].as_u64().expect("unsigned field")
    }
    fn hash(&self, key: &str) -> Option<Hash> {
        b64_hash(self.value[key].as_str().expect("string field"))
    }
    fn proof(&self) -> Option<Vec<Hash>> {
        match &self.value["proof"] {
            serde_json::Value::Null => Some(Vec::new()),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|item| b64_hash(item.as_str().expect("string proof hash")))
                .collect(),
            other => panic!("proof is {other}"),
        }
    }
    fn want_err(&self) -> bool {
        self.value["wantErr"].as_bool().expect("wantErr")
    }
    fn desc(&self) -> &str {
        self.value["desc"].as_str().unwrap_or("")
    }
}

/// A base64 value of a JSON vector as a hash; `None` when it is not 32 bytes (such a value
/// cannot even be passed to the typed API, so the case counts as rejected).
fn b64_hash(s: &str) -> Option<Hash> {
    BASE64.decode(s).ok()?.try_into().ok()
}

fn fixtures(kind: &str) -> Vec<(String, String)> {
    let dir = format!(
        "{}/tests/it/testdata/transparency-dev-merkle/{kind}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|entry| {
            let path = entry.expect("dir entry").path();
            let text = std::fs::read_to_string(&path).expect("fixture");
            (path.display().to_string(), text)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10, "fixtures missing in {dir}");
    files
}

#[test]
fn transparency_dev_inclusion_fixtures_verify_as_expected() {
    for (path, text) in fixtures("inclusion") {
        let case = Case {
            value: serde_json::from_str(&text).expect("fixture json"),
        };
        let outcome = match (case.hash("root"), case.hash("leafHash"), case.proof()) {
            (Some(root), Some(leaf), Some(proof)) => verify_inclusion(
                case.u64("leafIdx"),
                case.u64("treeSize"),
                &leaf,
                &proof,
                &root,
            )
            .is_ok(),
            _ => false,
        };
        assert_eq!(outcome, !case.want_err(), "{path}: {}", case.desc());
    }
}

#[test]
fn transparency_dev_consistency_fixtures_verify_as_expected() {
    for (path, text) in fixtures("consistency") {
        let case = Case {
            value: serde_json::from_str(&text).expect("fixture json"),
        };
        let outcome = match (case.hash("root1"), case.hash("root2"), case.proof()) {
            (Some(root1), Some(root2), Some(proof)) => {
                verify_consistency(case.u64("size1"), case.u64("size2"), &root1, &root2, &proof)
                    .is_ok()
            }
            _ => false,
        };
        assert_eq!(outcome, !case.want_err(), "{path}: {}", case.desc());
    }
}
