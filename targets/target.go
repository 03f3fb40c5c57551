package targets

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/cpu"
)

// TargetSchema is the "schema" value of a target file.
const TargetSchema = "pnas-target/1"

// PresetsSchema is the "schema" value of the embedded presets.json, which
// holds the preset targets and the kernel sets.
const PresetsSchema = "pnas-targets/1"

// EnvDirs names the environment variable holding extra target directories,
// separated like PATH (filepath.ListSeparator).
const EnvDirs = "PNAS_TARGETS"

//go:embed presets.json luts
var embedded embed.FS

// Target is one device pnas compiles for and searches against. Targets are
// data: the built-in presets live in presets.json, and users add devices as
// JSON files of the same form (one target per file, see docs/latency.md).
type Target struct {
	Name        string   `json:"name"`             // unique name, e.g. "amd64" or "lab/epyc-7763"
	GOOS        string   `json:"goos"`             // GOOS to build for; empty: the host's
	GOARCH      string   `json:"goarch"`           // GOARCH to build for; empty: the host's (kernel set "go" only)
	GOAMD64     string   `json:"goamd64"`          // v1..v4 when GOARCH is amd64; empty otherwise (or for the Go default)
	Features    []string `json:"features"`         // CPU features the target guarantees, x/sys/cpu names in lower case
	KernelSet   string   `json:"kernel_set"`       // kernel set the compiled program uses ("go", "avx2", "avx512")
	Device      string   `json:"device,omitempty"` // what runs the kernels: "cpu" (also when empty) or "cuda"
	Threads     int      `json:"threads"`          // threads the compiled program runs with
	LUT         string   `json:"lut"`              // latency table: path relative to the target file (or luts/ for presets); empty: none yet
	Description string   `json:"description"`      // one line for humans

	// Source is where the target was defined: "builtin" or the file path.
	Source string `json:"-"`
}

// Device kinds: what runs a target's kernels.
const (
	DeviceCPU  = "cpu"  // the host CPU runs Go and assembly kernels
	DeviceCUDA = "cuda" // an NVIDIA GPU runs generated PTX kernels through the CUDA driver
)

// DeviceKind returns the target's device kind: DeviceCPU when the
// "device" field is empty.
func (t *Target) DeviceKind() string {
	if t.Device == "" {
		return DeviceCPU
	}
	return t.Device
}

func (ks *KernelSet) deviceKind() string {
	if ks.Device == "" {
		return DeviceCPU
	}
	return ks.Device
}

// KernelSet is a family of compute kernels the runtime provides, with the
// architecture and CPU features it needs. presets.json is the one
// description of the kernel sets: the runtime's level names, feature
// detection and per-set files, the generated programs' CPUID detection and
// codegen's build tags and ranking are derived from it or checked against
// it (codegen's TestKernelSetTable).
type KernelSet struct {
	Name        string   `json:"name"`
	GOARCH      string   `json:"goarch"`           // empty: any architecture
	Tags        []string `json:"tags"`             // build tags of a program built for the set
	Features    []string `json:"features"`         // features the kernels need (the runtime's detection checks exactly these)
	Files       []string `json:"files"`            // runtime source files holding only this set's code
	Device      string   `json:"device,omitempty"` // device kind of the kernels; empty: "cpu"
	Description string   `json:"description"`
}

type tagsFile struct {
	Schema     string            `json:"schema"`
	KernelSets []KernelSet       `json:"kernel_sets"`
	Targets    []json.RawMessage `json:"targets"`
}

type targetFile struct {
	Schema string `json:"schema"`
	*Target
}

var targetKeys = []string{"schema", "name", "goos", "goarch", "features", "kernel_set", "threads"}

