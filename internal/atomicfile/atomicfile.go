// Package atomicfile writes files all-or-nothing: readers, and the user
// after a crash or a failed command, see the old file or the complete new
// one, never a partial one. Every pnas writer of a user's file (models,
// latency tables, measurement logs, a search's run directory) goes through
// it.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write writes data to a temporary file in path's directory, syncs it,
// makes it mode 0644, renames it over path and syncs the directory so the
// rename survives a crash. On error path is unchanged and the temporary
// file is removed. The parent directory must exist.
func Write(path string, data []byte) error {
	p, err := Prepare(path, data)
	if err != nil {
		return err
	}
	return p.Commit()
}

// Pending is a file written in full beside its path but not yet in place:
// Commit renames it over the path, Abort removes it. A command that
// changes two files prepares the one whose write may fail late, changes
// the other, and only then commits, so a failure leaves both unchanged.
type Pending struct {
	tmp, path string
}

// Prepare writes data to a synced temporary file (mode 0644) in path's
// directory; path itself is not touched until Commit.
func Prepare(path string, data []byte) (_ *Pending, err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("writing %s: %w", path, err)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return nil, err
	}
	if err = f.Chmod(0o644); err != nil {
		return nil, err
	}
	if err = f.Sync(); err != nil {
		return nil, err
	}
	if err = f.Close(); err != nil {
		return nil, err
	}
	return &Pending{tmp: f.Name(), path: path}, nil
}

// Commit renames the prepared file over its path and syncs the directory.
// On error the path is unchanged and the temporary file removed.
func (p *Pending) Commit() error {
	if err := os.Rename(p.tmp, p.path); err != nil {
		os.Remove(p.tmp)
		return fmt.Errorf("writing %s: %w", p.path, err)
	}
	syncDir(filepath.Dir(p.path))
	return nil
}

// Abort removes the prepared file; its path is unchanged.
func (p *Pending) Abort() { os.Remove(p.tmp) }

// syncDir persists a rename in dir; best effort, since some file systems
// (and Windows) cannot sync a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
