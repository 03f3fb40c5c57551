package targets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// Error is a validation or decoding error that names where the problem is:
// the file (or other source), the line of a JSONL file, the JSON field, and
// what was expected against what was found.
type Error struct {
	File  string // file path or source name; empty when not known
	Line  int    // 1-based line of a JSONL file; 0 when not applicable
	Field string // JSON path such as `entries["Conv-..."].count`; empty for the whole document
	Msg   string // what is wrong, as "expected X, got Y" where that applies
}

// Error formats the error as "file:line: field: message", leaving out the
// parts that are empty.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func fieldErr(field, format string, args ...any) *Error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// inFile attaches a file name (and line) to err, keeping an *Error's
// structure when it has one.
func inFile(err error, file string, line int) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		c := *e
		if c.File == "" {
			c.File = file
		}
		if c.Line == 0 {
			c.Line = line
		}
		return &c
	}
	return &Error{File: file, Line: line, Msg: err.Error()}
}

// prefixField prepends a JSON path to an *Error's field.
func prefixField(err error, prefix string) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	c := *e
	switch {
	case c.Field == "":
		c.Field = prefix
	case strings.HasPrefix(c.Field, "["):
		c.Field = prefix + c.Field
	default:
		c.Field = prefix + "." + c.Field
	}
	return &c
}

// decodeStrict decodes exactly one JSON value from data into v. Unknown
// fields, trailing data and wrong types are errors naming the field.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeJSON(data, err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		off := dec.InputOffset()
		line, col := lineCol(data, off)
		return fieldErr("", "expected one JSON value, got more data at line %d column %d", line, col)
	}
	return nil
}

// describeJSON turns encoding/json errors into *Error values.
func describeJSON(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return fieldErr("", "expected a JSON object, got empty input")
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.As(err, &syn) && strings.Contains(syn.Error(), "unexpected end of JSON input"):
		return fieldErr("", "truncated: the JSON ends before the value is complete (%d bytes)", len(data))
	case errors.As(err, &syn):
		line, col := lineCol(data, max(syn.Offset-1, 0))
		return fieldErr("", "invalid JSON at line %d column %d: %s", line, col, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		// Embedded Go structs add their type name to the path; drop them.
		var parts []string
		for _, p := range strings.Split(typ.Field, ".") {
			if p != "Target" && p != "LUT" && p != "Timing" {
				parts = append(parts, p)
			}
		}
		field := strings.Join(parts, ".")
		if field == "" {
			field = "(document)"
		}
		return fieldErr(field, "expected %s, got JSON %s", jsonTypeName(typ.Type.String()), typ.Value)
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if strings.HasPrefix(msg, "unknown field ") {
		return fieldErr("", "%s (not part of the schema; check the spelling)", msg)
	}
	return fieldErr("", "%s", msg)
}

func jsonTypeName(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "an integer"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map["):
		return "an object"
	}
	return "an object (" + goType + ")"
}

func lineCol(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// requireKeys checks that raw is a JSON object holding every key with a
// non-null value. It reports every missing key at once.
func requireKeys(raw []byte, path string, keys ...string) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return fieldErr(path, "expected a JSON object, got %s", describeRaw(raw))
	}
	var missing []string
	for _, k := range keys {
		v, ok := obj[k]
		if !ok || string(bytes.TrimSpace(v)) == "null" {
			missing = append(missing, fmt.Sprintf("%q", k))
		}
	}
	if len(missing) > 0 {
		word := "field"
		if len(missing) > 1 {
			word = "fields"
		}
		return fieldErr(path, "missing required %s %s", word, strings.Join(missing, ", "))
	}
	return nil
}

func describeRaw(raw []byte) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	if s == "" {
		return "nothing"
	}
	return s
}

// checkSchema reads the "schema" field first, so that a document of another
// kind or version is reported as such rather than as unknown fields.
func checkSchema(data []byte, want string) error {
	var probe struct {
		Schema *string `json:"schema"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return describeJSON(data, err)
	}
	if probe.Schema == nil {
		return fieldErr("schema", "missing; expected %q", want)
	}
	if *probe.Schema != want {
		return fieldErr("schema", "expected %q, got %q", want, *probe.Schema)
	}
	return nil
}

func finiteNonNeg(field string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return fieldErr(field, "expected a finite number >= 0, got %v", v)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func hasSpace(s string) bool { return strings.ContainsAny(s, " \t\r\n") }
