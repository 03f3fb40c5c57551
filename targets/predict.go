package targets

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/pnasml/pnas/internal/archnet"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/search/space"
)

// KeyType returns the layer type of a latency key, by which a correction
// scales its entries: space.KeyType, one of space.StemType, MBConvType,
// HeadType or LogitsType.
func KeyType(key string) string { return space.KeyType(key) }

// Correction maps the sum of a network's table entries to its measured
// latency. Grouping the entries of a network by layer type t into sums S_t,
//
//	predicted = InterceptUS + Σ_t scale(t)·S_t
//
// where scale(t) is TypeScale[t] when present and Scale otherwise. The
// intercept absorbs per-inference overhead (input conversion, dispatch,
// output); the scales absorb the difference between a layer timed inside a
// whole network and its table entry.
type Correction struct {
	InterceptUS float64            `json:"intercept_us"`         // c0, µs
	Scale       float64            `json:"scale"`                // c1, the scale of every type without its own
	TypeScale   map[string]float64 `json:"type_scale,omitempty"` // per layer type scale, when fitted per type
	Lambda      float64            `json:"lambda"`               // ridge strength of the per-type deviations
	Networks    int                `json:"networks"`             // measured networks fitted on
	Models      []string           `json:"models,omitempty"`     // their model IDs (BenchReport.ModelID), sorted; Calibrate holds none of them out
	FitMAPE     float64            `json:"fit_mape"`             // in-sample mean absolute percentage error, %
	FitRMSEUS   float64            `json:"fit_rmse_us"`          // in-sample root mean square error, µs
}

func (c *Correction) clone() *Correction {
	d := *c
	if c.TypeScale != nil {
		d.TypeScale = make(map[string]float64, len(c.TypeScale))
		for k, v := range c.TypeScale {
			d.TypeScale[k] = v
		}
	}
	d.Models = append([]string(nil), c.Models...)
	return &d
}

func (c *Correction) scaleOf(typ string) float64 {
	if s, ok := c.TypeScale[typ]; ok {
		return s
	}
	return c.Scale
}

func (c *Correction) validate() error {
	finite := func(field string, v float64) error {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fieldErr(field, "expected a finite number, got %v", v)
		}
		return nil
	}
	if err := finite("intercept_us", c.InterceptUS); err != nil {
		return err
	}
	if err := finite("scale", c.Scale); err != nil || c.Scale <= 0 {
		return fieldErr("scale", "expected a finite number > 0, got %v", c.Scale)
	}
	for _, t := range sortedKeys(c.TypeScale) {
		if v := c.TypeScale[t]; math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			return fieldErr(fmt.Sprintf("type_scale[%q]", t), "expected a finite number > 0, got %v", v)
		}
	}
	if c.Lambda < 0 || math.IsNaN(c.Lambda) || math.IsInf(c.Lambda, 0) {
		return fieldErr("lambda", "expected a finite number >= 0, got %v", c.Lambda)
	}
	if c.Networks < 0 {
		return fieldErr("networks", "expected an integer >= 0, got %d", c.Networks)
	}
	if len(c.Models) > c.Networks {
		return fieldErr("models", "expected at most networks = %d model IDs, got %d", c.Networks, len(c.Models))
	}
	for i, id := range c.Models {
		if id == "" || i > 0 && c.Models[i-1] >= id {
			return fieldErr(fmt.Sprintf("models[%d]", i), "expected sorted, distinct, non-empty model IDs, got %q", id)
		}
	}
	if err := finiteNonNeg("fit_mape", c.FitMAPE); err != nil {
		return err
	}
	return finiteNonNeg("fit_rmse_us", c.FitRMSEUS)
}

// ModelKeys returns the latency keys of an annotated model's blocks, in
// execution order (see archnet.Blocks).
func ModelKeys(m *ir.Model) ([]string, error) {
	blocks, err := archnet.Blocks(m)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(blocks))
	for i, b := range blocks {
		keys[i] = b.Key
	}
	return keys, nil
}

