//! Property tests: every way of computing a root agrees; every proof from a `MemoryTree` and from
//! stored tiles is the same and verifies; any change to a proof, an index or a size is caught;
//! a resumed `TileWriter` continues exactly where the original was.

use std::collections::HashMap;

use auditlog_ledger::merkle::{
    Frontier, MemoryTree, NodeReader, consistency_proof, inclusion_proof, root_at, root_of,
    verify_consistency, verify_inclusion,
};
use auditlog_ledger::tiles::{FetchedTile, TILE_WIDTH, TileId, TileReader, TileWriter};
use auditlog_ledger::{Hash, LedgerError, leaf_hash};
use proptest::prelude::*;

/// Stored tiles keyed like a tile store: the latest bytes of each (level, index).
type Store = HashMap<(u8, u64), Vec<u8>>;

fn leaves(n: u64, salt: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(&(i ^ (salt << 32)).to_le_bytes()))
        .collect()
}

fn store_dirty(store: &mut Store, dirty: Vec<(TileId, Vec<u8>)>) {
    for (id, bytes) in dirty {
        assert_eq!(
            bytes.len(),
            usize::from(id.width) * 32,
            "tile {}",
            id.path()
        );
        if let Some(old) = store.get(&(id.level, id.index)) {
            // Tiles only grow, and what was written stays: that is what makes them cacheable.
            assert!(bytes.starts_with(old), "tile {} was rewritten", id.path());
        }
        store.insert((id.level, id.index), bytes);
    }
}

/// Appends `leaves` to a writer, storing dirty tiles every `batch` appends and at the end.
fn build(leaves: &[Hash], batch: usize) -> (TileWriter, Store) {
    let mut writer = TileWriter::new();
    let mut store = Store::new();
    for (i, leaf) in leaves.iter().enumerate() {
        writer.append(*leaf);
        if (i + 1) % batch == 0 {
            store_dirty(&mut store, writer.take_dirty());
        }
    }
    store_dirty(&mut store, writer.take_dirty());
    (writer, store)
}

fn reader(store: &Store) -> TileReader<impl FnMut(u8, u64) -> FetchedTile + '_> {
    TileReader::new(move |level, index| Ok(store.get(&(level, index)).cloned()))
}

/// Checks every inclusion proof in the tree of `size` and every consistency proof into it, from
/// memory and from tiles, and that each verifies.
fn check_all_proofs(memory: &mut MemoryTree, store: &Store, size: u64) {
    let mut tiles = reader(store);
    let root = root_at(size, memory).expect("memory root");
    assert_eq!(
        root_at(size, &mut tiles).ok(),
        Some(root),
        "tile root of {size}"
    );
    let leaves = memory.leaves().to_vec();
    for index in 0..size {
        let proof = inclusion_proof(index, size, memory).expect("memory inclusion");
        let via_tiles = inclusion_proof(index, size, &mut tiles).expect("tile inclusion");
        assert_eq!(proof, via_tiles, "inclusion {index} in {size}");
        assert!(
            verify_inclusion(index, size, &leaves[index as usize], &proof, &root).is_ok(),
            "inclusion {index} in {size}"
        );
    }
    for from in 0..=size {
        let from_root = root_at(from, memory).expect("memory root");
        let proof = consistency_proof(from, size, memory).expect("memory consistency");
        let via_tiles = consistency_proof(from, size, &mut tiles).expect("tile consistency");
        assert_eq!(proof, via_tiles, "consistency {from} to {size}");
        assert!(
            verify_consistency(from, size, &from_root, &root, &proof).is_ok(),
            "consistency {from} to {size}"
        );
    }
}

#[test]
fn every_proof_of_every_small_tree_verifies() {
    let all = leaves(80, 1);
    let mut memory = MemoryTree::from_leaves(&all);
    let (_, store) = build(&all, 7);
    for size in 0..=80 {
        check_all_proofs(&mut memory, &store, size);
    }
}

