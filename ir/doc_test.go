package ir_test

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pnasml/pnas/internal/archnet"
	"github.com/pnasml/pnas/ir"
)

// The format definition in docs/ir.md is checked against the Go types: its
// field tables, op-type sections, weight roles, activations and example.

const docPath = "../docs/ir.md"

// docSection is a heading of the markdown document with its own lines (up
// to the next heading of any level) and, in all, those of its subsections.
type docSection struct {
	level int
	title string
	own   []string // lines up to the next heading
	lines []string // own lines and those of all subsections
}

func readDoc(t *testing.T) []docSection {
	t.Helper()
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	var secs []docSection
	inFence := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if !inFence && strings.HasPrefix(line, "#") {
			level := len(line) - len(strings.TrimLeft(line, "#"))
			secs = append(secs, docSection{level: level, title: strings.TrimSpace(line[level:])})
			continue
		}
		if len(secs) > 0 {
			secs[len(secs)-1].own = append(secs[len(secs)-1].own, line)
		}
	}
	for i := range secs {
		secs[i].lines = append([]string(nil), secs[i].own...)
		for j := i + 1; j < len(secs) && secs[j].level > secs[i].level; j++ {
			secs[i].lines = append(secs[i].lines, secs[j].own...)
		}
	}
	return secs
}

// section returns the section whose title's first word (backticks and
// trailing colon removed) is name.
func section(t *testing.T, secs []docSection, name string) docSection {
	t.Helper()
	for _, s := range secs {
		f := strings.Fields(s.title)
		if len(f) > 0 && strings.Trim(f[0], "`:") == name {
			return s
		}
	}
	t.Fatalf("%s: no section titled %q", docPath, name)
	return docSection{}
}

// tableKeys returns the first cell of every table body row whose first cell
// is a single `code span`, in order.
func tableKeys(lines []string) []string {
	var keys []string
	re := regexp.MustCompile("^\\|\\s*`([^`]+)`\\s*\\|")
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			keys = append(keys, m[1])
		}
	}
	return keys
}

// jsonFields lists the JSON names of a struct's fields.
func jsonFields(typ reflect.Type) []string {
	var names []string
	for i := 0; i < typ.NumField(); i++ {
		tag := typ.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !typ.Field(i).IsExported() {
			continue
		}
		if name == "" {
			name = typ.Field(i).Name
		}
		names = append(names, name)
	}
	return names
}

func TestDocFieldTables(t *testing.T) {
	secs := readDoc(t)
	for _, v := range []any{ir.Model{}, ir.Input{}, ir.Op{}, ir.Block{}, ir.Metadata{}, ir.SearchInfo{}, ir.Accuracy{}} {
		typ := reflect.TypeOf(v)
		sec := section(t, secs, typ.Name())
		documented := tableKeys(sec.own)
		fields := jsonFields(typ)
		for _, f := range fields {
			if !slices.Contains(documented, f) {
				t.Errorf("%s: field %q of %s is not in its table", docPath, f, typ.Name())
			}
		}
		for _, d := range documented {
			if !slices.Contains(fields, d) {
				t.Errorf("%s: table of %s documents %q, which %s has no JSON field for", docPath, typ.Name(), d, typ.Name())
			}
		}
		seen := map[string]bool{}
		for _, d := range documented {
			if seen[d] {
				t.Errorf("%s: table of %s lists %q twice", docPath, typ.Name(), d)
			}
			seen[d] = true
		}
	}
}

func TestDocOpTypes(t *testing.T) {
	secs := readDoc(t)
	var documented []string
	for _, title := range secTitles(secs, findTitle(t, secs, "Op types")) {
		documented = append(documented, strings.Trim(strings.Fields(title)[0], "`:"))
	}
	var want []string
	for _, ot := range ir.OpTypes {
		want = append(want, string(ot))
	}
	if diff := cmp.Diff(want, documented); diff != "" {
		t.Errorf("%s: op-type sections differ from ir.OpTypes (-code +doc):\n%s", docPath, diff)
	}

	// The weight roles of every op type, with and without a bias.
	for _, ot := range ir.OpTypes {
		sec := section(t, secs, string(ot))
		var docRoles []string
		for _, k := range tableKeys(sec.lines) {
			if r, ok := strings.CutPrefix(k, "<op>."); ok {
				docRoles = append(docRoles, r)
			}
		}
		var roles []string
		for _, bias := range []bool{false, true} {
			for _, r := range ir.ParamRoles(&ir.Op{Name: "x", Type: ot, Bias: bias}) {
				if !slices.Contains(roles, r) {
					roles = append(roles, r)
				}
			}
		}
		if diff := cmp.Diff(roles, docRoles); diff != "" {
			t.Errorf("%s: weight roles of %s differ from ir.ParamRoles (-code +doc):\n%s", docPath, ot, diff)
		}
	}
}

// findTitle returns the section with exactly this title.
func findTitle(t *testing.T, secs []docSection, title string) docSection {
	t.Helper()
	for _, s := range secs {
		if s.title == title {
			return s
		}
	}
	t.Fatalf("%s: no section titled %q", docPath, title)
	return docSection{}
}

// secTitles lists the titles of the direct subsections of parent.
func secTitles(secs []docSection, parent docSection) []string {
	var titles []string
	in := false
	for _, s := range secs {
		if s.title == parent.title && s.level == parent.level {
			in = true
			continue
		}
		if in {
			if s.level <= parent.level {
				break
			}
			if s.level == parent.level+1 {
				titles = append(titles, s.title)
			}
		}
	}
	return titles
}

