package shell

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rt "github.com/pnasml/pnas/runtime"
	"github.com/pnasml/pnas/targets"
)

// poolNet is a stand-in network: its three outputs are the means of the
// three input channels (a global average pool).
type poolNet struct{ in, out rt.Tensor }

func (n *poolNet) input() rt.Tensor  { return n.in }
func (n *poolNet) output() rt.Tensor { return n.out }
func (n *poolNet) logits() rt.Tensor { return n.out }
func (n *poolNet) forward(p *rt.Pool, tm *timer) error {
	tm.begin()
	err := rt.GlobalAvgPool(n.out, n.in)
	tm.lap(0)
	return err
}

func testProgram() *program {
	spec := &network{
		name: "pool3", id: "0123456789abcdef", inC: 3, inH: 4, inW: 4,
		mean: []float32{0.5, 0.5, 0.5}, std: []float32{0.25, 0.25, 0.25},
		labels: []string{"red", "green", "blue"}, outputs: 3, arenaFloats: 4*4*8 + 8,
		layers: []layer{{name: "-1.0 pool", key: "", ops: []string{"pool"}}},
	}
	spec.build = func(w, arena []float32) (net, error) {
		in := rt.Tensor{Data: arena[:128], H: 4, W: 4, C: 3, CS: 8}
		out := rt.Tensor{Data: arena[128:136], H: 1, W: 1, C: 3, CS: 8}
		return &poolNet{in: in, out: out}, nil
	}
	return &program{target: "generic", kernelSet: "go", nets: []*network{spec}}
}

func runProg(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb, testProgram())
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func f32bytes(v []float32) []byte {
	var b []byte
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

func npy(shape string, descr string, data []byte) []byte {
	h := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	b := []byte("\x93NUMPY\x01\x00")
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h)))
	return append(append(b, h...), data...)
}

func solidImage(w, h int, c color.Color) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, c)
		}
	}
	return img
}

type result struct {
	Logits []float64 `json:"logits"`
	Probs  []float64 `json:"probs"`
	Top    []struct {
		Class int     `json:"class"`
		Label string  `json:"label"`
		Prob  float64 `json:"prob"`
	} `json:"top"`
}

func classifyJSON(t *testing.T, args ...string) result {
	t.Helper()
	code, out, errs := runProg(t, append(args, "-json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r result
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	return r
}

func TestClassifyPNGResizedAndNormalised(t *testing.T) {
	var b bytes.Buffer
	if err := png.Encode(&b, solidImage(9, 7, color.RGBA{R: 255, G: 0, B: 128, A: 255})); err != nil {
		t.Fatal(err)
	}
	r := classifyJSON(t, "-input", writeFile(t, "x.png", b.Bytes()), "-k", "2")
	want := []float64{(1 - 0.5) / 0.25, (0 - 0.5) / 0.25, (128.0/255 - 0.5) / 0.25}
	for i := range want {
		if math.Abs(r.Logits[i]-want[i]) > 1e-5 {
			t.Errorf("logit %d = %v, want %v", i, r.Logits[i], want[i])
		}
	}
	if len(r.Top) != 2 || r.Top[0].Class != 0 || r.Top[0].Label != "red" || r.Top[1].Class != 2 {
		t.Errorf("top = %+v, want red then blue", r.Top)
	}
	sum := 0.0
	for _, p := range r.Probs {
		sum += p
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("probabilities sum to %v", sum)
	}
}

func TestClassifyJPEGGreyToRGB(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 4, 4))
	for i := range g.Pix {
		g.Pix[i] = 200
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, g, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	r := classifyJSON(t, "-input", writeFile(t, "x.jpg", b.Bytes()))
	want := (200.0/255 - 0.5) / 0.25
	for i, v := range r.Logits {
		if math.Abs(v-want) > 0.02 {
			t.Errorf("logit %d = %v, want about %v (grey replicated)", i, v, want)
		}
	}
}

func idx(n, h, w int, fill func(i int) byte) []byte {
	b := []byte{0, 0, 8, 3}
	for _, d := range []int{n, h, w} {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
	}
	for i := 0; i < n*h*w; i++ {
		b = append(b, fill(i))
	}
	return b
}

func TestClassifyGzippedIDXIndex(t *testing.T) {
	data := idx(3, 4, 4, func(i int) byte { return byte(i / 16 * 100) }) // image k is all k*100
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(data)
	zw.Close()
	path := writeFile(t, "images-idx3-ubyte.gz", z.Bytes())
	r := classifyJSON(t, "-input", path, "-index", "2")
	want := (200.0/255 - 0.5) / 0.25
	if math.Abs(r.Logits[0]-want) > 1e-5 {
		t.Errorf("logit = %v, want %v (image 2)", r.Logits[0], want)
	}
	code, _, errs := runProg(t, "-input", path, "-index", "3")
	if code != 2 || !strings.Contains(errs, "-index 3 out of range: the file holds 3 images") {
		t.Errorf("index 3: exit %d, stderr %q", code, errs)
	}
}

func TestRawInputsUsedAsIs(t *testing.T) {
	x := make([]float32, 48)
	for i := range x {
		x[i] = float32(i / 16) // channel c is all c
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"x.bin", f32bytes(x)},
		{"x.npy", npy("(1, 3, 4, 4)", "<f4", f32bytes(x))},
		{"y.npy", npy("(3, 4, 4)", "<f4", f32bytes(x))},
	} {
		r := classifyJSON(t, "-input", writeFile(t, f.name, f.data))
		for c, v := range r.Logits {
			if v != float64(c) {
				t.Errorf("%s: logit %d = %v, want %d", f.name, c, v, c)
			}
		}
	}
}

