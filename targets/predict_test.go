package targets_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/pnasml/pnas/internal/testnet"
	"github.com/pnasml/pnas/targets"
)

func TestPredictModel(t *testing.T) {
	m := testnet.Tiny(t)
	keys, err := targets.ModelKeys(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 5 {
		t.Fatalf("keys = %v", keys)
	}
	cost := map[string]float64{}
	var sum float64
	for i, k := range keys {
		cost[k] = float64(10 * (i + 1))
		sum += cost[k]
	}
	l := table(cost)
	got, err := l.PredictModel(m)
	if err != nil || got != sum {
		t.Fatalf("PredictModel = %v, %v; want %v", got, err, sum)
	}
	if s, _ := l.Sum(keys); s != sum {
		t.Errorf("Sum = %v, want %v", s, sum)
	}
	// With a correction: 5 + 2*(stem+head, type Conv/Conv_1 default) ...
	l.Correction = &targets.Correction{InterceptUS: 5, Scale: 2, TypeScale: map[string]float64{"expanded_conv": 3}}
	want := 5 + 2*(cost[keys[0]]+cost[keys[3]]+cost[keys[4]]) + 3*(cost[keys[1]]+cost[keys[2]])
	if got, _ := l.Predict(keys); !approx(got, want, 1e-12) {
		t.Errorf("corrected Predict = %v, want %v", got, want)
	}
	// The corrected view sums to the same prediction.
	cv := l.Corrected()
	total := cv.Overhead()
	for _, k := range keys {
		v, ok := cv.Lookup(k)
		if !ok {
			t.Fatalf("corrected view lacks %s", k)
		}
		total += v
	}
	if !approx(total, want, 1e-12) || cv.ID() != l.ID()+"/corrected" {
		t.Errorf("corrected view sums to %v (id %s), want %v", total, cv.ID(), want)
	}
	// The table a search reads sums to the prediction without the overhead
	// added separately (it is in the classifier's entry).
	for _, corr := range []*targets.Correction{l.Correction, nil} {
		l.Correction = corr
		st := l.SearchTable()
		var total float64
		for _, k := range keys {
			v, ok := st.Lookup(k)
			if !ok {
				t.Fatalf("search table lacks %s", k)
			}
			total += v
		}
		want, _ := l.Predict(keys)
		wantID := l.ID()
		if corr != nil {
			wantID += "/corrected"
		}
		if !approx(total, want, 1e-12) || st.ID() != wantID {
			t.Errorf("correction %v: search table sums to %v (id %s), want %v (id %s)", corr != nil, total, st.ID(), want, wantID)
		}
	}
}

func TestPredictMissingKey(t *testing.T) {
	m := testnet.Tiny(t)
	keys, _ := targets.ModelKeys(m)
	cost := map[string]float64{}
	for _, k := range keys {
		cost[k] = 10
	}
	delete(cost, keys[2])
	l := table(cost)
	_, err := l.PredictModel(m)
	wantErr(t, err, fmt.Sprintf("%q", keys[2]), "latency table "+l.ID(), "target amd64")
	var mk *targets.MissingKeysError
	if !errors.As(err, &mk) || len(mk.Keys) != 1 || mk.Keys[0] != keys[2] {
		t.Fatalf("error %v is not a MissingKeysError for %s", err, keys[2])
	}
	_, err = l.Predict([]string{keys[0], "Logits-input:1x1x1-output:3", "Logits-input:1x1x1-output:3", "Conv-x"})
	wantErr(t, err, `keys "Logits-input:1x1x1-output:3", "Conv-x"`)
	// A model whose ops lack block annotations cannot be predicted.
	m.Ops[0].Block = nil
	wantErr(t, func() error { _, err := l.PredictModel(m); return err }(), "block")
}

// networks draws n networks of sp with measured = f(table sums) + noise.
func networks(sp *space, cost map[string]float64, n int, rng *rand.Rand, truth func(sums map[string]float64) float64, noise float64) []targets.MeasuredNetwork {
	var out []targets.MeasuredNetwork
	for i := 0; i < n; i++ {
		keys := sp.sample(rng)
		sums := map[string]float64{}
		for _, k := range keys {
			sums[targets.KeyType(k)] += cost[k]
		}
		y := truth(sums) * (1 + noise*rng.NormFloat64())
		out = append(out, targets.MeasuredNetwork{Name: fmt.Sprintf("net%d", i), Keys: keys, MeasuredUS: y})
	}
	return out
}

func TestFitRecoversLinearModel(t *testing.T) {
	sp := newSpace()
	rng := rand.New(rand.NewPCG(1, 2))
	cost := baseCost(sp, rng)
	l := table(cost)
	plain := func(s map[string]float64) float64 {
		return 30 + 1.2*(s["Conv"]+s["Conv_1"]+s["Logits"]+s["expanded_conv"])
	}
	nets := networks(sp, cost, 60, rng, plain, 0)
	c, err := targets.FitWith(l, nets, targets.FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !approx(c.InterceptUS, 30, 1e-4) || !approx(c.Scale, 1.2, 1e-6) || c.TypeScale != nil || c.FitMAPE > 1e-5 {
		t.Errorf("noise-free fit = %+v, want intercept 30, scale 1.2", c)
	}
	// Per-type truth: MBConv blocks cost 1.5x their entries, the rest 1.0x.
	perType := func(s map[string]float64) float64 {
		return 30 + s["Conv"] + s["Conv_1"] + s["Logits"] + 1.5*s["expanded_conv"]
	}
	nets = networks(sp, cost, 200, rng, perType, 0.002)
	c, err = targets.FitWith(l, nets, targets.FitOptions{PerType: true, Lambda: 1e-4})
	if err != nil {
		t.Fatal(err)
	}
	if !approx(c.TypeScale["expanded_conv"], 1.5, 0.02) || c.FitMAPE > 1 {
		t.Errorf("per-type fit = %+v, want expanded_conv scale 1.5", c)
	}
	plainFit, _ := targets.FitWith(l, nets, targets.FitOptions{})
	if plainFit.FitRMSEUS < c.FitRMSEUS {
		t.Errorf("per-type fit (RMSE %.3f) is worse than the plain one (%.3f)", c.FitRMSEUS, plainFit.FitRMSEUS)
	}
	// Default options on plain truth: the ridge keeps type scales near the common one.
	nets = networks(sp, cost, 40, rng, plain, 0.01)
	c, err = targets.Fit(l, nets)
	if err != nil {
		t.Fatal(err)
	}
	for typ, s := range c.TypeScale {
		if math.Abs(s-1.2) > 0.1 {
			t.Errorf("default fit: %s scale %.3f, want near 1.2 (%+v)", typ, s, c)
		}
	}
}

func TestFitErrors(t *testing.T) {
	sp := newSpace()
	rng := rand.New(rand.NewPCG(3, 4))
	cost := baseCost(sp, rng)
	l := table(cost)
	nets := networks(sp, cost, 3, rng, func(s map[string]float64) float64 { return 100 }, 0)
	_, err := targets.Fit(l, nets[:1])
	wantErr(t, err, "need at least 2 measured networks, got 1")
	bad := append([]targets.MeasuredNetwork(nil), nets...)
	bad[1].Keys = append(bad[1].Keys, "Logits-input:1x1x1-output:3")
	_, err = targets.Fit(l, bad)
	wantErr(t, err, "network 1 (net1)", `"Logits-input:1x1x1-output:3"`)
	bad[1] = nets[1]
	bad[1].MeasuredUS = -1
	_, err = targets.Fit(l, bad)
	wantErr(t, err, "network 1", "expected a positive number, got -1")
	// Measurements that fall as the table grows give a negative scale.
	inverse := networks(sp, cost, 30, rng, func(s map[string]float64) float64 {
		return 20000 - 5*(s["Conv"]+s["Conv_1"]+s["Logits"]+s["expanded_conv"])
	}, 0)
	_, err = targets.FitWith(l, inverse, targets.FitOptions{})
	wantErr(t, err, "not positive")
	// Identical networks: the ridge keeps the system solvable.
	same := []targets.MeasuredNetwork{nets[0], nets[0], nets[0]}
	same[1].MeasuredUS, same[2].MeasuredUS = 110, 90
	c, err := targets.Fit(l, same)
	if err != nil {
		t.Fatalf("identical networks: %v", err)
	}
	s, _ := l.Sum(nets[0].Keys)
	// the relative least-squares optimum of 100, 110, 90 is Σ(1/y)/Σ(1/y²)
	want := (1.0/100 + 1.0/110 + 1.0/90) / (1.0/(100*100) + 1.0/(110*110) + 1.0/(90*90))
	if p := c.InterceptUS + c.Scale*s; math.Abs(p-want) > 0.1 || math.IsNaN(c.Scale) {
		t.Errorf("identical networks: %+v predicts %.2f, want %.2f", c, p, want)
	}
}

// synthetic bench reports: every layer truly costs 1.2x its old table entry
// (with per-report noise) and each inference adds a 30 µs overhead.
func syntheticReports(sp *space, cost map[string]float64, models, repeats int, rng *rand.Rand) []*targets.BenchReport {
	var out []*targets.BenchReport
	for m := 0; m < models; m++ {
		keys := sp.sample(rng)
		for rep := 0; rep < repeats; rep++ {
			layers := make([]float64, len(keys))
			sum := 0.0
			for i, k := range keys {
				layers[i] = 1.2 * cost[k] * (1 + 0.03*rng.NormFloat64())
				sum += layers[i]
			}
			total := (sum + 30) * (1 + 0.01*rng.NormFloat64())
			out = append(out, report(fmt.Sprintf("m%03d", m), keys, layers, total, 50))
		}
	}
	return out
}

func TestCalibrate(t *testing.T) {
	sp := newSpace()
	rng := rand.New(rand.NewPCG(5, 6))
	cost := baseCost(sp, rng)
	old := table(cost)
	reports := syntheticReports(sp, cost, 60, 2, rng)

	next, rep, err := targets.Calibrate(old, reports, 0.25, 42)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep)
	if rep.HeldOut != 30 || rep.FitReports != 90 || len(rep.HeldOutModels) != 15 || rep.InSample {
		t.Errorf("split: held out %d reports (%d models), fit %d", rep.HeldOut, len(rep.HeldOutModels), rep.FitReports)
	}
	if rep.AfterPredictor.N != 30 || len(rep.Unpredictable) != 0 {
		t.Errorf("evaluated %d, unpredictable %v", rep.AfterPredictor.N, rep.Unpredictable)
	}
	if rep.BeforePlain.MAPE < 15 {
		t.Errorf("before MAPE %.2f%%: the synthetic bias should be about 20%%", rep.BeforePlain.MAPE)
	}
	if rep.AfterPredictor.MAPE > rep.BeforePlain.MAPE/5 || rep.AfterPredictor.RMSEUS > rep.BeforePlain.RMSEUS/5 {
		t.Errorf("calibration did not cut the held-out error five-fold: before %+v, after %+v", rep.BeforePlain, rep.AfterPredictor)
	}
	if rep.AfterPredictor.MAPE > 2 {
		t.Errorf("held-out MAPE after calibration %.2f%%, want < 2%%", rep.AfterPredictor.MAPE)
	}
	if rep.AfterPlain.MAPE >= rep.BeforePlain.MAPE {
		t.Errorf("refitted entries did not improve the plain sum: %+v -> %+v", rep.BeforePlain, rep.AfterPlain)
	}
	// Entries moved towards the truth (1.2x), weighted by count.
	k := sp.fixed[0]
	e := next.Entries[k]
	if e.Count <= 100 || e.MedianUS <= cost[k]*1.05 || e.MedianUS > cost[k]*1.2 {
		t.Errorf("stem entry %+v, old median %.2f", e, cost[k])
	}
	if rep.NewID == rep.OldID || next.ID() != rep.NewID || old.ID() != rep.OldID {
		t.Errorf("ids: old %s new %s, table %s", rep.OldID, rep.NewID, next.ID())
	}
	if old.Correction != nil || old.Entries[k].Count != 100 {
		t.Error("Calibrate modified its input table")
	}
	if err := next.Validate(); err != nil {
		t.Fatal(err)
	}

	// Deterministic for a seed.
	again, rep2, err := targets.Calibrate(old, reports, 0.25, 42)
	if err != nil || again.ID() != next.ID() || rep2.AfterPredictor != rep.AfterPredictor {
		t.Errorf("second run differs: %v %s %s", err, again.ID(), next.ID())
	}

	// Reports already folded in are not counted twice.
	_, rep3, err := targets.Calibrate(next, reports, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rep3.AlreadyFolded != 90 || !rep3.InSample || rep3.FitReports != 120 {
		t.Errorf("recalibration: already folded %d, fit %d, in-sample %v", rep3.AlreadyFolded, rep3.FitReports, rep3.InSample)
	}
}

func TestCalibrateErrors(t *testing.T) {
	sp := newSpace()
	rng := rand.New(rand.NewPCG(8, 9))
	cost := baseCost(sp, rng)
	old := table(cost)
	reports := syntheticReports(sp, cost, 4, 1, rng)
	_, _, err := targets.Calibrate(old, reports, 1, 1)
	wantErr(t, err, "holdout fraction", "[0, 1)")
	other := table(cost)
	other.Machine.CPU = "Other"
	_, _, err = targets.Calibrate(other, reports, 0, 1)
	wantErr(t, err, `reports come from "Test CPU @ 3.0GHz"`, `the table from "Other"`, "BuildLUT")
	other = table(cost)
	other.Target = "amd64-avx512"
	_, _, err = targets.Calibrate(other, reports, 0, 1)
	wantErr(t, err, "bench report 0", `expected "amd64-avx512", got "amd64"`)
	_, _, err = targets.Calibrate(old, nil, 0, 1)
	wantErr(t, err, "no bench reports")
}

// A fit whose best intercept is negative pins it to 0 (a per-inference
// overhead cannot be negative) and keeps the scale.
func TestFitInterceptNotNegative(t *testing.T) {
	l := table(map[string]float64{"Conv-input:28x28x1-output:28x28x16": 100, "Conv_1-input:7x7x96-output:7x7x256": 50})
	var nets []targets.MeasuredNetwork
	for i, k := range [][]string{
		{"Conv-input:28x28x1-output:28x28x16"},
		{"Conv_1-input:7x7x96-output:7x7x256"},
		{"Conv-input:28x28x1-output:28x28x16", "Conv_1-input:7x7x96-output:7x7x256"},
		{"Conv-input:28x28x1-output:28x28x16", "Conv-input:28x28x1-output:28x28x16"},
	} {
		s, _ := l.Sum(k)
		nets = append(nets, targets.MeasuredNetwork{Name: fmt.Sprint(i), Keys: k, MeasuredUS: 1.2*s - 20})
	}
	c, err := targets.FitWith(l, nets, targets.FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// with c0 = 0 the relative least-squares scale is Σ(S/y) / Σ(S/y)²
	var num, den float64
	for _, nw := range nets {
		s, _ := l.Sum(nw.Keys)
		num += s / nw.MeasuredUS
		den += (s / nw.MeasuredUS) * (s / nw.MeasuredUS)
	}
	if c.InterceptUS != 0 || math.Abs(c.Scale-num/den) > 1e-6 {
		t.Fatalf("correction %+v: want intercept 0 and scale %.6f", c, num/den)
	}
}

// Calibration from one or two measured networks works: nothing is held out
// when that would leave fewer than two networks to fit, the entries are
// refitted from the per-layer timings, and the whole-network correction is
// refitted only from two networks on (else the table's is kept), and the
// report says which.
func TestCalibrateFewNetworks(t *testing.T) {
	sp := newSpace()
	rng := rand.New(rand.NewPCG(8, 9))
	cost := baseCost(sp, rng)
	old := table(cost)
	reports := syntheticReports(sp, cost, 4, 1, rng)

	next, rep, err := targets.Calibrate(old, reports[:1], 0.25, 1)
	if err != nil {
		t.Fatal(err)
	}
	if next.Correction != nil || rep.CorrectionRefitted || !rep.InSample || !rep.HoldoutSkipped || rep.FitNetworks != 1 || rep.KeysUpdated+rep.KeysAdded == 0 {
		t.Errorf("one network: correction %v, report %+v", next.Correction, rep)
	}
	if next.ID() == old.ID() {
		t.Error("one network: the entries were not refitted (same table identity)")
	}
	wantText(t, rep.String(), "correction not fitted (1 network measured, 2 needed); the table has none", "in-sample (nothing held out: 1 measured, 3 needed to hold one out)")

	// a table with a correction keeps it
	old.Correction = &targets.Correction{InterceptUS: 3, Scale: 1.1}
	next, rep, err = targets.Calibrate(old, reports[:1], 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if next.Correction == nil || !reflect.DeepEqual(next.Correction, old.Correction) || rep.CorrectionRefitted {
		t.Errorf("one network: correction %+v, want the table's %+v kept", next.Correction, old.Correction)
	}
	wantText(t, rep.String(), "correction not refitted (1 network measured, 2 needed), the table's kept: 3.00 µs + 1.1000 x sum")

	// two networks: the correction is refitted on both, nothing held out
	next, rep, err = targets.Calibrate(old, reports[:2], 0.5, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.CorrectionRefitted || rep.FitNetworks != 2 || rep.HeldOut != 0 || reflect.DeepEqual(next.Correction, old.Correction) {
		t.Errorf("two networks: correction %+v, report %+v", next.Correction, rep)
	}
	wantText(t, rep.String(), "correction refitted on 2 networks")
}

// The networks a table's correction was fitted on are never held out:
// held out, they would test the old predictor on its own fit data. The
// correction records them, and a calibration that measured only those
// says it evaluated in-sample, and why.
func TestCalibrateKeepsFittedNetworksIn(t *testing.T) {
	sp := newSpace()
	rng := rand.New(rand.NewPCG(11, 12))
	cost := baseCost(sp, rng)
	old := table(cost)
	reports := syntheticReports(sp, cost, 40, 1, rng)
	var nets []targets.MeasuredNetwork
	fitted := map[string]bool{}
	for _, r := range reports[:12] {
		nets = append(nets, targets.NetworkFromReport(r))
		fitted[r.Model] = true
	}
	corr, err := targets.Fit(old, nets)
	if err != nil {
		t.Fatal(err)
	}
	if len(corr.Models) != 12 || !sort.StringsAreSorted(corr.Models) || corr.Models[0] != reports[0].ModelID {
		t.Fatalf("correction models %v, want the 12 fitted model IDs, sorted", corr.Models)
	}
	old.Correction = corr
	if err := old.Validate(); err != nil {
		t.Fatal(err)
	}

	_, rep, err := targets.Calibrate(old, reports, 0.5, 3)
	if err != nil {
		t.Fatal(err)
	}
	if rep.KnownNetworks != 12 || len(rep.HeldOutModels) != 20 {
		t.Errorf("known %d, held out %v; want 12 known and 20 held out", rep.KnownNetworks, rep.HeldOutModels)
	}
	for _, m := range rep.HeldOutModels {
		if fitted[m] {
			t.Errorf("held out %s, on which the table's correction was fitted", m)
		}
	}
	wantText(t, rep.String(), "held-out networks: 20 (none of the 12 the table's correction was fitted on)")

	_, rep, err = targets.Calibrate(old, reports[:12], 0.25, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.InSample || rep.HeldOut != 0 {
		t.Errorf("only fitted networks measured: report %+v, want nothing held out", rep)
	}
	wantText(t, rep.String(), "in-sample (nothing held out: the table's correction was fitted on every measured network)")

	bad := old.Clone()
	bad.Correction.Models = []string{"b", "a"}
	wantErr(t, bad.Validate(), "models[1]")
}

func wantText(t *testing.T, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("report lacks %q:\n%s", w, got)
		}
	}
}