func TestDocActivations(t *testing.T) {
	secs := readDoc(t)
	got := tableKeys(findTitle(t, secs, "Activations").lines)
	want := []string{string(ir.ActNone), string(ir.ActReLU), string(ir.ActReLU6)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: activation table (-code +doc):\n%s", docPath, diff)
	}
	// each documented activation is accepted by Verify, anything else not
	for _, a := range append(got, "gelu") {
		m := docChainModel(t)
		m.Ops[1].Activation = ir.Activation(a)
		err := m.Verify()
		if (err == nil) != slices.Contains(want, a) {
			t.Errorf("activation %q: Verify = %v", a, err)
		}
	}
}

// docChainModel is input -> conv2d -> activation -> pool -> flatten -> dense.
func docChainModel(t *testing.T) *ir.Model {
	t.Helper()
	b := ir.NewBuilder("chain", 1, 4, 4, nil)
	x := b.Conv("conv", b.Input(), 2, 3, 1, 1)
	x = b.Act("act", x, ir.ActReLU)
	x = b.GlobalPool("pool", x)
	x = b.Flatten("flat", x)
	x = b.Dense("fc", x, 3, nil, nil)
	m, err := b.Model(x)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fencedBlock returns the body of the first ```lang block in lines.
func fencedBlock(lines []string, lang string) string {
	var b strings.Builder
	in := false
	for _, l := range lines {
		switch {
		case !in && l == "```"+lang:
			in = true
		case in && l == "```":
			return b.String()
		case in:
			b.WriteString(l + "\n")
		}
	}
	return ""
}

func TestDocExample(t *testing.T) {
	secs := readDoc(t)
	ex := findTitle(t, secs, "Example")
	doc := fencedBlock(ex.lines, "json")
	if doc == "" {
		t.Fatalf("%s: Example has no json block", docPath)
	}
	m, err := ir.Decode([]byte(doc))
	if err != nil {
		t.Fatalf("%s: example does not decode: %v", docPath, err)
	}
	// The weight table: `name` | `[shape]`.
	row := regexp.MustCompile("^\\|\\s*`([^`]+)`\\s*\\|\\s*`\\[([0-9, ]+)\\]`\\s*\\|$")
	m.Params = map[string]*ir.Tensor{}
	for _, l := range ex.lines {
		r := row.FindStringSubmatch(l)
		if r == nil {
			continue
		}
		var shape []int
		for _, f := range strings.Split(r[2], ",") {
			d, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				t.Fatalf("%s: weight %s: bad shape %q", docPath, r[1], r[2])
			}
			shape = append(shape, d)
		}
		m.Params[r[1]] = ir.NewTensor(shape...)
	}
	if len(m.Params) == 0 {
		t.Fatalf("%s: Example lists no weights", docPath)
	}
	for k, p := range m.Params {
		if strings.HasSuffix(k, ".var") {
			for i := range p.Data {
				p.Data[i] = 1
			}
		}
	}
	if err := m.Verify(); err != nil {
		t.Fatalf("%s: example with the listed weights does not verify: %v", docPath, err)
	}
	// It uses every op type.
	used := map[ir.OpType]bool{}
	for _, op := range m.Ops {
		used[op.Type] = true
	}
	for _, ot := range ir.OpTypes {
		if !used[ot] {
			t.Errorf("%s: example does not use op type %s", docPath, ot)
		}
	}
	// The latency keys listed are those Blocks derives.
	blocks, err := archnet.Blocks(m)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, b := range blocks {
		keys = append(keys, b.Key)
	}
	var docKeys []string
	for _, l := range ex.lines {
		l = strings.TrimSpace(l)
		if strings.Contains(l, "-input:") && !strings.Contains(l, " ") {
			docKeys = append(docKeys, l)
		}
	}
	if diff := cmp.Diff(keys, docKeys); diff != "" {
		t.Errorf("%s: example latency keys (-Blocks +doc):\n%s", docPath, diff)
	}
	// The stated costs.
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(ex.lines, " ")
	for _, want := range []string{
		strconv.Itoa(st.Params) + " weight values",
		strconv.FormatInt(st.MACs, 10) + " multiply-accumulates",
		strconv.FormatInt(st.PeakActivationBytes, 10) + " bytes, during `" + st.PeakOp + "`",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("%s: example text lacks %q", docPath, want)
		}
	}
	// Save writes what the example shows: re-encoding the decoded example
	// and decoding it again gives the same model.
	enc, err := ir.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ir.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	back.Params = m.Params
	if diff := cmp.Diff(m, back); diff != "" {
		t.Errorf("example does not survive Encode/Decode:\n%s", diff)
	}
}

func TestDocVersionAndPreprocessing(t *testing.T) {
	secs := readDoc(t)
	text := strings.Join(readDocLines(secs), "\n")
	for _, want := range []string{
		"`\"" + ir.FormatName + "\"`",
		"version `" + strconv.Itoa(ir.FormatVersion) + "`",
		"x[c, y, x] = (p[c, y, x] / 255 - mean[c]) / std[c]",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("%s: lacks %q", docPath, want)
		}
	}
	// The documented preprocessing is what Input.Preprocess does.
	in := ir.Input{Name: "input", Shape: []int{2, 1, 2}, Layout: "NCHW", Mean: []float32{0.5, 0.25}, Std: []float32{0.25, 0.5}}
	got, err := in.Preprocess([]uint8{255, 0, 51, 255}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{(1 - 0.5) / 0.25, (0 - 0.5) / 0.25, (0.2 - 0.25) / 0.5, (1 - 0.25) / 0.5}
	for i := range want {
		if d := got[i] - want[i]; d > 1e-6 || d < -1e-6 {
			t.Errorf("Preprocess[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

func readDocLines(secs []docSection) []string {
	var all []string
	for _, s := range secs {
		if s.level == 1 {
			all = append(all, s.lines...)
		}
	}
	return all
}