#[test]
fn proofs_across_tile_boundaries_verify() {
    for n in [255, 256, 257, 511, 512, 513, 767, 768, 769] {
        let all = leaves(n, n);
        let mut memory = MemoryTree::from_leaves(&all);
        // Storing after every append exercises the most partial-tile versions.
        let (_, store) = build(&all, 1);
        check_all_proofs(&mut memory, &store, n);
    }
}

#[test]
fn a_tree_with_three_tile_levels_agrees_everywhere() {
    // 70,000 leaves: the tlog-tiles example size, with a partial tile at levels 0, 1 and 2.
    let n = 70_000;
    let all = leaves(n, 9);
    let mut memory = MemoryTree::from_leaves(&all);
    let (writer, store) = build(&all, 1000);
    assert_eq!(writer.root(), root_of(&all));
    assert_eq!(writer.root(), memory.root());
    let ids = TileWriter::right_edge_ids(n);
    assert_eq!(ids.len(), 3);
    for id in &ids {
        assert_eq!(
            store.get(&(id.level, id.index)).map(Vec::len),
            Some(usize::from(id.width) * 32),
            "edge tile {}",
            id.path()
        );
    }
    let mut tiles = reader(&store);
    for size in [1, 255, 256, 257, 65_535, 65_536, 65_537, 69_999, 70_000] {
        let root = root_at(size, &mut memory).expect("memory root");
        assert_eq!(root_at(size, &mut tiles).ok(), Some(root), "root of {size}");
        for index in [0, size / 3, size - 1] {
            let proof = inclusion_proof(index, size, &mut tiles).expect("tile inclusion");
            assert_eq!(
                inclusion_proof(index, size, &mut memory).ok(),
                Some(proof.clone())
            );
            assert!(verify_inclusion(index, size, &all[index as usize], &proof, &root).is_ok());
        }
        for from in [1, size / 2, size - 1] {
            let proof = consistency_proof(from, size, &mut tiles).expect("tile consistency");
            assert_eq!(
                consistency_proof(from, size, &mut memory).ok(),
                Some(proof.clone())
            );
            let from_root = root_at(from, &mut memory).expect("memory root");
            assert!(verify_consistency(from, size, &from_root, &root, &proof).is_ok());
        }
    }
}

#[test]
fn tile_reader_reports_missing_short_and_corrupt_tiles() {
    let all = leaves(300, 2);
    let (_, mut store) = build(&all, 300);
    // Level-0 tile 1 holds 44 hashes; asking for leaf 299's parent in a larger tree needs more.
    let mut tiles = reader(&store);
    assert!(tiles.node(0, 299).is_ok());
    assert!(matches!(
        tiles.node(1, 150),
        Err(LedgerError::ShortTile { .. })
    ));
    assert!(matches!(
        tiles.node(0, 600),
        Err(LedgerError::MissingTile { .. })
    ));
    assert!(matches!(
        tiles.node(64, 0),
        Err(LedgerError::MissingNode { .. })
    ));
    assert!(matches!(
        tiles.node(7, u64::MAX),
        Err(LedgerError::MissingNode { .. })
    ));
    drop(tiles);
    store.insert((0, 1), vec![0; 33]);
    assert!(matches!(
        reader(&store).node(0, 256),
        Err(LedgerError::CorruptTile { .. })
    ));
    store.insert((0, 1), vec![0; 257 * 32]);
    assert!(matches!(
        reader(&store).node(0, 256),
        Err(LedgerError::CorruptTile { .. })
    ));
    store.insert((0, 1), Vec::new());
    assert!(matches!(
        reader(&store).node(0, 256),
        Err(LedgerError::CorruptTile { .. })
    ));
    // Storage errors pass through.
    let mut failing = TileReader::new(|_, _| {
        Err(LedgerError::Fetch(Box::new(std::io::Error::other(
            "disk gone",
        ))))
    });
    assert!(matches!(failing.node(0, 0), Err(LedgerError::Fetch(_))));
}

