package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/pnasml/pnas/ir"
)

// TestCommittedModel checks the shipped model in models/fmnist: it loads,
// names its architecture and provenance, and its weights are the trained
// ones (its accuracy on the embedded test subset, which the full run's
// training never read, is far above chance).
func TestCommittedModel(t *testing.T) {
	const path = "../../models/fmnist/model.json"
	m, err := ir.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if s := m.Metadata.Search; s == nil || s.Space != "fmnist" || len(s.Choices) != 12 {
		t.Fatalf("metadata.search: %+v, want the fmnist space's 12 choices", s)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"eval", path, "--data", "fashion-mnist-subset", "--split", "test", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("pnas eval: exit %d: %s", code, errb.String())
	}
	var r evalResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if r.N != 500 || r.Top1 < 0.88 {
		t.Errorf("committed model on the test subset: %d images, top-1 %.4f, want 500 images and at least 0.88", r.N, r.Top1)
	}
	t.Logf("committed model: top-1 %.4f on the %d-image test subset", r.Top1, r.N)
}