// typeSums sums the entries of keys per layer type. A key missing from the
// table is an error naming it (and every other missing key).
func (l *LUT) typeSums(keys []string) (map[string]float64, error) {
	sums := map[string]float64{}
	var missing []string
	for _, k := range keys {
		v, ok := l.Lookup(k)
		if !ok {
			if !contains(missing, k) {
				missing = append(missing, k)
			}
			continue
		}
		sums[KeyType(k)] += v
	}
	if len(missing) > 0 {
		return nil, &MissingKeysError{Table: l.ID(), Target: l.Target, Keys: missing}
	}
	return sums, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// MissingKeysError reports latency keys a table has no entry for.
type MissingKeysError struct {
	Table  string   // the table's ID
	Target string   // the table's target
	Keys   []string // the missing keys, in order of first use
}

// Error names every missing key, the table and its target.
func (e *MissingKeysError) Error() string {
	q := make([]string, len(e.Keys))
	for i, k := range e.Keys {
		q[i] = fmt.Sprintf("%q", k)
	}
	word := "key"
	if len(q) > 1 {
		word = "keys"
	}
	return fmt.Sprintf("latency table %s (target %s) has no entry for %s %s; measure these blocks and rebuild or calibrate the table",
		e.Table, e.Target, word, strings.Join(q, ", "))
}

// Sum returns the plain table sum of keys in µs: Σ Lookup(key).
func (l *LUT) Sum(keys []string) (float64, error) {
	sums, err := l.typeSums(keys)
	if err != nil {
		return 0, err
	}
	return total(sums), nil
}

func total(sums map[string]float64) float64 {
	var s float64
	for _, t := range sortedKeys(sums) {
		s += sums[t]
	}
	return s
}

// Predict returns the predicted latency in µs of a network made of keys:
// the table sum with the table's correction applied (the plain sum when it
// has none).
func (l *LUT) Predict(keys []string) (float64, error) {
	sums, err := l.typeSums(keys)
	if err != nil {
		return 0, err
	}
	return predictSums(l.Correction, sums), nil
}

func predictSums(c *Correction, sums map[string]float64) float64 {
	if c == nil {
		return total(sums)
	}
	p := c.InterceptUS
	for _, t := range sortedKeys(sums) {
		p += c.scaleOf(t) * sums[t]
	}
	return p
}

// PredictModel predicts the latency in µs of an annotated model.
func (l *LUT) PredictModel(m *ir.Model) (float64, error) {
	keys, err := ModelKeys(m)
	if err != nil {
		return 0, err
	}
	return l.Predict(keys)
}

// CorrectedTable is a view of a LUT whose entries carry the multiplicative
// part of the correction: Lookup(key) = scale(type of key)·entry. The
// prediction of a network is Overhead() plus the sum of its keys' lookups,
// so a search's expected latency stays a weighted sum of per-key values.
type CorrectedTable struct{ lut *LUT }

// Corrected returns the corrected view of the table.
func (l *LUT) Corrected() *CorrectedTable { return &CorrectedTable{l} }

// ID is the table's ID with "/corrected" appended.
func (c *CorrectedTable) ID() string { return c.lut.ID() + "/corrected" }

// Lookup returns the corrected entry of key in µs.
func (c *CorrectedTable) Lookup(key string) (float64, bool) {
	v, ok := c.lut.Lookup(key)
	if !ok || c.lut.Correction == nil {
		return v, ok
	}
	return c.lut.Correction.scaleOf(KeyType(key)) * v, true
}

// Overhead returns the correction's intercept in µs (0 without one).
func (c *CorrectedTable) Overhead() float64 {
	if c.lut.Correction == nil {
		return 0
	}
	return c.lut.Correction.InterceptUS
}

// MeasuredNetwork is one network's keys and its measured latency.
type MeasuredNetwork struct {
	Name       string   // for errors and reports
	ID         string   // model identity (BenchReport.ModelID), recorded in Correction.Models; may be empty
	Keys       []string // latency keys of its blocks
	MeasuredUS float64  // measured whole-network latency, µs
}

// NetworkFromReport takes the keys and the median total of a bench report.
func NetworkFromReport(r *BenchReport) MeasuredNetwork {
	return MeasuredNetwork{Name: r.Model, ID: r.ModelID, Keys: r.Keys(), MeasuredUS: r.TotalUS()}
}

// FitOptions controls Fit.
type FitOptions struct {
	// PerType fits one scale per layer type (as deviations from the common
	// scale) when the networks hold more than one type.
	PerType bool
	// Lambda is the ridge strength on the per-type deviations, relative to
	// the number of networks, with sums normalised by their mean. Larger
	// values pull every type towards the common scale.
	Lambda float64
}

// DefaultFitOptions are the options of Fit.
var DefaultFitOptions = FitOptions{PerType: true, Lambda: 0.1}

// Fit fits the correction of table to measured networks with
// DefaultFitOptions.
func Fit(table *LUT, networks []MeasuredNetwork) (*Correction, error) {
	return FitWith(table, networks, DefaultFitOptions)
}

// ridgeEps is the ridge strength that keeps the common scale defined when
// every network has the same table sum (it pulls the scale towards 1).
const ridgeEps = 1e-9

// FitWith fits the correction of table to measured networks by ridge-
// regularised relative least squares, with the intercept c0 (the fixed
// per-inference overhead) constrained to be >= 0, (see docs/latency.md): with S the
// table sum, S_t the per-type sums and y the measurement, it solves
//
//	(y − S)/y ≈ (c0 + e·S + Σ_t d_t·S_t)/y
//
// penalising e lightly and each d_t with Lambda, and sets Scale = 1+e and
// TypeScale[t] = 1+e+d_t. At least two networks are needed.
func FitWith(table *LUT, networks []MeasuredNetwork, opt FitOptions) (*Correction, error) {
	n := len(networks)
	if n < 2 {
		return nil, fmt.Errorf("fit: need at least 2 measured networks, got %d", n)
	}
	if opt.Lambda < 0 || math.IsNaN(opt.Lambda) || math.IsInf(opt.Lambda, 0) {
		return nil, fmt.Errorf("fit: lambda: expected a finite number >= 0, got %v", opt.Lambda)
	}
	sums := make([]map[string]float64, n)
	S := make([]float64, n)
	typeSet := map[string]bool{}
	var sbar float64
	for i, nw := range networks {
		if math.IsNaN(nw.MeasuredUS) || math.IsInf(nw.MeasuredUS, 0) || nw.MeasuredUS <= 0 {
			return nil, fmt.Errorf("fit: network %d (%s): measured latency: expected a positive number, got %v", i, nw.Name, nw.MeasuredUS)
		}
		s, err := table.typeSums(nw.Keys)
		if err != nil {
			return nil, fmt.Errorf("fit: network %d (%s): %w", i, nw.Name, err)
		}
		sums[i], S[i] = s, total(s)
		for t := range s {
			typeSet[t] = true
		}
		sbar += S[i]
	}
	sbar /= float64(n)
	if sbar <= 0 {
		return nil, fmt.Errorf("fit: the networks' table sums are all zero; nothing to scale")
	}
	var types []string
	if opt.PerType && len(typeSet) > 1 {
		types = sortedKeys(typeSet)
	}
	p := 2 + len(types)
	A := make([][]float64, p)
	for i := range A {
		A[i] = make([]float64, p)
	}
	b := make([]float64, p)
	x := make([]float64, p)
	for i := range networks {
		x[0], x[1] = 1, S[i]/sbar
		for j, t := range types {
			x[2+j] = sums[i][t] / sbar
		}
		r := (networks[i].MeasuredUS - S[i]) / sbar
		// relative least squares: each row is divided by the measurement,
		// so the fit minimises the squared relative error (what MAPE
		// reports) instead of letting the slowest networks dominate
		w := sbar / networks[i].MeasuredUS
		for a := range x {
			x[a] *= w
		}
		r *= w
		for a := 0; a < p; a++ {
			b[a] += x[a] * r
			for c := 0; c < p; c++ {
				A[a][c] += x[a] * x[c]
			}
		}
	}
	A[1][1] += float64(n) * ridgeEps
	for j := range types {
		A[2+j][2+j] += float64(n) * opt.Lambda
	}
	// keep a copy: a negative per-inference overhead is not physical, and
	// then the intercept is pinned to 0 and the rest refitted
	A0 := make([][]float64, p)
	for i := range A {
		A0[i] = append([]float64(nil), A[i]...)
	}
	b0 := append([]float64(nil), b...)
	coef, err := solve(A, b)
	if err != nil {
		return nil, fmt.Errorf("fit: %w", err)
	}
	if coef[0] < 0 {
		A1 := make([][]float64, p-1)
		for i := range A1 {
			A1[i] = A0[i+1][1:]
		}
		sub, err := solve(A1, b0[1:])
		if err != nil {
			return nil, fmt.Errorf("fit: %w", err)
		}
		coef = append([]float64{0}, sub...)
	}
	c := &Correction{InterceptUS: coef[0] * sbar, Scale: 1 + coef[1], Networks: n}
	ids := map[string]bool{}
	for _, nw := range networks {
		if nw.ID != "" {
			ids[nw.ID] = true
		}
	}
	c.Models = sortedKeys(ids)
	if len(types) > 0 {
		c.Lambda = opt.Lambda
		c.TypeScale = map[string]float64{}
		for j, t := range types {
			c.TypeScale[t] = c.Scale + coef[2+j]
		}
	}
	if c.Scale <= 0 {
		return nil, fmt.Errorf("fit: the fitted scale is %.4g (not positive); the measurements do not grow with the table sums", c.Scale)
	}
	for _, t := range types {
		if c.TypeScale[t] <= 0 {
			return nil, fmt.Errorf("fit: the fitted scale of layer type %s is %.4g (not positive); raise lambda or measure more varied networks", t, c.TypeScale[t])
		}
	}
	pred := make([]float64, n)
	meas := make([]float64, n)
	for i := range networks {
		pred[i] = predictSums(c, sums[i])
		meas[i] = networks[i].MeasuredUS
	}
	st := errorStats(pred, meas)
	c.FitMAPE, c.FitRMSEUS = st.MAPE, st.RMSEUS
	return c, nil
}

// solve solves A·x = b by Gaussian elimination with partial pivoting. A and
// b are overwritten.
func solve(A [][]float64, b []float64) ([]float64, error) {
	n := len(b)
	var scale float64
	for i := range A {
		for _, v := range A[i] {
			scale = math.Max(scale, math.Abs(v))
		}
	}
	for col := 0; col < n; col++ {
		piv := col
		for r := col + 1; r < n; r++ {
			if math.Abs(A[r][col]) > math.Abs(A[piv][col]) {
				piv = r
			}
		}
		if math.Abs(A[piv][col]) <= 1e-12*scale {
			return nil, fmt.Errorf("the normal equations are singular (column %d); measure networks with different table sums", col)
		}
		A[col], A[piv] = A[piv], A[col]
		b[col], b[piv] = b[piv], b[col]
		for r := col + 1; r < n; r++ {
			f := A[r][col] / A[col][col]
			if f == 0 {
				continue
			}
			for c := col; c < n; c++ {
				A[r][c] -= f * A[col][c]
			}
			b[r] -= f * b[col]
		}
	}
	x := make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		s := b[r]
		for c := r + 1; c < n; c++ {
			s -= A[r][c] * x[c]
		}
		x[r] = s / A[r][r]
	}
	return x, nil
}

