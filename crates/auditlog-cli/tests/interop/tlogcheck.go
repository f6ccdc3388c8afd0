// tlogcheck audits an auditlog tenant log with an implementation we did not write: Go's
// golang.org/x/mod/sumdb/tlog and sumdb/note (Debian's golang-golang-x-mod-dev).
//
//	go run tlogcheck.go BASE_URL TOKEN VERIFIER_KEY
//
// It verifies the checkpoint's signature, reads the hash tiles through the C2SP tlog-tiles
// endpoints (tlog.TileHashReader checks every tile against the signed root), and for a sample
// of leaves and older tree sizes compares auditlog's inclusion and consistency proofs with the
// ones Go computes from the tiles and checks both. Entry bundles must hash to the leaves.
// It prints "ok" and exits 0, or prints the first problem and exits 1.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var base, token string

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func get(path string) []byte {
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		fail("%v", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fail("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fail("GET %s: %v", path, err)
	}
	if resp.StatusCode != 200 {
		fail("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return body
}

// tiles reads hash tiles from the C2SP paths (Go's own paths carry the height: tile/8/L/N).
type tiles struct{}

func (tiles) Height() int { return 8 }

func (tiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, t := range ts {
		out[i] = get("/api/v1/tlog/tile/" + strings.TrimPrefix(t.Path(), "tile/8/"))
	}
	return out, nil
}

func (tiles) SaveTiles([]tlog.Tile, [][]byte) {}

func decodeHash(s string) tlog.Hash {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 32 {
		fail("not a base64 hash: %q", s)
	}
	var h tlog.Hash
	copy(h[:], b)
	return h
}

func main() {
	if len(os.Args) != 4 {
		fail("usage: tlogcheck BASE_URL TOKEN VERIFIER_KEY")
	}
	base, token = strings.TrimRight(os.Args[1], "/"), os.Args[2]
	verifier, err := note.NewVerifier(os.Args[3])
	if err != nil {
		fail("verifier key: %v", err)
	}

	// The checkpoint: a signed note whose text is origin, size, root (C2SP tlog-checkpoint).
	signed, err := note.Open(get("/api/v1/tlog/checkpoint"), note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint signature: %v", err)
	}
	lines := strings.Split(signed.Text, "\n")
	if len(lines) < 3 {
		fail("checkpoint text: %q", signed.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 1 {
		fail("checkpoint size: %q", lines[1])
	}
	tree := tlog.Tree{N: size, Hash: decodeHash(lines[2])}
	reader := tlog.TileHashReader(tree, tiles{})

	// Go's own root from the tiles must be the signed root.
	root, err := tlog.TreeHash(size, reader)
	if err != nil || root != tree.Hash {
		fail("tree hash from tiles: %v (%v, signed %v)", err, root, tree.Hash)
	}

	samples := map[int64]bool{0: true, 1: true, size / 2: true, size - 1: true}
	for i := int64(255); i < size; i += 997 {
		samples[i] = true
	}
	for idx := range samples {
		goProof, err := tlog.ProveRecord(size, idx, reader)
		if err != nil {
			fail("Go ProveRecord(%d, %d): %v", size, idx, err)
		}
		var ours struct {
			LeafIndex int64    `json:"leaf_index"`
			TreeSize  int64    `json:"tree_size"`
			LeafHash  string   `json:"leaf_hash"`
			Hashes    []string `json:"hashes"`
		}
		body := get(fmt.Sprintf("/api/v1/proof/inclusion?seq=%d&size=%d", idx+1, size))
		if err := json.Unmarshal(body, &ours); err != nil {
			fail("inclusion proof JSON: %v", err)
		}
		leaf := decodeHash(ours.LeafHash)
		if err := tlog.CheckRecord(goProof, size, tree.Hash, idx, leaf); err != nil {
			fail("Go proof of leaf %d does not verify: %v", idx, err)
		}
		if len(ours.Hashes) != len(goProof) {
			fail("leaf %d: our proof has %d hashes, Go's %d", idx, len(ours.Hashes), len(goProof))
		}
		ourProof := make(tlog.RecordProof, len(ours.Hashes))
		for i, h := range ours.Hashes {
			ourProof[i] = decodeHash(h)
			if ourProof[i] != goProof[i] {
				fail("leaf %d: proof hash %d differs from Go's", idx, i)
			}
		}
		if err := tlog.CheckRecord(ourProof, size, tree.Hash, idx, leaf); err != nil {
			fail("our proof of leaf %d does not verify in Go: %v", idx, err)
		}

		// The entry bundle holding the leaf: its entry hashes to the leaf hash.
		n, w := idx/256, size-idx/256*256
		path := fmt.Sprintf("/api/v1/tlog/tile/entries/%s", strings.TrimPrefix(tlog.Tile{H: 8, L: 0, N: n, W: int(min64(w, 256))}.Path(), "tile/8/0/"))
		bundle := get(path)
		var entry []byte
		for k := int64(0); k <= idx%256; k++ {
			if len(bundle) < 2 {
				fail("entry bundle %s ends early", path)
			}
			l := int(binary.BigEndian.Uint16(bundle))
			entry, bundle = bundle[2:2+l], bundle[2+l:]
		}
		if tlog.RecordHash(entry) != leaf {
			fail("entry %d does not hash to its leaf", idx)
		}
		if !bytes.HasPrefix(entry, []byte("{")) {
			fail("entry %d is not a JSON object", idx)
		}
	}

	for _, old := range []int64{1, 2, 3, 100, 256, 257, size / 3, size - 1, size} {
		if old < 1 || old > size {
			continue
		}
		goProof, err := tlog.ProveTree(size, old, reader)
		if err != nil {
			fail("Go ProveTree(%d, %d): %v", size, old, err)
		}
		oldRoot, err := tlog.TreeHash(old, reader)
		if err != nil {
			fail("tree hash %d: %v", old, err)
		}
		var ours struct {
			Hashes []string `json:"hashes"`
		}
		if err := json.Unmarshal(get(fmt.Sprintf("/api/v1/proof/consistency?from=%d&to=%d", old, size)), &ours); err != nil {
			fail("consistency proof JSON: %v", err)
		}
		ourProof := make(tlog.TreeProof, len(ours.Hashes))
		for i, h := range ours.Hashes {
			ourProof[i] = decodeHash(h)
		}
		if len(ourProof) != len(goProof) {
			fail("consistency %d→%d: %d hashes, Go %d", old, size, len(ourProof), len(goProof))
		}
		for i := range goProof {
			if ourProof[i] != goProof[i] {
				fail("consistency %d→%d: hash %d differs", old, size, i)
			}
		}
		if err := tlog.CheckTree(ourProof, size, tree.Hash, old, oldRoot); err != nil {
			fail("our consistency proof %d→%d does not verify in Go: %v", old, size, err)
		}
	}
	fmt.Println("ok")
}

func min64(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}