func TestBadInputs(t *testing.T) {
	x := f32bytes(make([]float32, 48))
	nan := f32bytes(make([]float32, 48))
	binary.LittleEndian.PutUint32(nan[20:], math.Float32bits(float32(math.NaN())))
	trunc := idx(2, 4, 4, func(int) byte { return 1 })
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"short.bin", x[:100], "expected 192 bytes"},
		{"long.bin", append(x, x...), "expected 192 bytes"},
		{"nan.bin", nan, "value 5 of sample 0 is NaN"},
		{"f8.npy", npy("(1, 3, 4, 4)", "<f8", x), "dtype <f8"},
		{"shape.npy", npy("(1, 3, 5, 4)", "<f4", x), "shape [1 3 5 4]"},
		{"trunc.npy", npy("(1, 3, 4, 4)", "<f4", x[:50]), "truncated"},
		{"trunc.idx", trunc[:len(trunc)-3], "truncated"},
		{"bad.png", []byte("\x89PNG\r\n\x1a\nnot really"), "decoding image"},
		{"notes.txt", []byte("hello"), "unrecognised format"},
		{"empty.bin", nil, "expected 192 bytes"},
	}
	for _, c := range cases {
		code, out, errs := runProg(t, "-input", writeFile(t, c.name, c.data))
		if code != 2 || out != "" || !strings.Contains(errs, c.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 2 and one line containing %q", c.name, code, out, errs, c.want)
		}
	}
	code, _, errs := runProg(t, "-input", filepath.Join(t.TempDir(), "missing.png"))
	if code != 2 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: exit %d, stderr %q", code, errs)
	}
}

// TestHugeImageRejected checks that an image whose header claims an
// enormous size is rejected before decoding.
func TestHugeImageRejected(t *testing.T) {
	var b bytes.Buffer
	if err := png.Encode(&b, solidImage(2, 2, color.White)); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()
	// IHDR data starts at byte 16: width and height, then the CRC of
	// "IHDR" and its 13 data bytes at byte 29.
	binary.BigEndian.PutUint32(data[16:], 100000)
	binary.BigEndian.PutUint32(data[20:], 100000)
	binary.BigEndian.PutUint32(data[29:], crc32.ChecksumIEEE(data[12:29]))
	code, _, errs := runProg(t, "-input", writeFile(t, "huge.png", data))
	if code != 2 || !strings.Contains(errs, "100000x100000 pixels") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"-k", "0", "-input", "x"}, {"-bench", "-1"}, {"-threads", "0", "-bench", "1"}, {"-nope"}, {"extra"}} {
		code, _, errs := runProg(t, args...)
		if code != 2 || errs == "" {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs)
		}
	}
	code, _, errs := runProg(t, "-h")
	if code != 0 || !strings.Contains(errs, "-bench N") {
		t.Errorf("-h: exit %d, stderr %q", code, errs)
	}
}

