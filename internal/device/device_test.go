package device

import (
	"context"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/pnasml/pnas/internal/device/sshdtest"
)

func TestOpenSpecs(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		{"ssh://", "expected ssh://[user@]host[:port]"},
		{"ssh://h:99999", "port"},
		{"ssh://u:pw@h", "passwords"},
		{"ssh://h/dir", "expected ssh://"},
		{"adb://phone", "expected local, qemu or ssh://"},
	} {
		if _, err := Open(c.spec, Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q): %v, want an error containing %q", c.spec, err, c.want)
		}
	}
	d, err := Open("ssh://me@board:2222", Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := d.(*sshDevice)
	if s.user != "me" || s.host != "board" || s.port != "2222" || d.Emulated() {
		t.Errorf("parsed %+v", s)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{"a-b_c.d/e": "a-b_c.d/e", "": "''", "a b": "'a b'", "it's": `'it'\''s'`, "$(x)": "'$(x)'"} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// script writes an executable shell script standing in for a program.
func script(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSSH runs programs on a real sshd: arguments arrive intact, output
// comes back, a dropped connection and garbage output are clear errors,
// and Close removes the remote copy.
func TestSSH(t *testing.T) {
	srv := sshdtest.Start(t)
	ctx := context.Background()
	for _, spec := range []string{"ssh://pnas-test", "ssh://" + srv.User + "@127.0.0.1:" + itoa(srv.Port)} {
		d, err := Open(spec, Options{SSHConfig: srv.Config})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Install(ctx, script(t, `for a in "$@"; do printf '[%s]' "$a"; done; echo; pwd`)); err != nil {
			t.Fatal(err)
		}
		out, err := d.Run(ctx, "a b", "it's", "$(x)", "")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if lines[0] != "[a b][it's][$(x)][]" {
			t.Errorf("%s: arguments arrived as %q", spec, lines[0])
		}
		dir := lines[len(lines)-1]
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s: Close left %s: %v", spec, dir, err)
		}
	}

	d, err := Open("ssh://pnas-test", Options{SSHConfig: srv.Config})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// A program whose session dies mid-run: sshd's processes of the session
	// (every ancestor below the listening server) are killed, ssh loses
	// the connection.
	drop := `echo '{"schema":'; p=$PPID; while [ "$p" -gt 1 ] && [ "$p" != ` + itoa(srv.PID) + ` ]; do pp=$(awk '{print $4}' /proc/$p/stat); kill -9 $p; p=$pp; done; sleep 5`
	if err := d.Install(ctx, script(t, drop)); err != nil {
		t.Fatal(err)
	}
	if _, err := Bench(ctx, d, "m", 3); err == nil || !strings.Contains(err.Error(), "device ssh://pnas-test: ssh lost or refused the connection") {
		t.Errorf("dropped connection: %v", err)
	}
	d.Close()
	if err := d.Install(ctx, script(t, `echo 'Segmentation fault? no: garbage'`)); err != nil {
		t.Fatal(err)
	}
	if _, err := Bench(ctx, d, "m", 3); err == nil || !strings.Contains(err.Error(), "not a bench report") || !strings.Contains(err.Error(), "garbage") {
		t.Errorf("garbage output: %v", err)
	}
	// A program for another architecture than the device's.
	if err := d.Install(ctx, fakeELF(t, elf.EM_AARCH64)); err == nil || !strings.Contains(err.Error(), "runs linux/amd64, the program") || !strings.Contains(err.Error(), "is for linux/arm64") {
		if goruntime.GOARCH == "amd64" {
			t.Errorf("arm64 program on an amd64 device: %v", err)
		}
	}
	// An unreachable device: nothing listens on the port any more.
	bad, _ := Open("ssh://127.0.0.1:1", Options{SSHConfig: srv.Config})
	if err := bad.Install(ctx, script(t, "true")); err == nil || !strings.Contains(err.Error(), "connection") {
		t.Errorf("unreachable device: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// fakeELF writes the 64-byte header of a little-endian ELF64 executable
// for machine m, without sections or segments.
func fakeELF(t *testing.T, m elf.Machine) string {
	h := make([]byte, 64)
	copy(h, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(h[16:], uint16(elf.ET_EXEC))
	binary.LittleEndian.PutUint16(h[18:], uint16(m))
	binary.LittleEndian.PutUint32(h[20:], 1)
	binary.LittleEndian.PutUint16(h[52:], 64)
	binary.LittleEndian.PutUint16(h[54:], 56)
	binary.LittleEndian.PutUint16(h[58:], 64)
	p := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(p, h, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPlatforms(t *testing.T) {
	if got := elfPlatform(fakeELF(t, elf.EM_AARCH64)); got != "linux/arm64" {
		t.Errorf("arm64 ELF: %q", got)
	}
	if got := elfPlatform(fakeELF(t, elf.EM_X86_64)); got != "linux/amd64" {
		t.Errorf("amd64 ELF: %q", got)
	}
	if got := elfPlatform(script(t, "true")); got != "" {
		t.Errorf("script: %q", got)
	}
	for in, want := range map[string]string{"Linux x86_64": "linux/amd64", "Linux aarch64": "linux/arm64", "Darwin arm64": "darwin/arm64", "Linux mips": "", "": ""} {
		if got := unamePlatform(in); got != want {
			t.Errorf("unamePlatform(%q) = %q, want %q", in, got, want)
		}
	}
	if err := checkPlatform("ssh://pi", fakeELF(t, elf.EM_X86_64), "linux/arm64"); err == nil || !strings.Contains(err.Error(), "compile it for a linux/arm64 target") {
		t.Errorf("checkPlatform: %v", err)
	}
}