// Known GOOS and GOARCH values (go tool dist list).
var (
	knownGOOS = []string{"aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js",
		"linux", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows"}
	knownGOARCH = []string{"386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le",
		"mipsle", "ppc64", "ppc64le", "riscv64", "s390x", "wasm"}
	targetNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$`)
)

// cpuFeatures maps feature names, per GOARCH, to the x/sys/cpu flag that
// reports them on the running machine.
var cpuFeatures = map[string]map[string]*bool{
	"amd64": {
		"adx": &cpu.X86.HasADX, "aes": &cpu.X86.HasAES, "avx": &cpu.X86.HasAVX, "avx2": &cpu.X86.HasAVX2,
		"avx512f": &cpu.X86.HasAVX512F, "avx512bw": &cpu.X86.HasAVX512BW, "avx512cd": &cpu.X86.HasAVX512CD,
		"avx512dq": &cpu.X86.HasAVX512DQ, "avx512vl": &cpu.X86.HasAVX512VL, "avx512ifma": &cpu.X86.HasAVX512IFMA,
		"avx512vbmi": &cpu.X86.HasAVX512VBMI, "avx512vnni": &cpu.X86.HasAVX512VNNI, "avx512bf16": &cpu.X86.HasAVX512BF16,
		"avxvnni": &cpu.X86.HasAVXVNNI, "bmi1": &cpu.X86.HasBMI1, "bmi2": &cpu.X86.HasBMI2, "cx16": &cpu.X86.HasCX16,
		"f16c": &cpu.X86.HasF16C, "fma": &cpu.X86.HasFMA, "lahf": &cpu.X86.HasLAHF, "lzcnt": &cpu.X86.HasLZCNT,
		"movbe": &cpu.X86.HasMOVBE, "osxsave": &cpu.X86.HasOSXSAVE, "popcnt": &cpu.X86.HasPOPCNT,
		"sse2": &cpu.X86.HasSSE2, "sse3": &cpu.X86.HasSSE3, "ssse3": &cpu.X86.HasSSSE3,
		"sse41": &cpu.X86.HasSSE41, "sse42": &cpu.X86.HasSSE42,
	},
	"arm64": {
		"fp": &cpu.ARM64.HasFP, "asimd": &cpu.ARM64.HasASIMD, "aes": &cpu.ARM64.HasAES, "pmull": &cpu.ARM64.HasPMULL,
		"sha1": &cpu.ARM64.HasSHA1, "sha2": &cpu.ARM64.HasSHA2, "sha3": &cpu.ARM64.HasSHA3, "sha512": &cpu.ARM64.HasSHA512,
		"crc32": &cpu.ARM64.HasCRC32, "atomics": &cpu.ARM64.HasATOMICS, "fphp": &cpu.ARM64.HasFPHP,
		"asimdhp": &cpu.ARM64.HasASIMDHP, "asimdrdm": &cpu.ARM64.HasASIMDRDM, "asimddp": &cpu.ARM64.HasASIMDDP,
		"asimdfhm": &cpu.ARM64.HasASIMDFHM, "fcma": &cpu.ARM64.HasFCMA, "jscvt": &cpu.ARM64.HasJSCVT,
		"lrcpc": &cpu.ARM64.HasLRCPC, "sve": &cpu.ARM64.HasSVE, "sve2": &cpu.ARM64.HasSVE2, "i8mm": &cpu.ARM64.HasI8MM,
	},
}

// goamd64Features lists what each GOAMD64 level requires of the CPU
// (cumulative with the levels below).
var goamd64Features = map[string][]string{
	"v1": nil,
	"v2": {"cx16", "lahf", "popcnt", "sse3", "sse41", "sse42", "ssse3"},
	"v3": {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe", "osxsave"},
	"v4": {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"},
}

func goamd64Required(level string) []string {
	var out []string
	for _, l := range []string{"v1", "v2", "v3", "v4"} {
		out = append(out, goamd64Features[l]...)
		if l == level {
			break
		}
	}
	return out
}

// registry is the parsed preset file.
type registry struct {
	kernelSets []KernelSet
	presets    []*Target
}

// loadRegistry parses the embedded presets.json once. Callers must not modify
// what it returns; List and Lookup hand out copies.
var loadRegistry = sync.OnceValues(func() (*registry, error) {
	data, err := embedded.ReadFile("presets.json")
	if err != nil {
		return nil, err
	}
	return parseRegistry(data)
})

func parseRegistry(data []byte) (*registry, error) {
	const file = "presets.json (embedded)"
	if err := checkSchema(data, PresetsSchema); err != nil {
		return nil, inFile(err, file, 0)
	}
	var tf tagsFile
	if err := decodeStrict(data, &tf); err != nil {
		return nil, inFile(err, file, 0)
	}
	r := &registry{kernelSets: tf.KernelSets}
	for i, ks := range tf.KernelSets {
		if ks.Name == "" {
			return nil, inFile(fieldErr(fmt.Sprintf("kernel_sets[%d].name", i), "expected a name, got \"\""), file, 0)
		}
	}
	for i, raw := range tf.Targets {
		t, err := parseTarget(raw, r)
		if err != nil {
			return nil, inFile(prefixField(err, fmt.Sprintf("targets[%d]", i)), file, 0)
		}
		t.Source = "builtin"
		if t.LUT != "" && !fs.ValidPath(path.Join("luts", t.LUT)) {
			return nil, inFile(fieldErr(fmt.Sprintf("targets[%d].lut", i), "expected a path relative to luts/, got %q", t.LUT), file, 0)
		}
		if prev := r.find(t.Name); prev != nil {
			return nil, inFile(fieldErr(fmt.Sprintf("targets[%d].name", i), "duplicate target %q", t.Name), file, 0)
		}
		r.presets = append(r.presets, t)
	}
	return r, nil
}

func (r *registry) find(name string) *Target {
	for _, t := range r.presets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func (r *registry) kernelSet(name string) *KernelSet {
	for i := range r.kernelSets {
		if r.kernelSets[i].Name == name {
			return &r.kernelSets[i]
		}
	}
	return nil
}

// KernelSets returns the kernel sets the runtime provides, as declared in
// presets.json.
func KernelSets() ([]KernelSet, error) {
	r, err := loadRegistry()
	if err != nil {
		return nil, err
	}
	out := make([]KernelSet, len(r.kernelSets))
	for i, ks := range r.kernelSets {
		ks.Features = slices.Clone(ks.Features)
		ks.Tags = slices.Clone(ks.Tags)
		ks.Files = slices.Clone(ks.Files)
		out[i] = ks
	}
	return out, nil
}

// ParseTarget decodes and validates one target document (the content of a
// user target file). source names it in errors.
func ParseTarget(data []byte, source string) (*Target, error) {
	r, err := loadRegistry()
	if err != nil {
		return nil, err
	}
	t, err := parseTarget(data, r)
	if err != nil {
		return nil, inFile(err, source, 0)
	}
	t.Source = source
	return t, nil
}

func parseTarget(data []byte, r *registry) (*Target, error) {
	if err := checkSchema(data, TargetSchema); err != nil {
		return nil, err
	}
	if err := requireKeys(data, "", targetKeys...); err != nil {
		return nil, err
	}
	t := &Target{}
	if err := decodeStrict(data, &targetFile{Target: t}); err != nil {
		return nil, err
	}
	if err := t.validate(r); err != nil {
		return nil, err
	}
	return t, nil
}

// Validate checks every field of the target against the kernel sets of
// presets.json.
func (t *Target) Validate() error {
	r, err := loadRegistry()
	if err != nil {
		return err
	}
	return t.validate(r)
}

func (t *Target) validate(r *registry) error {
	if !targetNameRE.MatchString(t.Name) {
		return fieldErr("name", "expected lower-case letters, digits, '.', '_', '-' in '/'-separated parts, got %q", t.Name)
	}
	if t.GOOS != "" && !slices.Contains(knownGOOS, t.GOOS) {
		return fieldErr("goos", "expected empty (the host's) or one of %s, got %q", strings.Join(knownGOOS, ", "), t.GOOS)
	}
	if t.GOARCH != "" && !slices.Contains(knownGOARCH, t.GOARCH) {
		return fieldErr("goarch", "expected empty (the host's) or one of %s, got %q", strings.Join(knownGOARCH, ", "), t.GOARCH)
	}
	if t.GOAMD64 != "" {
		if t.GOARCH != "amd64" {
			return fieldErr("goamd64", "expected empty since goarch is %q, got %q", t.GOARCH, t.GOAMD64)
		}
		if _, ok := goamd64Features[t.GOAMD64]; !ok {
			return fieldErr("goamd64", "expected v1, v2, v3 or v4, got %q", t.GOAMD64)
		}
	}
	known := cpuFeatures[t.GOARCH]
	for i, f := range t.Features {
		if known == nil {
			return fieldErr(fmt.Sprintf("features[%d]", i), "expected no features for goarch %q (features are known for amd64 and arm64 only), got %q", t.GOARCH, f)
		}
		if known[f] == nil {
			return fieldErr(fmt.Sprintf("features[%d]", i), "expected a feature of goarch %s (%s), got %q", t.GOARCH, strings.Join(sortedKeys(known), ", "), f)
		}
		if slices.Contains(t.Features[:i], f) {
			return fieldErr(fmt.Sprintf("features[%d]", i), "feature %q is listed twice", f)
		}
	}
	if d := t.DeviceKind(); d != DeviceCPU && d != DeviceCUDA {
		return fieldErr("device", "expected empty, %q or %q, got %q", DeviceCPU, DeviceCUDA, t.Device)
	}
	ks := r.kernelSet(t.KernelSet)
	if ks == nil {
		var names []string
		for _, k := range r.kernelSets {
			names = append(names, k.Name)
		}
		return fieldErr("kernel_set", "expected one of %s, got %q", strings.Join(names, ", "), t.KernelSet)
	}
	if ks.deviceKind() != t.DeviceKind() {
		return fieldErr("kernel_set", "kernel set %q runs on device %s, but the target's device is %s", ks.Name, ks.deviceKind(), t.DeviceKind())
	}
	if ks.GOARCH != "" && t.GOARCH != ks.GOARCH {
		return fieldErr("kernel_set", "kernel set %q runs on goarch %s only, but the target's goarch is %q", ks.Name, ks.GOARCH, t.GOARCH)
	}
	var missing []string
	for _, f := range ks.Features {
		if !slices.Contains(t.Features, f) {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fieldErr("features", "kernel set %q executes %s, expected them among the target's features, got %v", ks.Name, strings.Join(missing, ", "), t.Features)
	}
	if t.Threads < 1 {
		return fieldErr("threads", "expected a positive integer, got %d", t.Threads)
	}
	return nil
}

// SearchDirs returns the directories user targets are read from: dirs
// followed by the entries of $PNAS_TARGETS.
func SearchDirs(dirs ...string) []string {
	out := slices.Clone(dirs)
	for _, d := range filepath.SplitList(os.Getenv(EnvDirs)) {
		if d != "" {
			out = append(out, d)
		}
	}
	return out
}

// List returns the built-in presets (in presets.json order) followed by the
// user targets found in dirs and in $PNAS_TARGETS (sorted by name). Every
// *.json file of those directories must be a valid target; a malformed file
// or a duplicate name is an error naming the file.
func List(dirs ...string) ([]*Target, error) {
	r, err := loadRegistry()
	if err != nil {
		return nil, err
	}
	out := make([]*Target, 0, len(r.presets))
	for _, t := range r.presets {
		out = append(out, t.clone())
	}
	var user []*Target
	for _, dir := range SearchDirs(dirs...) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("target directory: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
				continue
			}
			file := filepath.Join(dir, e.Name())
			data, err := os.ReadFile(file)
			if err != nil {
				return nil, err
			}
			t, err := parseTarget(data, r)
			if err != nil {
				return nil, inFile(err, file, 0)
			}
			t.Source = file
			for _, prev := range slices.Concat(out, user) {
				if prev.Name == t.Name {
					return nil, inFile(fieldErr("name", "target %q is already defined by %s; choose another name", t.Name, prev.Source), file, 0)
				}
			}
			user = append(user, t)
		}
	}
	sort.Slice(user, func(i, j int) bool { return user[i].Name < user[j].Name })
	return append(out, user...), nil
}

// Lookup returns the target called name from the presets and the target
// directories (dirs, then $PNAS_TARGETS). An unknown name is an error
// listing the known ones.
func Lookup(name string, dirs ...string) (*Target, error) {
	all, err := List(dirs...)
	if err != nil {
		return nil, err
	}
	var known []string
	for _, t := range all {
		if t.Name == name {
			return t, nil
		}
		known = append(known, t.Name)
	}
	return nil, fmt.Errorf("unknown target %q; known targets: %s (add a device as a JSON file in a directory named by $%s, see docs/latency.md)",
		name, strings.Join(known, ", "), EnvDirs)
}

func (t *Target) clone() *Target {
	c := *t
	c.Features = slices.Clone(t.Features)
	return &c
}

// Builtin reports whether the target is one of the presets of presets.json.
func (t *Target) Builtin() bool { return t.Source == "builtin" }

// BuildEnv returns the environment assignments for `go build` of a program
// for this target: GOOS and GOARCH (the host's where the target leaves them
// empty), GOAMD64 when set, and CGO_ENABLED=0.
func (t *Target) BuildEnv() []string {
	goos, goarch := t.GOOS, t.GOARCH
	if goos == "" {
		goos = runtime.GOOS
	}
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	env := []string{"GOOS=" + goos, "GOARCH=" + goarch}
	if t.GOAMD64 != "" {
		env = append(env, "GOAMD64="+t.GOAMD64)
	}
	return append(env, "CGO_ENABLED=0")
}

// HostSupports reports whether programs built for the target run on this
// machine at full speed: the OS and architecture match and the CPU has
// every feature the target and its GOAMD64 level require. The error lists
// every missing feature. For a CUDA target it reports whether the NVIDIA
// driver library is installed (whether a GPU answers shows only when the
// program runs).
func (t *Target) HostSupports() error {
	if t.DeviceKind() == DeviceCUDA {
		if err := t.supports(runtime.GOOS, runtime.GOARCH, func(string) bool { return true }); err != nil {
			return err
		}
		return findCUDADriver(os.Getenv("LD_LIBRARY_PATH"))
	}
	return t.supports(runtime.GOOS, runtime.GOARCH, func(f string) bool {
		p := cpuFeatures[runtime.GOARCH][f]
		return p != nil && *p
	})
}

// cudaLibDirs are where NVIDIA's driver packages install libcuda.so.1.
var cudaLibDirs = []string{"/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/nvidia/lib64", "/usr/lib/wsl/lib"}

// findCUDADriver looks for libcuda.so.1 in the directories of
// LD_LIBRARY_PATH and the usual system directories.
func findCUDADriver(ldPath string) error {
	dirs := append(filepath.SplitList(ldPath), cudaLibDirs...)
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "libcuda.so.1")); err == nil {
			return nil
		}
	}
	return fmt.Errorf("no CUDA driver: libcuda.so.1 not found (looked in LD_LIBRARY_PATH and %s)", strings.Join(cudaLibDirs, ", "))
}

func (t *Target) supports(goos, goarch string, has func(string) bool) error {
	if t.GOOS != "" && t.GOOS != goos {
		return fmt.Errorf("target %q is for GOOS %s, this host runs %s", t.Name, t.GOOS, goos)
	}
	if t.GOARCH != "" && t.GOARCH != goarch {
		return fmt.Errorf("target %q is for GOARCH %s, this host is %s", t.Name, t.GOARCH, goarch)
	}
	need := slices.Clone(t.Features)
	if goarch == "amd64" && t.GOAMD64 != "" {
		for _, f := range goamd64Required(t.GOAMD64) {
			if !slices.Contains(need, f) {
				need = append(need, f)
			}
		}
	}
	var missing []string
	for _, f := range need {
		if !has(f) {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		level := ""
		if t.GOAMD64 != "" {
			level = " (GOAMD64=" + t.GOAMD64 + ")"
		}
		return fmt.Errorf("this host's CPU lacks %s, required by target %q%s", strings.Join(missing, ", "), t.Name, level)
	}
	return nil
}

// LoadLUT reads the target's latency table and checks that it was made
// for this target (name, kernel set and thread count). For a preset the
// path is inside the embedded luts/ directory; for a user target it is
// relative to the directory of the target file.
func (t *Target) LoadLUT() (*LUT, error) {
	if t.LUT == "" {
		return nil, fmt.Errorf("target %q has no latency table (its \"lut\" field is empty); build one from bench reports with BuildLUT and name it in a target file (docs/latency.md)", t.Name)
	}
	var (
		l    *LUT
		err  error
		file string
	)
	if t.Builtin() {
		file = path.Join("luts", t.LUT)
		var data []byte
		data, err = fs.ReadFile(embedded, file)
		if err == nil {
			l, err = ParseLUT(data)
		}
		err = inFile(err, file+" (embedded)", 0)
	} else {
		file = t.LUT
		if !filepath.IsAbs(file) && t.Source != "" {
			file = filepath.Join(filepath.Dir(t.Source), file)
		}
		l, err = Load(file)
	}
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", t.Name, err)
	}
	if err := l.Matches(t); err != nil {
		return nil, inFile(err, file, 0)
	}
	return l, nil
}

// Matches checks that the table was measured for target t: same target
// name, kernel set and thread count.
func (l *LUT) Matches(t *Target) error {
	switch {
	case l.Target != t.Name:
		return fieldErr("target", "expected %q (the target that names this table), got %q", t.Name, l.Target)
	case l.KernelSet != t.KernelSet:
		return fieldErr("kernel_set", "expected %q (target %s), got %q", t.KernelSet, t.Name, l.KernelSet)
	case l.Threads != t.Threads:
		return fieldErr("threads", "expected %d (target %s), got %d", t.Threads, t.Name, l.Threads)
	}
	return nil
}
