//! Tile paths against the C2SP tlog-tiles examples (<https://c2sp.org/tlog-tiles>, "Merkle
//! Tree"), and the paths that must be refused.

use auditlog_ledger::LedgerError;
use auditlog_ledger::tiles::TileId;
use proptest::prelude::*;

fn id(level: u8, index: u64, width: u16) -> TileId {
    TileId {
        level,
        index,
        width,
    }
}

#[test]
fn tlog_tiles_examples_encode_and_parse() {
    // "index 1234067 will be encoded as x001/x234/067"; ".p/<W>" only for partial tiles.
    let cases = [
        (id(0, 1_234_067, 8), "tile/0/x001/x234/067.p/8"),
        (id(0, 1_234_067, 256), "tile/0/x001/x234/067"),
        (id(1, 0, 256), "tile/1/000"),
        (id(0, 1234, 5), "tile/0/x001/234.p/5"),
        (id(2, 0, 1), "tile/2/000.p/1"),
        (id(0, 999, 255), "tile/0/999.p/255"),
        (id(0, 1000, 256), "tile/0/x001/000"),
        (id(63, 5, 17), "tile/63/005.p/17"),
    ];
    for (tile, path) in cases {
        assert_eq!(tile.path(), path);
        assert_eq!(TileId::parse_path(path).ok(), Some(tile), "{path}");
    }
}

#[test]
fn non_canonical_or_foreign_paths_are_refused() {
    let bad = [
        "",
        "tile",
        "tile/",
        "tile/0",
        "tile/0/",
        "tile/0/000/",
        "/tile/0/000",
        "tiles/0/000",
        "tile/entries/000", // entry bundles are not hash tiles
        "tile/entries/000.p/5",
        "tile/00/000", // level with a leading zero
        "tile/64/000", // level above 63
        "tile/300/000",
        "tile/-1/000",
        "tile/a/000",
        "tile/0/1", // index element not 3 digits
        "tile/0/0001",
        "tile/0/1234",
        "tile/0/x1/234",
        "tile/0/001/234",   // inner element without x
        "tile/0/x001/x234", // last element with x
        "tile/0/x000/001",  // non-canonical leading zero group
        "tile/0/x01a/234",
        "tile/0/000.p/0",   // width 0
        "tile/0/000.p/256", // a full tile has no .p suffix
        "tile/0/000.p/08",  // width with a leading zero
        "tile/0/000.p/",
        "tile/0/000.p",
        "tile/0/000.q/5",
        "tile/0/000.p/5/6",
        "tile/0/x018/x446/x744/x073/x709/x551/616", // u64::MAX + 1
        "tile/0/x999/x999/x999/x999/x999/x999/999",
    ];
    for path in bad {
        assert!(
            matches!(TileId::parse_path(path), Err(LedgerError::TilePath { .. })),
            "accepted {path:?}"
        );
    }
}

proptest! {
    #[test]
    fn parse_path_inverts_path(level in 0u8..=63, index in any::<u64>(), width in 1u16..=256) {
        let tile = id(level, index, width);
        prop_assert_eq!(TileId::parse_path(&tile.path()).ok(), Some(tile));
    }

    #[test]
    fn parse_path_never_panics(path in "tile/[0-9x./pe]{0,40}") {
        let _ = TileId::parse_path(&path);
    }
}