// ErrorStats compares predictions with measurements.
type ErrorStats struct {
	N      int     // networks compared
	MAPE   float64 // mean absolute percentage error, %
	RMSEUS float64 // root mean square error, µs
}

func errorStats(pred, meas []float64) ErrorStats {
	st := ErrorStats{N: len(pred)}
	if st.N == 0 {
		return st
	}
	var ape, se float64
	for i := range pred {
		d := pred[i] - meas[i]
		ape += math.Abs(d) / meas[i]
		se += d * d
	}
	st.MAPE = 100 * ape / float64(st.N)
	st.RMSEUS = math.Sqrt(se / float64(st.N))
	return st
}

// CalibrationReport says what Calibrate did and how well the old and new
// tables predict the evaluation networks.
type CalibrationReport struct {
	OldID, NewID string // identities of the input and the calibrated table

	Reports       int      // bench reports given
	FitReports    int      // reports used for entries and the correction fit
	HeldOut       int      // reports held out from both
	HeldOutModels []string // models (names) held out, sorted
	AlreadyFolded int      // fit reports already in the table's sources: used for the fit, not for entries
	KeysUpdated   int      // existing entries blended with new measurements
	KeysAdded     int      // entries new to the table

	// InSample is true when nothing was held out: the statistics below are
	// then measured on the fit reports themselves. HoldoutSkipped says why
	// when a positive holdout fraction held nothing out: too few networks
	// were measured to hold one out and still refit the correction.
	InSample       bool
	HoldoutSkipped bool

	// FitNetworks counts the distinct networks (model_id) of the fit
	// reports. CorrectionRefitted says whether the whole-network correction
	// was refitted: it needs at least two networks; otherwise the table's
	// correction is kept as it was (Correction is then the old one, or
	// zero without one).
	FitNetworks        int
	CorrectionRefitted bool
	// KnownNetworks counts the measured networks the table's correction
	// was fitted on (Correction.Models): they are never held out.
	KnownNetworks int
	// Unpredictable lists evaluation reports left out of the statistics
	// because the old or the new table lacks one of their keys.
	Unpredictable []string

	BeforePlain     ErrorStats // old table, plain sum
	BeforePredictor ErrorStats // old table with its correction (plain sum without one)
	AfterPlain      ErrorStats // new table, plain sum
	AfterPredictor  ErrorStats // new table with the new correction

	Correction Correction // the new correction
}

