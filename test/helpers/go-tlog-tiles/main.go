// Command go-tlog-tiles is an independent client of HyperMesh's transparency log HTTP face.
// It fetches the checkpoint, tiles and entry bundles over HTTP and checks them with
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog, which nobody here wrote:
//
//   - the checkpoint's Ed25519 note signatures verify (note.Open; other lines are ignored);
//   - the tree hash rebuilt from tiles (tlog.TileHashReader, tlog.TreeHash) is the root;
//   - chosen entries, read from entry bundles, are in the tree (tlog.ProveRecord +
//     tlog.CheckRecord), and the audit paths of /ct/v1/get-proof-by-hash pass CheckRecord;
//   - earlier checkpoints are consistent with the current one (tlog.ProveTree + tlog.CheckTree),
//     and so are the proofs of /ct/v1/get-sth-consistency;
//   - /ct/v1/get-sth carries a valid RFC 6962 ECDSA P-256 TreeHeadSignature for the checkpoint;
//   - tampered checkpoints are rejected.
//
// Go's Tile.Path() is "tile/H/L/N[.p/W]" with the height; C2SP tlog-tiles omits it
// ("tile/L/N[.p/W]"), so paths are translated below.
//
// Input (stdin, JSON): {"baseUrl", "origin", "verifiers": [{"name", "publicKey": hex}],
// "logKeySpki": hex, "leaves": [index...], "oldCheckpoints": [note...], "badCheckpoints": [note...]}
// Output (stdout, JSON): see the output type.
//
// Build offline in GOPATH mode (Debian golang-go + golang-golang-x-mod-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOPROXY=off GOENV=off \
//	  GOCACHE=$(mktemp -d) CGO_ENABLED=0 go build -o go-tlog-tiles main.go
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const tileHeight = 8

type verifierInput struct {
	Name      string `json:"name"`
	PublicKey string `json:"publicKey"`
}

type input struct {
	BaseURL        string          `json:"baseUrl"`
	Origin         string          `json:"origin"`
	Verifiers      []verifierInput `json:"verifiers"`
	LogKeySpki     string          `json:"logKeySpki"`
	Leaves         []int64         `json:"leaves"`
	OldCheckpoints []string        `json:"oldCheckpoints"`
	BadCheckpoints []string        `json:"badCheckpoints"`
}

type checkResult struct {
	Index      int64  `json:"index,omitempty"`
	OldSize    int64  `json:"oldSize,omitempty"`
	OK         bool   `json:"ok"`
	DynamicOK  bool   `json:"dynamicOk"`
	SameAsTlog bool   `json:"sameAsTlog"`
	Error      string `json:"error,omitempty"`
}

type output struct {
	Size           int64         `json:"size"`
	Root           string        `json:"root"`
	VerifiedSigs   []string      `json:"verifiedSigs"`
	UnverifiedSigs int           `json:"unverifiedSigs"`
	TreeHashOK     bool          `json:"treeHashOk"`
	BundlesOK      bool          `json:"bundlesOk"`
	SthOK          bool          `json:"sthOk"`
	SthError       string        `json:"sthError,omitempty"`
	Leaves         []checkResult `json:"leaves"`
	Consistency    []checkResult `json:"consistency"`
	BadRejected    []checkResult `json:"badRejected"`
	TilesFetched   []string      `json:"tilesFetched"`
}

var client = &http.Client{Timeout: 30 * time.Second}

func fetch(base, path string) ([]byte, error) {
	resp, err := client.Get(base + "/" + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, body)
	}
	return body, nil
}

// c2spPath turns Go's "tile/8/L/N[.p/W]" into C2SP's "tile/L/N[.p/W]".
func c2spPath(t tlog.Tile) string {
	prefix := fmt.Sprintf("tile/%d/", t.H)
	return "tile/" + strings.TrimPrefix(t.Path(), prefix)
}

