// Command go-tlog is an independent verifier for HyperMesh's RFC 6962/9162 Merkle tree. It
// rebuilds the tree with golang.org/x/mod/sumdb/tlog (the Go checksum database's log, which
// is compatible with Certificate Transparency) and checks the roots and proofs that our
// TypeScript implementation produced.
//
// Input (stdin, JSON):
//
//	{"leaves": [{"data": hex, "hash": hex}, ...],
//	 "roots": [{"size": n, "root": hex}, ...],
//	 "inclusion": [{"index": i, "size": n, "root": hex, "proof": [hex, ...]}, ...],
//	 "consistency": [{"oldSize": m, "newSize": n, "oldRoot": hex, "newRoot": hex,
//	                  "proof": [hex, ...]}, ...]}
//
// Output (stdout, JSON): one result per input item, in the same order. A result has
// "ok" (tlog accepted the item) and, where tlog computes the item itself, "sameAsTlog"
// (our bytes equal tlog's) plus "error" when tlog rejected it.
//
// Build offline in GOPATH mode (Debian golang-go + golang-golang-x-mod-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOPROXY=off GOENV=off \
//	  GOCACHE=$(mktemp -d) CGO_ENABLED=0 go build -o go-tlog main.go
package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/tlog"
)

type leafInput struct {
	Data string `json:"data"`
	Hash string `json:"hash"`
}

type rootInput struct {
	Size int64  `json:"size"`
	Root string `json:"root"`
}

type inclusionInput struct {
	Index int64    `json:"index"`
	Size  int64    `json:"size"`
	Root  string   `json:"root"`
	Proof []string `json:"proof"`
}

type consistencyInput struct {
	OldSize int64    `json:"oldSize"`
	NewSize int64    `json:"newSize"`
	OldRoot string   `json:"oldRoot"`
	NewRoot string   `json:"newRoot"`
	Proof   []string `json:"proof"`
}

type input struct {
	Leaves      []leafInput        `json:"leaves"`
	Roots       []rootInput        `json:"roots"`
	Inclusion   []inclusionInput   `json:"inclusion"`
	Consistency []consistencyInput `json:"consistency"`
}

type result struct {
	OK         bool   `json:"ok"`
	SameAsTlog bool   `json:"sameAsTlog"`
	Error      string `json:"error,omitempty"`
}

type output struct {
	Leaves      []result `json:"leaves"`
	Roots       []result `json:"roots"`
	Inclusion   []result `json:"inclusion"`
	Consistency []result `json:"consistency"`
}

func parseHash(s string) (tlog.Hash, error) {
	var h tlog.Hash
	b, err := hex.DecodeString(s)
	if err != nil {
		return h, err
	}
	if len(b) != tlog.HashSize {
		return h, fmt.Errorf("hash has %d bytes, want %d", len(b), tlog.HashSize)
	}
	copy(h[:], b)
	return h, nil
}

func parseHashes(list []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(list))
	for i, s := range list {
		h, err := parseHash(s)
		if err != nil {
			return nil, fmt.Errorf("proof[%d]: %v", i, err)
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

func fail(err error) result {
	return result{OK: false, Error: err.Error()}
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintf(os.Stderr, "go-tlog: bad input: %v\n", err)
		os.Exit(2)
	}

	// tlog's own storage layout: every leaf appends its record hash plus the hashes of the
	// complete subtrees it finishes (tlog.StoredHashes).
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, index := range indexes {
			if index < 0 || index >= int64(len(stored)) {
				return nil, fmt.Errorf("stored hash %d not present", index)
			}
			out[i] = stored[index]
		}
		return out, nil
	})

	out := output{Leaves: []result{}, Roots: []result{}, Inclusion: []result{}, Consistency: []result{}}
	for n, leaf := range in.Leaves {
		data, err := hex.DecodeString(leaf.Data)
		if err != nil {
			fmt.Fprintf(os.Stderr, "go-tlog: leaves[%d].data: %v\n", n, err)
			os.Exit(2)
		}
		hashes, err := tlog.StoredHashes(int64(n), data, reader)
		if err != nil {
			fmt.Fprintf(os.Stderr, "go-tlog: StoredHashes(%d): %v\n", n, err)
			os.Exit(2)
		}
		stored = append(stored, hashes...)
		ours, err := parseHash(leaf.Hash)
		if err != nil {
			out.Leaves = append(out.Leaves, fail(err))
			continue
		}
		same := ours == tlog.RecordHash(data)
		out.Leaves = append(out.Leaves, result{OK: same, SameAsTlog: same})
	}
	size := int64(len(in.Leaves))

	for _, r := range in.Roots {
		if r.Size < 1 || r.Size > size {
			out.Roots = append(out.Roots, fail(fmt.Errorf("size %d outside 1..%d", r.Size, size)))
			continue
		}
		ours, err := parseHash(r.Root)
		if err != nil {
			out.Roots = append(out.Roots, fail(err))
			continue
		}
		theirs, err := tlog.TreeHash(r.Size, reader)
		if err != nil {
			out.Roots = append(out.Roots, fail(err))
			continue
		}
		same := ours == theirs
		out.Roots = append(out.Roots, result{OK: same, SameAsTlog: same})
	}

	for _, c := range in.Inclusion {
		root, err := parseHash(c.Root)
		if err != nil {
			out.Inclusion = append(out.Inclusion, fail(err))
			continue
		}
		proof, err := parseHashes(c.Proof)
		if err != nil {
			out.Inclusion = append(out.Inclusion, fail(err))
			continue
		}
		if c.Index < 0 || c.Index >= size {
			out.Inclusion = append(out.Inclusion, fail(fmt.Errorf("index %d outside the tree", c.Index)))
			continue
		}
		leaf := stored[tlog.StoredHashIndex(0, c.Index)]
		res := result{}
		if err := tlog.CheckRecord(tlog.RecordProof(proof), c.Size, root, c.Index, leaf); err != nil {
			res.Error = err.Error()
		} else {
			res.OK = true
		}
		if c.Size <= size {
			if theirs, err := tlog.ProveRecord(c.Size, c.Index, reader); err == nil {
				res.SameAsTlog = sameHashes(proof, theirs)
			}
		}
		out.Inclusion = append(out.Inclusion, res)
	}

	for _, c := range in.Consistency {
		oldRoot, err := parseHash(c.OldRoot)
		if err != nil {
			out.Consistency = append(out.Consistency, fail(err))
			continue
		}
		newRoot, err := parseHash(c.NewRoot)
		if err != nil {
			out.Consistency = append(out.Consistency, fail(err))
			continue
		}
		proof, err := parseHashes(c.Proof)
		if err != nil {
			out.Consistency = append(out.Consistency, fail(err))
			continue
		}
		res := result{}
		if err := tlog.CheckTree(tlog.TreeProof(proof), c.NewSize, newRoot, c.OldSize, oldRoot); err != nil {
			res.Error = err.Error()
		} else {
			res.OK = true
		}
		if c.NewSize <= size {
			if theirs, err := tlog.ProveTree(c.NewSize, c.OldSize, reader); err == nil {
				res.SameAsTlog = sameHashes(proof, theirs)
			}
		}
		out.Consistency = append(out.Consistency, res)
	}

	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "go-tlog: write: %v\n", err)
		os.Exit(2)
	}
}