func TestTextOutput(t *testing.T) {
	x := f32bytes(append(append(make([]float32, 16), make([]float32, 16)...), []float32{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}...))
	code, out, errs := runProg(t, "-input", writeFile(t, "x.bin", x), "-k", "1")
	if code != 0 {
		t.Fatal(errs)
	}
	if !strings.Contains(out, "top 1 of 3") || !strings.Contains(out, "class 2") || !strings.Contains(out, "blue") {
		t.Errorf("output %q", out)
	}
}

func TestDumpOutputManySamples(t *testing.T) {
	x := make([]float32, 3*48)
	for i := range x {
		x[i] = float32(i / 16)
	}
	out := filepath.Join(t.TempDir(), "out.bin")
	code, _, errs := runProg(t, "-input", writeFile(t, "x.bin", f32bytes(x)), "-dump-output", out)
	if code != 0 {
		t.Fatal(errs)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 3*3*4 {
		t.Fatalf("dump has %d bytes, want 36", len(b))
	}
	for i := 0; i < 9; i++ {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])); got != float32(3*(i/3)+i%3) {
			t.Errorf("value %d = %v, want %v", i, got, 3*(i/3)+i%3)
		}
	}
}

func TestBenchJSONParses(t *testing.T) {
	code, out, errs := runProg(t, "-bench", "7", "-warmup", "2", "-json", "-threads", "2")
	if code != 0 {
		t.Fatal(errs)
	}
	rep, err := targets.ParseBench([]byte(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Runs != 7 || rep.Warmup != 2 || rep.Threads != 2 || rep.Model != "pool3" || rep.Target != "generic" ||
		len(rep.Layers) != 1 || rep.Layers[0].Name != "-1.0 pool" || rep.CPU == "" {
		t.Errorf("report %+v", rep)
	}
	code, out, _ = runProg(t, "-bench", "3")
	if code != 0 || !strings.Contains(out, "total") || !strings.Contains(out, "-1.0 pool") {
		t.Errorf("text bench: exit %d, %q", code, out)
	}
}

// TestBenchStdin drives -bench-stdin as make bench does: a line per block
// of runs, a JSON array of run times back for each; a bad line stops it
// with a usage error naming the line.
func TestBenchStdin(t *testing.T) {
	defer func(r io.Reader) { benchStdin = r }(benchStdin)
	benchStdin = strings.NewReader("3\n\n 2 \n")
	code, out, errs := runProg(t, "-bench-stdin", "-warmup", "1", "-threads", "2")
	if code != 0 {
		t.Fatal(errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), out)
	}
	for i, want := range []int{3, 2} {
		var times []int64
		if err := json.Unmarshal([]byte(lines[i]), &times); err != nil {
			t.Fatalf("line %d: %v: %q", i+1, err, lines[i])
		}
		if len(times) != want || slices.Min(times) <= 0 {
			t.Errorf("line %d: %v, want %d positive times", i+1, times, want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"2\nx\n", "line 2: expected a number of runs"},
		{"0\n", "line 1: expected a number of runs from 1 to 100000, got \"0\""},
		{"100001\n", "line 1"},
	} {
		benchStdin = strings.NewReader(c.in)
		code, _, errs := runProg(t, "-bench-stdin", "-warmup", "0")
		if code != exitUsage || !strings.Contains(errs, c.want) {
			t.Errorf("%q: exit %d, %q; want exit %d naming %q", c.in, code, errs, exitUsage, c.want)
		}
	}
	for _, args := range [][]string{{"-bench-stdin", "-bench", "3"}, {"-bench-stdin", "-json"}, {"-bench-stdin", "-eval", "x"}} {
		code, _, errs := runProg(t, args...)
		if code != exitUsage || !strings.Contains(errs, "-bench-stdin: give it without") {
			t.Errorf("%v: exit %d, %q", args, code, errs)
		}
	}
}

func TestSummarizeMatchesTargets(t *testing.T) {
	s := []int64{5, 1, 9, 3, 3, 7, 100, 2}
	got := summarize(s)
	f := make([]float64, len(s))
	for i, v := range s {
		f[i] = float64(v)
	}
	want := targets.Summarize(f)
	if got.MedianNS != want.MedianNS || got.P90NS != want.P90NS || math.Abs(got.MeanNS-want.MeanNS) > 1e-9 || math.Abs(got.VarNS2-want.VarNS2) > 1e-6 {
		t.Errorf("summarize = %+v, targets.Summarize = %+v", got, want)
	}
}

func TestHelpers(t *testing.T) {
	x := alignedFloats(100)
	if len(x) != 100 || addrMod64(&x[0]) != 0 {
		t.Errorf("alignedFloats: len %d, misaligned by %d", len(x), addrMod64(&x[0]))
	}
	in := rt.NewTensor(2, 2, 3, 1)
	for y := 0; y < 2; y++ {
		for x := 0; x < 2; x++ {
			for c := 0; c < 3; c++ {
				in.Set(y, x, c, float32(100*c+10*y+x))
			}
		}
	}
	out := rt.NewTensor(1, 1, 12, 0)
	for i := range out.Data {
		out.Data[i] = 7
	}
	if err := flattenCHW(out, in); err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 1, 10, 11, 100, 101, 110, 111, 200, 201, 210, 211, 0, 0, 0, 0}
	for i, v := range want {
		if out.Data[i] != v {
			t.Fatalf("flattenCHW: %v, want %v", out.Data, want)
		}
	}
}

func TestResizeBilinear(t *testing.T) {
	px := &pixels{c: 1, h: 2, w: 2, v: []float32{0, 10, 20, 30}}
	r := resizeBilinear(px, 4, 4)
	// half-pixel centres: the corners stay, the middle interpolates
	if r.v[0] != 0 || r.v[15] != 30 || math.Abs(float64(r.v[5])-7.5) > 1e-5 {
		t.Errorf("resize: %v", r.v)
	}
}

// TestFallbackNotice checks the one-line notice printed when the CPU (or a
// noasm build) cannot run the kernel set the program was built for.
func TestFallbackNotice(t *testing.T) {
	prog := testProgram()
	prog.kernelSet = "avx512"
	var errb bytes.Buffer
	if err := selectKernels(prog, &options{progName: "model"}, &errb); err != nil {
		t.Fatal(err)
	}
	hw := rt.KernelSets()
	lacks := hw[len(hw)-1] != "avx512"
	notice := errb.String()
	if lacks != (notice != "") {
		t.Fatalf("kernel sets %v: notice %q", hw, notice)
	}
	if lacks && (strings.Count(notice, "\n") != 1 || !strings.Contains(notice, "using "+rt.KernelSet()+" kernels")) {
		t.Errorf("notice %q", notice)
	}
}

// An image of another aspect ratio is classified after a note on stderr;
// one of the model's own aspect ratio is resized silently.
func TestAspectRatioNote(t *testing.T) {
	for _, c := range []struct {
		w, h int
		note bool
	}{{10, 7, true}, {8, 8, false}, {4, 4, false}} {
		var b bytes.Buffer
		if err := png.Encode(&b, solidImage(c.w, c.h, color.RGBA{R: 255, A: 255})); err != nil {
			t.Fatal(err)
		}
		code, _, errs := runProg(t, "-input", writeFile(t, "x.png", b.Bytes()))
		if code != 0 {
			t.Fatalf("%dx%d: exit %d: %s", c.w, c.h, code, errs)
		}
		want := fmt.Sprintf("is %dx%d (width x height); the model takes 4x4, so it is resized with a different aspect ratio", c.w, c.h)
		if got := strings.Contains(errs, want); got != c.note {
			t.Errorf("%dx%d: stderr %q; want the aspect-ratio note: %v", c.w, c.h, errs, c.note)
		}
	}
}