// httpTileReader fetches each tile once and keeps it, as tlog clients do.
type httpTileReader struct {
	base    string
	mu      sync.Mutex
	cache   map[string][]byte
	fetched []string
}

func (r *httpTileReader) Height() int { return tileHeight }

func (r *httpTileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		path := c2spPath(t)
		r.mu.Lock()
		data, ok := r.cache[path]
		r.mu.Unlock()
		if !ok {
			var err error
			data, err = fetch(r.base, path)
			if err != nil {
				return nil, err
			}
			if len(data) != t.W*tlog.HashSize {
				return nil, fmt.Errorf("%s: %d bytes, want %d", path, len(data), t.W*tlog.HashSize)
			}
			r.mu.Lock()
			r.cache[path] = data
			r.fetched = append(r.fetched, path)
			r.mu.Unlock()
		}
		out[i] = data
	}
	return out, nil
}

func (r *httpTileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// parseCheckpoint reads the C2SP checkpoint body: origin, size, base64 root.
func parseCheckpoint(text, origin string) (tlog.Tree, error) {
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return tlog.Tree{}, fmt.Errorf("checkpoint body has %d lines", len(lines)-1)
	}
	if lines[0] != origin {
		return tlog.Tree{}, fmt.Errorf("origin %q, want %q", lines[0], origin)
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return tlog.Tree{}, fmt.Errorf("bad size %q", lines[1])
	}
	h, err := tlog.ParseHash(lines[2])
	if err != nil {
		return tlog.Tree{}, err
	}
	return tlog.Tree{N: n, Hash: h}, nil
}

func openCheckpoint(msg []byte, verifiers note.Verifiers, origin string) (*note.Note, tlog.Tree, error) {
	n, err := note.Open(msg, verifiers)
	if err != nil {
		return nil, tlog.Tree{}, err
	}
	tree, err := parseCheckpoint(n.Text, origin)
	return n, tree, err
}

