package ir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"github.com/pnasml/pnas/internal/atomicfile"
)

// Decode parses a model JSON document (no weights) strictly: unknown fields
// and trailing data are errors.
func Decode(b []byte) (*Model, error) {
	var head struct {
		Format  string `json:"format"`
		Version *int   `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, describeJSONError(b, err)
	}
	if head.Format != FormatName {
		return nil, errf("", "format", "expected %q, got %q (not a pnas model file)", FormatName, head.Format)
	}
	if head.Version == nil {
		return nil, errf("", "version", "missing format version")
	}
	if *head.Version != FormatVersion {
		return nil, errf("", "version", "unsupported format version: expected %d, got %d", FormatVersion, *head.Version)
	}
	var m Model
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		if err := opJSONError(b); err != nil {
			return nil, err
		}
		return nil, describeJSONError(b, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("unexpected data after the JSON document")
	}
	return &m, nil
}

// describeJSONError turns an encoding/json error into one that says where
// the problem is and what was expected, in JSON terms.
func describeJSONError(b []byte, err error) error {
	switch e := err.(type) {
	case *json.SyntaxError:
		off := min(int(e.Offset), len(b))
		line := 1 + bytes.Count(b[:off], []byte{'\n'})
		switch {
		case len(bytes.TrimSpace(b)) == 0:
			return fmt.Errorf("empty document, expected a JSON object")
		case strings.Contains(e.Error(), "unexpected end of JSON input"):
			return fmt.Errorf("JSON document is truncated: it ends at line %d (byte %d) inside a value", line, len(b))
		case strings.Contains(e.Error(), "after top-level value"):
			return fmt.Errorf("unexpected data after the JSON document at line %d (byte %d)", line, max(off-1, 0))
		}
		return fmt.Errorf("JSON syntax error at line %d (byte %d): %v", line, e.Offset, e)
	case *json.UnmarshalTypeError:
		if e.Field == "" {
			return fmt.Errorf("expected a JSON object, got JSON %s", e.Value)
		}
		return errf("", e.Field, "expected %s, got JSON %s (byte %d)", jsonKind(e.Type), e.Value, e.Offset)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		f, _ = strconv.Unquote(f)
		return errf("", f, "unknown field (not part of format version %d)", FormatVersion)
	}
	if strings.Contains(err.Error(), "unexpected EOF") {
		return fmt.Errorf("JSON document is truncated")
	}
	return err
}

// opJSONError decodes the ops of a document one by one to find the op a
// decoding error is in, and returns that error naming the op; nil when the
// ops decode.
func opJSONError(b []byte) error {
	var doc struct {
		Ops []json.RawMessage `json:"ops"`
	}
	if json.Unmarshal(b, &doc) != nil {
		return nil
	}
	for i, raw := range doc.Ops {
		var op Op
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		err := dec.Decode(&op)
		if err == nil {
			continue
		}
		var named struct {
			Name string `json:"name"`
		}
		json.Unmarshal(raw, &named)
		where := fmt.Sprintf("#%d", i)
		if named.Name != "" {
			where = named.Name
		}
		if te, ok := err.(*json.UnmarshalTypeError); ok {
			return errf(where, te.Field, "expected %s, got JSON %s", jsonKind(te.Type), te.Value)
		}
		e := describeJSONError(raw, err)
		if ve, ok := e.(*Error); ok {
			ve.Op = where
			return ve
		}
		return &Error{Op: where, Msg: e.Error()}
	}
	return nil
}

// jsonKind names the JSON value a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// Encode renders the model JSON document (no weights), indented and with a
// trailing newline. Output is deterministic.
func Encode(m *Model) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// WeightsPath returns where the weights of the model stored at jsonPath live.
func (m *Model) WeightsPath(jsonPath string) string {
	w := m.Weights
	if w == "" {
		w = strings.TrimSuffix(filepath.Base(jsonPath), ".json") + ".safetensors"
	}
	if filepath.IsAbs(w) {
		return w
	}
	return filepath.Join(filepath.Dir(jsonPath), w)
}

// Load reads NAME.json and its safetensors weights and verifies the model.
func Load(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	wp := m.WeightsPath(path)
	wb, err := os.ReadFile(wp)
	if err != nil {
		return nil, fmt.Errorf("%s: weights: %w", path, err)
	}
	params, _, err := DecodeSafetensors(wb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", wp, err)
	}
	m.Params = params
	if err := m.Verify(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Save verifies the model and writes path (NAME.json) and its weights file
// atomically: each is written to a temporary file in the same directory and
// renamed into place, so an interrupted save never leaves a half-written
// model. The weights file name is recorded in the JSON document.
func Save(m *Model, path string) error {
	if err := m.Verify(); err != nil {
		return err
	}
	c := *m
	c.Weights = strings.TrimSuffix(filepath.Base(path), ".json") + ".safetensors"
	doc, err := Encode(&c)
	if err != nil {
		return err
	}
	var wb bytes.Buffer
	meta := map[string]string{"format": FormatName, "version": fmt.Sprint(FormatVersion), "model": m.Name}
	if err := EncodeSafetensors(&wb, m.Params, meta); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(filepath.Dir(path), c.Weights), wb.Bytes()); err != nil {
		return err
	}
	return atomicfile.Write(path, doc)
}