// String renders the report as a small table for humans.
func (r CalibrationReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "latency table %s -> %s\n", r.OldID, r.NewID)
	fmt.Fprintf(&b, "reports: %d (fit %d, held out %d, already folded %d); entries: %d updated, %d added\n",
		r.Reports, r.FitReports, r.HeldOut, r.AlreadyFolded, r.KeysUpdated, r.KeysAdded)
	c := r.Correction
	switch {
	case r.CorrectionRefitted:
		fmt.Fprintf(&b, "correction refitted on %d networks: ", r.FitNetworks)
	case c.Scale != 0:
		fmt.Fprintf(&b, "correction not refitted (%d network measured, %d needed), the table's kept: ", r.FitNetworks, minFitNetworks)
	default:
		fmt.Fprintf(&b, "correction not fitted (%d network measured, %d needed); the table has none\n", r.FitNetworks, minFitNetworks)
	}
	if c.Scale != 0 {
		fmt.Fprintf(&b, "%.2f µs + %.4f x sum", c.InterceptUS, c.Scale)
		for _, t := range sortedKeys(c.TypeScale) {
			fmt.Fprintf(&b, "; %s x%.4f", t, c.TypeScale[t])
		}
		b.WriteString("\n")
	}
	set := "held-out"
	switch {
	case r.HoldoutSkipped:
		set = fmt.Sprintf("in-sample (nothing held out: %d measured, %d needed to hold one out)", r.FitNetworks, minFitNetworks+1)
	case r.InSample && r.KnownNetworks > 0 && r.KnownNetworks == r.FitNetworks:
		set = "in-sample (nothing held out: the table's correction was fitted on every measured network)"
	case r.InSample:
		set = "in-sample (nothing held out)"
	}
	fmt.Fprintf(&b, "%s networks: %d", set, r.AfterPredictor.N)
	if r.KnownNetworks > 0 && !r.InSample {
		fmt.Fprintf(&b, " (none of the %d the table's correction was fitted on)", r.KnownNetworks)
	}
	if len(r.Unpredictable) > 0 {
		fmt.Fprintf(&b, " (%d skipped: keys missing)", len(r.Unpredictable))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "%-22s %9s %12s\n", "", "MAPE %", "RMSE µs")
	for _, row := range []struct {
		name string
		s    ErrorStats
	}{{"before, table sum", r.BeforePlain}, {"before, predictor", r.BeforePredictor},
		{"after, table sum", r.AfterPlain}, {"after, predictor", r.AfterPredictor}} {
		fmt.Fprintf(&b, "%-22s %9.2f %12.2f\n", row.name, row.s.MAPE, row.s.RMSEUS)
	}
	return b.String()
}

