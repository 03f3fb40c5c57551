package search

import (
	"slices"
	"strings"
	"testing"
)

func TestSampleSeeded(t *testing.T) {
	p := mustPlan(t, subsetSpace())
	a, b, c := Sample(p, 20, 7), Sample(p, 20, 7), Sample(p, 20, 8)
	seen := map[string]bool{}
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("draw %d differs with the same seed: %v %v", i, a[i], b[i])
		}
		if err := checkChoice(p, "sample", a[i]); err != nil {
			t.Fatal(err)
		}
		seen[ChoiceString(p, a[i])] = true
	}
	if len(seen) < 5 {
		t.Errorf("only %d distinct architectures in 20 draws of a 3x3-candidate space", len(seen))
	}
	same := 0
	for i := range a {
		if slices.Equal(a[i], c[i]) {
			same++
		}
	}
	if same == len(a) {
		t.Error("another seed drew the same architectures")
	}
}

func TestUniformChoiceAndArchModel(t *testing.T) {
	p := mustPlan(t, subsetSpace())
	ch, err := UniformChoice(p, "k5e3")
	if err != nil {
		t.Fatal(err)
	}
	if ChoiceString(p, ch) != "k5e3-k5e3" {
		t.Errorf("uniform k5e3: %s", ChoiceString(p, ch))
	}
	if _, err := UniformChoice(p, "k7e6"); err == nil || !strings.Contains(err.Error(), `layer s1.l0 does not offer candidate "k7e6"`) {
		t.Errorf("missing candidate: %v", err)
	}
	m, err := ArchModel(p, ch, "u", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Verify(); err != nil {
		t.Fatal(err)
	}
	p2, ch2, err := ModelArch(m, subsetSpace())
	if err != nil || !slices.Equal(ch2, ch) || len(p2.Layers) != len(p.Layers) {
		t.Fatalf("ModelArch: %v %v", ch2, err)
	}
	// the same seed gives the same weights; Trainer.InitFrom takes them
	m2, _ := ArchModel(p, ch, "u", 1)
	for _, k := range m.ParamNames() {
		if !slices.Equal(m.Params[k].Data, m2.Params[k].Data) {
			t.Fatalf("%s differs with the same seed", k)
		}
	}
	tr, err := NewTrainer(p, ch, tinyTrainConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.InitFrom(m); err != nil {
		t.Fatal(err)
	}
	// errors name the problem
	m.Metadata.Search.Choices[0] = "mbconv k9 e9"
	if _, _, err := ModelArch(m, subsetSpace()); err == nil || !strings.Contains(err.Error(), `choices[0]: "mbconv k9 e9" is not a candidate of layer s1.l0`) {
		t.Errorf("bad choice: %v", err)
	}
	other := subsetSpace()
	other.Name = "other"
	if _, _, err := ModelArch(m, other); err == nil || !strings.Contains(err.Error(), `built in space "tiny28", got "other"`) {
		t.Errorf("other space: %v", err)
	}
	delete(m.Params, "classifier.bias")
	if err := tr.InitFrom(m); err == nil || !strings.Contains(err.Error(), `"classifier.bias": missing`) {
		t.Errorf("InitFrom without a tensor: %v", err)
	}
}
