package targets

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"
)

// MeasureSchema is the "schema" value of a measurement record.
const MeasureSchema = "pnas-measure/1"

// Measurement is one record of a measurement log: a bench report with the
// provenance needed to trust it later. Logs are append-only JSONL files,
// one record per line, one target per log.
type Measurement struct {
	Schema       string       `json:"schema"`           // MeasureSchema
	Time         time.Time    `json:"time"`             // when the run finished (RFC 3339)
	Machine      Machine      `json:"machine"`          // where it ran; equals the report's cpu and cores
	GoVersion    string       `json:"go_version"`       // toolchain that built the binary; equals the report's
	BinarySHA256 string       `json:"binary_sha256"`    // SHA-256 of the measured executable, 64 hex digits
	Commit       string       `json:"commit,omitempty"` // pnas source revision that generated the program, when known
	Target       string       `json:"target"`           // equals the report's target
	Report       *BenchReport `json:"report"`           // the program's output
}

var (
	measureKeys = []string{"schema", "time", "machine", "go_version", "binary_sha256", "target", "report"}
	sha256RE    = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// NewMeasurement wraps a bench report of the executable at binaryPath into a
// record stamped with the current time.
func NewMeasurement(r *BenchReport, binaryPath, commit string) (*Measurement, error) {
	f, err := os.Open(binaryPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	m := &Measurement{
		Schema: MeasureSchema, Time: time.Now().UTC(), Machine: Machine{CPU: r.CPU, Cores: r.Cores},
		GoVersion: r.GoVersion, BinarySHA256: hex.EncodeToString(h.Sum(nil)), Commit: commit,
		Target: r.Target, Report: r,
	}
	return m, m.Validate()
}

// Validate checks the record and its report, and that they agree.
func (m *Measurement) Validate() error {
	switch {
	case m.Schema != MeasureSchema:
		return fieldErr("schema", "expected %q, got %q", MeasureSchema, m.Schema)
	case m.Time.IsZero():
		return fieldErr("time", "expected an RFC 3339 time, got the zero time")
	case m.Machine.CPU == "":
		return fieldErr("machine.cpu", "expected the CPU model name, got \"\"")
	case m.Machine.Cores < 1:
		return fieldErr("machine.cores", "expected a positive integer, got %d", m.Machine.Cores)
	case m.GoVersion == "":
		return fieldErr("go_version", "expected a Go version, got \"\"")
	case !sha256RE.MatchString(m.BinarySHA256):
		return fieldErr("binary_sha256", "expected 64 lower-case hex digits, got %q", m.BinarySHA256)
	case hasSpace(m.Commit):
		return fieldErr("commit", "expected a revision without spaces, got %q", m.Commit)
	case !targetNameRE.MatchString(m.Target):
		return fieldErr("target", "expected a target name, got %q", m.Target)
	case m.Report == nil:
		return fieldErr("report", "expected a bench report, got none")
	}
	if m.Report.Schema != BenchSchema {
		return fieldErr("report.schema", "expected %q, got %q", BenchSchema, m.Report.Schema)
	}
	if err := m.Report.Validate(); err != nil {
		return prefixField(err, "report")
	}
	r := m.Report
	switch {
	case r.Target != m.Target:
		return fieldErr("report.target", "expected %q (the record's target), got %q", m.Target, r.Target)
	case r.GoVersion != m.GoVersion:
		return fieldErr("report.go_version", "expected %q (the record's go_version), got %q", m.GoVersion, r.GoVersion)
	case r.CPU != m.Machine.CPU || r.Cores != m.Machine.Cores:
		return fieldErr("report.cpu", "expected %q with %d cores (the record's machine), got %q with %d cores", m.Machine.CPU, m.Machine.Cores, r.CPU, r.Cores)
	}
	return nil
}

// parseMeasurement decodes one JSONL line strictly.
func parseMeasurement(line []byte) (*Measurement, error) {
	if err := checkSchema(line, MeasureSchema); err != nil {
		return nil, err
	}
	if err := requireKeys(line, "", measureKeys...); err != nil {
		return nil, err
	}
	var raw struct {
		Machine json.RawMessage `json:"machine"`
		Report  json.RawMessage `json:"report"`
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return nil, describeJSON(line, err)
	}
	if err := requireKeys(raw.Machine, "machine", "cpu", "cores"); err != nil {
		return nil, err
	}
	// The report is parsed on its own so that its errors are as precise as
	// ParseBench's, then the record without it.
	r, err := ParseBench(raw.Report)
	if err != nil {
		return nil, prefixField(err, "report")
	}
	m := &Measurement{}
	if err := decodeStrict(line, m); err != nil {
		return nil, err
	}
	m.Report = r
	return m, m.Validate()
}

// ReadMeasurements reads a measurement log. Every line must be a valid
// record and the file must end with a newline; all records must be for the
// target of the first one. Errors name the file and the line. Blank lines
// are skipped.
func ReadMeasurements(path string) ([]*Measurement, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out    []*Measurement
		target string
		first  int
	)
	br := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, &Error{File: path, Line: n, Msg: err.Error()}
		}
		if err == io.EOF {
			if len(bytes.TrimSpace(line)) != 0 {
				return nil, &Error{File: path, Line: n, Msg: fmt.Sprintf("truncated record: the last line has no newline (%d bytes); the write that produced it did not finish", len(line))}
			}
			return out, nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		m, perr := parseMeasurement(line)
		if perr != nil {
			return nil, inFile(perr, path, n)
		}
		if target == "" {
			target, first = m.Target, n
		} else if m.Target != target {
			return nil, &Error{File: path, Line: n, Field: "target",
				Msg: fmt.Sprintf("expected %q (the log's target, line %d), got %q; keep one log per target", target, first, m.Target)}
		}
		out = append(out, m)
	}
}

