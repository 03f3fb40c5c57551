package space

import (
	"reflect"
	"strings"
	"testing"
)

// A search-space file (pnas search --space FILE) parses into a valid space
// or one error, never a panic; what parses plans or fails with an error,
// and survives JSON and a second Parse unchanged. The seeds (the built-in
// spaces and a few corrupt files) run with every `go test`; a campaign:
//
//	go test -run='^$' -fuzz='^FuzzParse$' -fuzztime=10m ./search/space/
func FuzzParse(f *testing.F) {
	for _, n := range Names() {
		s, err := Builtin(n)
		if err != nil {
			f.Fatal(err)
		}
		b, err := s.JSON()
		if err != nil {
			f.Fatal(err)
		}
		doc := string(b)
		f.Add(b)
		f.Add([]byte(doc[:len(doc)/2]))
		f.Add([]byte(strings.Replace(doc, `"layers": `, `"layers": 1`, 1)))
		f.Add([]byte(doc + "{}"))
	}
	f.Add([]byte(`{"name": "x", "stages": [], "candidates": ["k3e3"]}`))
	f.Add([]byte(`{"name": "x", "candidates": ["k0e99", "zero"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			if s != nil || err.Error() == "" {
				t.Fatalf("Parse returned %v and the error %q", s, err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid space: %v", err)
		}
		if p, err := s.Plan(); err == nil && p == nil {
			t.Fatal("Plan returned neither a plan nor an error")
		}
		out, err := s.JSON()
		if err != nil {
			t.Fatalf("JSON of a parsed space: %v", err)
		}
		s2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse of JSON output: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatalf("JSON/Parse round trip differs:\n%+v\n%+v", s, s2)
		}
	})
}