#[test]
fn a_tile_reader_refetches_a_tile_that_grew() {
    let all = leaves(20, 3);
    let mut store = Store::new();
    let mut writer = TileWriter::new();
    for leaf in &all[..10] {
        writer.append(*leaf);
    }
    store_dirty(&mut store, writer.take_dirty());
    let shared = std::cell::RefCell::new(store);
    let mut tiles =
        TileReader::new(|level, index| Ok(shared.borrow().get(&(level, index)).cloned()));
    assert_eq!(tiles.node(0, 9).ok(), Some(all[9]));
    assert!(tiles.node(0, 15).is_err());
    for leaf in &all[10..] {
        writer.append(*leaf);
    }
    store_dirty(&mut shared.borrow_mut(), writer.take_dirty());
    assert_eq!(tiles.node(0, 15).ok(), Some(all[15]));
    assert_eq!(root_at(20, &mut tiles).ok(), Some(root_of(&all)));
}

#[test]
fn take_dirty_reports_full_tiles_once_and_partials_when_touched() {
    let mut writer = TileWriter::new();
    assert!(writer.take_dirty().is_empty());
    for leaf in leaves(600, 4) {
        writer.append(leaf);
    }
    let dirty: Vec<TileId> = writer.take_dirty().into_iter().map(|(id, _)| id).collect();
    let full = |level, index| TileId {
        level,
        index,
        width: 256,
    };
    assert_eq!(
        dirty,
        vec![
            full(0, 0),
            full(0, 1),
            TileId {
                level: 0,
                index: 2,
                width: 88
            },
            TileId {
                level: 1,
                index: 0,
                width: 2
            },
        ]
    );
    assert!(writer.take_dirty().is_empty(), "nothing changed since");
    writer.append(leaf_hash(b"one more"));
    let dirty: Vec<TileId> = writer.take_dirty().into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        dirty,
        vec![TileId {
            level: 0,
            index: 2,
            width: 89
        }]
    );
}