// logTarget returns the target of the first record of an existing log, or
// "" for a missing or empty log. It fails when the log's last line is
// incomplete.
func logTarget(f *os.File, path string) (string, error) {
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if st.Size() == 0 {
		return "", nil
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, st.Size()-1); err != nil {
		return "", err
	}
	if last[0] != '\n' {
		return "", &Error{File: path, Msg: "the last line is incomplete (a write did not finish); ReadMeasurements names the line; repair the log before appending"}
	}
	br := bufio.NewReader(io.NewSectionReader(f, 0, st.Size()))
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var probe struct {
				Target string `json:"target"`
			}
			if jerr := json.Unmarshal(line, &probe); jerr != nil || probe.Target == "" {
				return "", &Error{File: path, Line: n, Field: "target", Msg: "expected the first record to name its target; the log is damaged"}
			}
			return probe.Target, nil
		}
		if err != nil {
			return "", nil
		}
	}
}

// AppendMeasurements validates recs and appends them to the log at path
// (created if missing), one JSON line each. All lines go out in a single
// write on a file opened with O_APPEND, followed by fsync, under an
// exclusive advisory lock (flock, where the system has it) held from the
// check of the log's last line to the end of the write, so concurrent
// appenders neither interleave nor see each other's write half done, and a
// crash leaves at most one incomplete last line, which ReadMeasurements
// reports and which blocks further appends. Records for a target other than the log's are rejected.
func AppendMeasurements(path string, recs ...*Measurement) error {
	if len(recs) == 0 {
		return nil
	}
	// records are checked before the log is opened (and maybe created)
	mismatch := func(i int, logTarget string) error {
		return inFile(fieldErr("target", "expected %q (the target of log %s), got %q; keep one log per target", logTarget, path, recs[i].Target), fmt.Sprintf("record %d", i), 0)
	}
	var buf bytes.Buffer
	for i, m := range recs {
		if err := m.Validate(); err != nil {
			return inFile(err, fmt.Sprintf("record %d", i), 0)
		}
		if m.Target != recs[0].Target {
			return mismatch(i, recs[0].Target)
		}
		line, err := json.Marshal(m)
		if err != nil {
			return inFile(err, fmt.Sprintf("record %d", i), 0)
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	// the check of the last line and the append are one step for other
	// appenders (an advisory lock where the system has one)
	if err := lockFile(f); err != nil {
		return fmt.Errorf("%s: lock: %w", path, err)
	}
	defer unlockFile(f)
	target, err := logTarget(f, path)
	if err != nil {
		return err
	}
	if target != "" && target != recs[0].Target {
		return mismatch(0, target)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// Reports returns the bench reports of the records, in order.
func Reports(recs []*Measurement) []*BenchReport {
	out := make([]*BenchReport, len(recs))
	for i, m := range recs {
		out[i] = m.Report
	}
	return out
}