// minFitNetworks is the number of distinct networks the correction fit
// needs: with one, the per-inference overhead and the scale cannot be told
// apart.
const minFitNetworks = 2

// Calibrate refits table from bench reports of its target and machine.
//
// Reports are grouped by model_id and whole models are held out at random
// (holdoutFraction of the models, at least one when the fraction is
// positive; seed fixes the draw); models whose reports the table already
// folded in are never held out. From the remaining reports, each key's
// entry is re-estimated (median of the measured layer medians) and blended
// with the old entry by count, and the correction is refitted on the new
// table with DefaultFitOptions. The report compares the plain table sum
// and the predictor, before and after, on the held-out reports (on the fit
// reports when holdoutFraction is 0).
func Calibrate(table *LUT, reports []*BenchReport, holdoutFraction float64, seed uint64) (*LUT, CalibrationReport, error) {
	rep := CalibrationReport{OldID: table.ID(), Reports: len(reports)}
	if err := table.Validate(); err != nil {
		return nil, rep, fmt.Errorf("calibrate: latency table: %w", err)
	}
	if !(holdoutFraction >= 0 && holdoutFraction < 1) {
		return nil, rep, fmt.Errorf("calibrate: holdout fraction: expected a number in [0, 1), got %v", holdoutFraction)
	}
	if len(reports) == 0 {
		return nil, rep, fmt.Errorf("calibrate: no bench reports")
	}
	ks, threads, m, _, err := provenance(table.Target, reports)
	if err != nil {
		return nil, rep, fmt.Errorf("calibrate: %w", err)
	}
	switch {
	case ks != table.KernelSet:
		return nil, rep, fmt.Errorf("calibrate: reports ran kernel set %q, the table is for %q", ks, table.KernelSet)
	case threads != table.Threads:
		return nil, rep, fmt.Errorf("calibrate: reports ran %d threads, the table is for %d", threads, table.Threads)
	case m != table.Machine:
		return nil, rep, fmt.Errorf("calibrate: reports come from %q with %d cores, the table from %q with %d cores; build a new table for a new machine with BuildLUT",
			m.CPU, m.Cores, table.Machine.CPU, table.Machine.Cores)
	}

	// Split by model.
	folded := map[string]bool{}
	for _, d := range table.Sources {
		folded[d] = true
	}
	// The table's correction was fitted on its Models: held out, they
	// would test the old predictor on its own fit data and the new one
	// on unseen data, so they stay in the fit set too.
	known := map[string]bool{}
	if table.Correction != nil {
		for _, id := range table.Correction.Models {
			known[id] = true
		}
	}
	groups := map[string][]int{}
	forced := map[string]bool{} // models that must stay in the fit set
	for i, r := range reports {
		groups[r.ModelID] = append(groups[r.ModelID], i)
		if folded[ReportDigest(r)] || known[r.ModelID] {
			forced[r.ModelID] = true
		}
	}
	for id := range groups {
		if known[id] {
			rep.KnownNetworks++
		}
	}
	var eligible []string
	for _, id := range sortedKeys(groups) {
		if !forced[id] {
			eligible = append(eligible, id)
		}
	}
	nHold := int(math.Round(holdoutFraction * float64(len(groups))))
	if holdoutFraction > 0 && nHold == 0 {
		nHold = 1
	}
	// at least minFitNetworks models stay in the fit, so the correction can
	// be refitted; with fewer measured, nothing is held out
	if lim := len(groups) - minFitNetworks; nHold > lim {
		rep.HoldoutSkipped = nHold > 0
		nHold = max(lim, 0)
	}
	nHold = min(nHold, len(eligible))
	rng := rand.New(rand.NewPCG(seed, 0x706e6173))
	rng.Shuffle(len(eligible), func(i, j int) { eligible[i], eligible[j] = eligible[j], eligible[i] })
	held := map[string]bool{}
	for _, id := range eligible[:nHold] {
		held[id] = true
	}
	var fit, eval []*BenchReport
	for _, r := range reports {
		if held[r.ModelID] {
			eval = append(eval, r)
		} else {
			fit = append(fit, r)
		}
	}
	rep.FitReports, rep.HeldOut = len(fit), len(eval)
	fitModels := map[string]bool{}
	for _, r := range fit {
		fitModels[r.ModelID] = true
	}
	rep.FitNetworks = len(fitModels)
	models := map[string]bool{}
	for _, r := range eval {
		models[r.Model] = true
	}
	rep.HeldOutModels = sortedKeys(models)
	if len(eval) == 0 {
		eval, rep.InSample = fit, true
	}

	// New entries from the fit reports not yet folded in.
	next := table.Clone()
	var fresh []*BenchReport
	for _, r := range fit {
		if folded[ReportDigest(r)] {
			rep.AlreadyFolded++
		} else {
			fresh = append(fresh, r)
		}
	}
	samples := collectLayers(fresh)
	for _, k := range sortedKeys(samples) {
		nw := entryFromSamples(samples[k])
		if old, ok := next.Entries[k]; ok {
			next.Entries[k] = blend(old, nw)
			rep.KeysUpdated++
		} else {
			next.Entries[k] = nw
			rep.KeysAdded++
		}
	}
	addSources(next, fresh)
	if gv := goVersions(next.GoVersion, fresh); gv != "" {
		next.GoVersion = gv
	}

	// Correction on the new table, when enough networks were measured to
	// tell the per-inference overhead from the scale; else the table's is
	// kept (if it has one).
	if rep.FitNetworks >= minFitNetworks {
		nets := make([]MeasuredNetwork, len(fit))
		for i, r := range fit {
			nets[i] = NetworkFromReport(r)
		}
		corr, err := Fit(next, nets)
		if err != nil {
			return nil, rep, fmt.Errorf("calibrate: %w", err)
		}
		next.Correction = corr
		rep.CorrectionRefitted = true
	}
	if next.Correction != nil {
		rep.Correction = *next.Correction.clone()
	}
	if err := next.Validate(); err != nil {
		return nil, rep, fmt.Errorf("calibrate: new table: %w", err)
	}
	rep.NewID = next.ID()

	// Evaluation.
	var bp, bc, ap, ac, meas []float64
	for _, r := range eval {
		keys := r.Keys()
		oldSums, err1 := table.typeSums(keys)
		newSums, err2 := next.typeSums(keys)
		if err1 != nil || err2 != nil {
			rep.Unpredictable = append(rep.Unpredictable, r.Model)
			continue
		}
		bp = append(bp, total(oldSums))
		bc = append(bc, predictSums(table.Correction, oldSums))
		ap = append(ap, total(newSums))
		ac = append(ac, predictSums(next.Correction, newSums))
		meas = append(meas, r.TotalUS())
	}
	rep.BeforePlain, rep.BeforePredictor = errorStats(bp, meas), errorStats(bc, meas)
	rep.AfterPlain, rep.AfterPredictor = errorStats(ap, meas), errorStats(ac, meas)
	return next, rep, nil
}

// blend merges a new estimate into an old entry, weighting each by its
// count; the variance is pooled (within plus between the two means).
func blend(old, nw Entry) Entry {
	wo, wn := float64(old.Count), float64(nw.Count)
	w := wo + wn
	mean := (wo*old.MeanUS + wn*nw.MeanUS) / w
	do, dn := old.MeanUS-mean, nw.MeanUS-mean
	return Entry{
		MeanUS:   mean,
		VarUS2:   (wo*(old.VarUS2+do*do) + wn*(nw.VarUS2+dn*dn)) / w,
		Count:    old.Count + nw.Count,
		MedianUS: (wo*old.MedianUS + wn*nw.MedianUS) / w,
	}
}

// goVersions merges the comma-joined version list of a table with the
// versions of reports.
func goVersions(have string, reports []*BenchReport) string {
	set := map[string]bool{}
	for _, v := range strings.Split(have, ",") {
		if v != "" {
			set[v] = true
		}
	}
	for _, r := range reports {
		set[r.GoVersion] = true
	}
	return strings.Join(sortedKeys(set), ",")
}