#[test]
fn resume_refuses_an_edge_that_does_not_fit() {
    let all = leaves(600, 5);
    let (_, store) = build(&all, 50);
    let edge = |size: u64| -> Vec<(TileId, Vec<u8>)> {
        TileWriter::right_edge_ids(size)
            .into_iter()
            .filter_map(|id| Some((id, store.get(&(id.level, id.index))?.clone())))
            .collect()
    };
    assert!(TileWriter::resume(600, edge(600)).is_ok());
    // Missing partial tile.
    let mut missing = edge(600);
    missing.remove(0);
    assert!(matches!(
        TileWriter::resume(600, missing),
        Err(LedgerError::RightEdge { .. })
    ));
    // A tile that is not on the edge.
    let mut extra = edge(600);
    extra.push((
        TileId {
            level: 0,
            index: 0,
            width: 256,
        },
        store[&(0, 0)].clone(),
    ));
    assert!(TileWriter::resume(600, extra).is_err());
    // Bytes that do not match the width.
    let mut wrong_len = edge(600);
    wrong_len[0].1.pop();
    assert!(TileWriter::resume(600, wrong_len).is_err());
    // Too narrow for the size.
    let mut narrow = edge(600);
    narrow[0].0.width -= 1;
    let narrow_len = usize::from(narrow[0].0.width) * 32;
    narrow[0].1.truncate(narrow_len);
    assert!(TileWriter::resume(600, narrow).is_err());
    // A full edge tile that does not hash to its parent's entry (size 512: level-0 tile 1 is
    // full and level-1 tile 0 holds its hash at position 1).
    let mut edge_512: Vec<(TileId, Vec<u8>)> = TileWriter::right_edge_ids(512)
        .into_iter()
        .map(|id| {
            let bytes = store[&(id.level, id.index)][..usize::from(id.width) * 32].to_vec();
            (id, bytes)
        })
        .collect();
    assert!(TileWriter::resume(512, edge_512.clone()).is_ok());
    edge_512[0].1[5] ^= 1;
    assert!(matches!(
        TileWriter::resume(512, edge_512),
        Err(LedgerError::CorruptTile { .. })
    ));
    assert!(TileWriter::resume(0, Vec::new()).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn all_roots_agree(n in 0u64..2000, batch in 1usize..400, salt in any::<u64>()) {
        let all = leaves(n, salt);
        let mut frontier = Frontier::new();
        let mut memory = MemoryTree::new();
        let mut writer = TileWriter::new();
        let mut store = Store::new();
        for (i, leaf) in all.iter().enumerate() {
            frontier.push(*leaf);
            memory.push(*leaf);
            writer.append(*leaf);
            prop_assert_eq!(writer.root(), frontier.root());
            if (i + 1) % batch == 0 {
                store_dirty(&mut store, writer.take_dirty());
                let size = i as u64 + 1;
                prop_assert_eq!(root_at(size, &mut reader(&store)).ok(), Some(memory.root()));
            }
        }
        store_dirty(&mut store, writer.take_dirty());
        let root = root_of(&all);
        prop_assert_eq!(frontier.root(), root);
        prop_assert_eq!(memory.root(), root);
        prop_assert_eq!(writer.root(), root);
        prop_assert_eq!(root_at(n, &mut reader(&store)).ok(), Some(root));
        prop_assert_eq!(frontier.size(), n);
        prop_assert_eq!(writer.size(), n);
        let resumed = Frontier::from_parts(n, frontier.hashes().to_vec());
        prop_assert_eq!(resumed.ok(), Some(frontier));
        // Every earlier root, read back from the final tiles.
        let mut tiles = reader(&store);
        for size in (0..=n).step_by(7) {
            prop_assert_eq!(root_at(size, &mut tiles).ok(), Some(root_of(&all[..size as usize])));
        }
    }

    #[test]
    fn every_proof_verifies_from_memory_and_tiles(n in 1u64..2000, batch in 1usize..700, salt in any::<u64>()) {
        let all = leaves(n, salt);
        let mut memory = MemoryTree::from_leaves(&all);
        let (_, store) = build(&all, batch);
        check_all_proofs(&mut memory, &store, n);
    }

}

proptest! {
    // Cheap cases: many of them.
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn tampered_inclusion_proofs_fail(
        n in 2u64..2000,
        index_pick in any::<u64>(),
        other_pick in any::<u64>(),
        element_pick in any::<usize>(),
        byte in 0usize..32,
        bit in 0u8..8,
        salt in any::<u64>(),
    ) {
        let all = leaves(n, salt);
        let mut memory = MemoryTree::from_leaves(&all);
        let index = index_pick % n;
        let root = memory.root();
        let leaf = all[index as usize];
        let proof = inclusion_proof(index, n, &mut memory).expect("proof");
        prop_assert!(verify_inclusion(index, n, &leaf, &proof, &root).is_ok());

        let mut flipped = proof.clone();
        let element = element_pick % flipped.len();
        flipped[element][byte] ^= 1 << bit;
        prop_assert!(verify_inclusion(index, n, &leaf, &flipped, &root).is_err());

        let other = other_pick % n;
        if other != index {
            prop_assert!(verify_inclusion(other, n, &leaf, &proof, &root).is_err());
            prop_assert!(verify_inclusion(other, n, &all[other as usize], &proof, &root).is_err());
        }
        prop_assert!(verify_inclusion(index, n * 2, &leaf, &proof, &root).is_err());
        prop_assert!(verify_inclusion(index, n / 2, &leaf, &proof, &root).is_err());
        prop_assert!(verify_inclusion(index, n, &leaf, &proof[..proof.len() - 1], &root).is_err());
        let mut longer = proof.clone();
        longer.push(root);
        prop_assert!(verify_inclusion(index, n, &leaf, &longer, &root).is_err());
        let mut wrong_root = root;
        wrong_root[byte] ^= 1 << bit;
        prop_assert!(verify_inclusion(index, n, &leaf, &proof, &wrong_root).is_err());
    }

    #[test]
    fn tampered_consistency_proofs_fail(
        to in 2u64..2000,
        from_pick in any::<u64>(),
        element_pick in any::<usize>(),
        byte in 0usize..32,
        bit in 0u8..8,
        salt in any::<u64>(),
    ) {
        let all = leaves(to, salt);
        let mut memory = MemoryTree::from_leaves(&all);
        let from = 1 + from_pick % (to - 1); // 1..to: the proof is never empty
        let from_root = root_at(from, &mut memory).expect("root");
        let to_root = memory.root();
        let proof = consistency_proof(from, to, &mut memory).expect("proof");
        prop_assert!(!proof.is_empty());
        prop_assert!(verify_consistency(from, to, &from_root, &to_root, &proof).is_ok());

        let mut flipped = proof.clone();
        let element = element_pick % flipped.len();
        flipped[element][byte] ^= 1 << bit;
        prop_assert!(verify_consistency(from, to, &from_root, &to_root, &flipped).is_err());

        prop_assert!(verify_consistency(from - 1, to, &from_root, &to_root, &proof).is_err());
        prop_assert!(verify_consistency(from + 1, to, &from_root, &to_root, &proof).is_err());
        prop_assert!(verify_consistency(from, to * 2, &from_root, &to_root, &proof).is_err());
        prop_assert!(verify_consistency(from, to / 2, &from_root, &to_root, &proof).is_err());
        prop_assert!(verify_consistency(from, to, &to_root, &from_root, &proof).is_err());
        prop_assert!(verify_consistency(from, to, &from_root, &to_root, &[]).is_err());
        prop_assert!(verify_consistency(from, to, &from_root, &to_root, &proof[..proof.len() - 1]).is_err());
        let mut longer = proof.clone();
        longer.push(to_root);
        prop_assert!(verify_consistency(from, to, &from_root, &to_root, &longer).is_err());
        let mut preceded = vec![from_root];
        preceded.extend_from_slice(&proof);
        prop_assert!(verify_consistency(from, to, &from_root, &to_root, &preceded).is_err());
    }

    #[test]
    fn a_resumed_writer_continues_to_the_same_tiles_and_roots(
        n in 0u64..3000,
        k_pick in any::<u64>(),
        batch in 1usize..600,
        from_latest in any::<bool>(),
        salt in any::<u64>(),
    ) {
        let all = leaves(n, salt);
        let k = k_pick % (n + 1);
        let (original, final_store) = build(&all, batch);

        // The store as it was when the writer had k leaves (what a restart at k finds), or the
        // final store, whose edge tiles may be wider than size k needs.
        let (_, store_at_k) = build(&all[..k as usize], batch);
        let source = if from_latest { &final_store } else { &store_at_k };
        let edge: Vec<(TileId, Vec<u8>)> = TileWriter::right_edge_ids(k)
            .into_iter()
            .filter_map(|id| {
                let bytes = source.get(&(id.level, id.index))?.clone();
                let width = u16::try_from(bytes.len() / 32).ok()?;
                Some((TileId { width, ..id }, bytes))
            })
            .collect();
        for (id, _) in &edge {
            prop_assert!(u64::from(id.width) <= TILE_WIDTH);
        }
        let mut resumed = TileWriter::resume(k, edge).expect("resume");
        prop_assert_eq!(resumed.size(), k);
        prop_assert_eq!(resumed.root(), root_of(&all[..k as usize]));

        let mut store = store_at_k;
        for (i, leaf) in all[k as usize..].iter().enumerate() {
            resumed.append(*leaf);
            if (i + 1) % batch == 0 {
                store_dirty(&mut store, resumed.take_dirty());
            }
        }
        store_dirty(&mut store, resumed.take_dirty());
        prop_assert_eq!(resumed.root(), original.root());
        prop_assert_eq!(store, final_store);
    }
}
