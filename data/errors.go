package data

import "fmt"

// FormatError reports a corrupt, truncated or inconsistent data file. Offset
// is the byte offset in the file's content at which the problem was found;
// for gzip files it counts decompressed bytes.
type FormatError struct {
	File     string // path of the file (or embedded name)
	Offset   int64  // byte offset of the offending field
	Field    string // what was being read, e.g. "magic", "label of image 7"
	Expected string // what a valid file has there
	Got      string // what this file has there
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("data: %s: byte %d: %s: expected %s, got %s", e.File, e.Offset, e.Field, e.Expected, e.Got)
}

func formatErr(file string, off int64, field, expected, got string) *FormatError {
	return &FormatError{File: file, Offset: off, Field: field, Expected: expected, Got: got}
}
