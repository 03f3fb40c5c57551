package ir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Decode parses a model JSON document (no weights) strictly: unknown fields
// and trailing data are errors.
func Decode(b []byte) (*Model, error) {
	var head struct {
		Format  string `json:"format"`
		Version *int   `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("%s", describeJSONError(b, err))
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
		return nil, fmt.Errorf("%s", describeJSONError(b, err))
	}
	if dec.More() {
		return nil, fmt.Errorf("unexpected data after the JSON document")
	}
	return &m, nil
}

func describeJSONError(b []byte, err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		line := 1 + bytes.Count(b[:min(int(e.Offset), len(b))], []byte{'\n'})
		return fmt.Sprintf("JSON syntax error at line %d (byte %d): %v", line, e.Offset, e)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("field %s: expected %v, got JSON %s (byte %d)", e.Field, e.Type, e.Value, e.Offset)
	}
	if strings.Contains(err.Error(), "unexpected EOF") {
		return "JSON document is truncated"
	}
	return err.Error()
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
	if err := WriteFileAtomic(filepath.Join(filepath.Dir(path), c.Weights), wb.Bytes()); err != nil {
		return err
	}
	return WriteFileAtomic(path, doc)
}

// WriteFileAtomic writes data to a temporary file next to path, syncs it
// and renames it over path.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
