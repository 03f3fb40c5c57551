package pass

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pnasml/pnas/ir"
)

func TestTableOrder(t *testing.T) {
	if err := checkTable(Passes); err != nil {
		t.Fatal(err)
	}
	if Passes[0].Name != "verify" || !Passes[0].Required {
		t.Errorf("the first pass must be the required verify pass, got %+v", Passes[0])
	}
	swapped := append([]Pass(nil), Passes...)
	swapped[2], swapped[4] = swapped[4], swapped[2] // fuse-activation before fold-bn
	if err := checkTable(swapped); err == nil || !strings.Contains(err.Error(), "must run before") {
		t.Errorf("swapped table: error = %v, want an ordering violation", err)
	}
	dup := append(append([]Pass(nil), Passes...), Passes[1])
	if err := checkTable(dup); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Errorf("duplicate pass: error = %v, want a duplicate error", err)
	}
	missing := append([]Pass(nil), Passes[:2]...)
	if err := checkTable(missing); err == nil || !strings.Contains(err.Error(), "unknown pass") {
		t.Errorf("missing pass: error = %v, want an unknown-pass error", err)
	}
}

// TestCheckNamesBrokenPass installs a pass that corrupts the model and
// requires Options.Check to stop right after it, naming it.
func TestCheckNamesBrokenPass(t *testing.T) {
	b := ir.NewBuilder("small", 1, 4, 4, rand.New(rand.NewPCG(1, 1)))
	x := b.Conv("c", b.Input(), 2, 3, 1, 1)
	x = b.GlobalPool("pool", x)
	x = b.Flatten("flat", x)
	m, err := b.Model(b.Dense("fc", x, 2, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	saved := Passes
	defer func() { Passes = saved }()
	Passes = append(append([]Pass(nil), saved...), Pass{Name: "break", Run: func(m *ir.Model) error {
		delete(m.Params, "fc.bias")
		return nil
	}})
	if _, err := Apply(m, Options{Check: true}); err == nil || !strings.Contains(err.Error(), `pass break: result does not verify: op "fc"`) {
		t.Errorf("Apply with Check: error = %v, want one naming pass break", err)
	}
	if _, err := Apply(m, Options{}); err != nil {
		t.Errorf("Apply without Check: %v (the broken pass is the last, so nothing else notices)", err)
	}
}