func decodeHashes(list []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(list))
	for i, s := range list {
		h, err := tlog.ParseHash(s)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

func sameHashes(a, b []tlog.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// bundleEntries splits a tlog-tiles entry bundle into its uint16 length-prefixed entries.
func bundleEntries(data []byte) ([][]byte, error) {
	var out [][]byte
	for len(data) > 0 {
		if len(data) < 2 {
			return nil, fmt.Errorf("truncated length prefix")
		}
		n := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+n {
			return nil, fmt.Errorf("truncated entry")
		}
		out = append(out, data[2:2+n])
		data = data[2+n:]
	}
	return out, nil
}

func bundlePath(n, size int64) (string, int) {
	w := size - n*256
	if w >= 256 {
		return tlog.Tile{H: tileHeight, L: -1, N: n, W: 256}.Path(), 256
	}
	return tlog.Tile{H: tileHeight, L: -1, N: n, W: int(w)}.Path(), int(w)
}

func checkSth(in input, tree tlog.Tree) error {
	spki, err := hex.DecodeString(in.LogKeySpki)
	if err != nil {
		return err
	}
	key, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return err
	}
	pub, ok := key.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("log key is not ECDSA")
	}
	body, err := fetch(in.BaseURL, "ct/v1/get-sth")
	if err != nil {
		return err
	}
	var sth struct {
		TreeSize  int64  `json:"tree_size"`
		Timestamp uint64 `json:"timestamp"`
		Root      string `json:"sha256_root_hash"`
		Signature string `json:"tree_head_signature"`
	}
	if err := json.Unmarshal(body, &sth); err != nil {
		return err
	}
	if sth.TreeSize != tree.N || sth.Root != tree.Hash.String() {
		return fmt.Errorf("get-sth names size %d root %s, checkpoint %d %s", sth.TreeSize, sth.Root, tree.N, tree.Hash)
	}
	sig, err := base64.StdEncoding.DecodeString(sth.Signature)
	if err != nil {
		return err
	}
	// DigitallySigned: SignatureAndHashAlgorithm {sha256(4), ecdsa(3)}, opaque signature<0..2^16-1>.
	if len(sig) < 4 || sig[0] != 4 || sig[1] != 3 || int(binary.BigEndian.Uint16(sig[2:4])) != len(sig)-4 {
		return fmt.Errorf("tree_head_signature is not an ECDSA-SHA256 DigitallySigned")
	}
	// RFC 6962 §3.5 TreeHeadSignature.
	var msg bytes.Buffer
	msg.Write([]byte{0, 1})
	binary.Write(&msg, binary.BigEndian, sth.Timestamp)
	binary.Write(&msg, binary.BigEndian, uint64(sth.TreeSize))
	msg.Write(tree.Hash[:])
	digest := sha256.Sum256(msg.Bytes())
	if !ecdsa.VerifyASN1(pub, digest[:], sig[4:]) {
		return fmt.Errorf("tree_head_signature does not verify")
	}
	return nil
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintf(os.Stderr, "go-tlog-tiles: bad input: %v\n", err)
		os.Exit(2)
	}
	var list []note.Verifier
	for _, v := range in.Verifiers {
		raw, err := hex.DecodeString(v.PublicKey)
		if err != nil {
			fmt.Fprintf(os.Stderr, "go-tlog-tiles: verifier %s: %v\n", v.Name, err)
			os.Exit(2)
		}
		vkey, err := note.NewEd25519VerifierKey(v.Name, ed25519.PublicKey(raw))
		if err != nil {
			fmt.Fprintf(os.Stderr, "go-tlog-tiles: verifier %s: %v\n", v.Name, err)
			os.Exit(2)
		}
		verifier, err := note.NewVerifier(vkey)
		if err != nil {
			fmt.Fprintf(os.Stderr, "go-tlog-tiles: verifier %s: %v\n", v.Name, err)
			os.Exit(2)
		}
		list = append(list, verifier)
	}
	verifiers := note.VerifierList(list...)

	fail := func(format string, args ...interface{}) {
		fmt.Fprintf(os.Stderr, "go-tlog-tiles: "+format+"\n", args...)
		os.Exit(1)
	}

	msg, err := fetch(in.BaseURL, "checkpoint")
	if err != nil {
		fail("%v", err)
	}
	n, tree, err := openCheckpoint(msg, verifiers, in.Origin)
	if err != nil {
		fail("checkpoint: %v", err)
	}
	out := output{Size: tree.N, Root: tree.Hash.String(), UnverifiedSigs: len(n.UnverifiedSigs),
		Leaves: []checkResult{}, Consistency: []checkResult{}, BadRejected: []checkResult{}}
	for _, s := range n.Sigs {
		out.VerifiedSigs = append(out.VerifiedSigs, s.Name)
	}

	reader := &httpTileReader{base: in.BaseURL, cache: map[string][]byte{}}
	thr := tlog.TileHashReader(tree, reader)
	if h, err := tlog.TreeHash(tree.N, thr); err != nil {
		fail("TreeHash: %v", err)
	} else {
		out.TreeHashOK = h == tree.Hash
	}

	if err := checkSth(in, tree); err != nil {
		out.SthError = err.Error()
	} else {
		out.SthOK = true
	}

	// Every entry of every bundle the chosen leaves fall in must hash to its level-0 tile hash.
	out.BundlesOK = true
	bundles := map[int64][][]byte{}
	for _, index := range in.Leaves {
		res := checkResult{Index: index}
		if index < 0 || index >= tree.N {
			res.Error = "index outside the tree"
			out.Leaves = append(out.Leaves, res)
			continue
		}
		bn := index / 256
		entries, ok := bundles[bn]
		if !ok {
			path, w := bundlePath(bn, tree.N)
			data, err := fetch(in.BaseURL, "tile/entries/"+strings.TrimPrefix(path, "tile/8/data/"))
			if err == nil {
				entries, err = bundleEntries(data)
			}
			if err == nil && len(entries) != w {
				err = fmt.Errorf("bundle %d has %d entries, want %d", bn, len(entries), w)
			}
			if err != nil {
				res.Error = err.Error()
				out.BundlesOK = false
				out.Leaves = append(out.Leaves, res)
				continue
			}
			indexes := make([]int64, len(entries))
			for j := range entries {
				indexes[j] = tlog.StoredHashIndex(0, bn*256+int64(j))
			}
			hs, err := thr.ReadHashes(indexes)
			for j, e := range entries {
				if err != nil || hs[j] != tlog.RecordHash(e) {
					out.BundlesOK = false
				}
			}
			bundles[bn] = entries
		}
		record := tlog.RecordHash(entries[index%256])
		proof, err := tlog.ProveRecord(tree.N, index, thr)
		if err == nil {
			err = tlog.CheckRecord(proof, tree.N, tree.Hash, index, record)
		}
		if err != nil {
			res.Error = err.Error()
		} else {
			res.OK = true
		}
		q := url.Values{"hash": {base64.StdEncoding.EncodeToString(record[:])}, "tree_size": {strconv.FormatInt(tree.N, 10)}}
		body, err := fetch(in.BaseURL, "ct/v1/get-proof-by-hash?"+q.Encode())
		var dyn struct {
			LeafIndex int64    `json:"leaf_index"`
			AuditPath []string `json:"audit_path"`
		}
		if err == nil {
			err = json.Unmarshal(body, &dyn)
		}
		var path []tlog.Hash
		if err == nil {
			path, err = decodeHashes(dyn.AuditPath)
		}
		if err == nil && dyn.LeafIndex != index {
			err = fmt.Errorf("get-proof-by-hash gave index %d", dyn.LeafIndex)
		}
		if err == nil {
			err = tlog.CheckRecord(path, tree.N, tree.Hash, index, record)
		}
		if err != nil {
			res.Error += " dynamic: " + err.Error()
		} else {
			res.DynamicOK = true
			res.SameAsTlog = sameHashes(path, proof)
		}
		out.Leaves = append(out.Leaves, res)
	}

	for _, old := range in.OldCheckpoints {
		res := checkResult{}
		_, oldTree, err := openCheckpoint([]byte(old), verifiers, in.Origin)
		if err != nil {
			res.Error = "old checkpoint: " + err.Error()
			out.Consistency = append(out.Consistency, res)
			continue
		}
		res.OldSize = oldTree.N
		proof, err := tlog.ProveTree(tree.N, oldTree.N, thr)
		if err == nil {
			err = tlog.CheckTree(proof, tree.N, tree.Hash, oldTree.N, oldTree.Hash)
		}
		if err != nil {
			res.Error = err.Error()
		} else {
			res.OK = true
		}
		q := url.Values{"first": {strconv.FormatInt(oldTree.N, 10)}, "second": {strconv.FormatInt(tree.N, 10)}}
		body, err := fetch(in.BaseURL, "ct/v1/get-sth-consistency?"+q.Encode())
		var dyn struct {
			Consistency []string `json:"consistency"`
		}
		if err == nil {
			err = json.Unmarshal(body, &dyn)
		}
		var path []tlog.Hash
		if err == nil {
			path, err = decodeHashes(dyn.Consistency)
		}
		if err == nil {
			err = tlog.CheckTree(path, tree.N, tree.Hash, oldTree.N, oldTree.Hash)
		}
		if err != nil {
			res.Error += " dynamic: " + err.Error()
		} else {
			res.DynamicOK = true
			res.SameAsTlog = sameHashes(path, proof)
		}
		out.Consistency = append(out.Consistency, res)
	}

	for _, bad := range in.BadCheckpoints {
		res := checkResult{}
		if _, _, err := openCheckpoint([]byte(bad), verifiers, in.Origin); err != nil {
			res.OK = true
			res.Error = err.Error()
		}
		out.BadRejected = append(out.BadRejected, res)
	}

	out.TilesFetched = reader.fetched
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail("write: %v", err)
	}
}
