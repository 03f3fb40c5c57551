package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pnasml/pnas/internal/device/sshdtest"
	"github.com/pnasml/pnas/search"
	"github.com/pnasml/pnas/search/space"
	"github.com/pnasml/pnas/targets"
)

// TestDeviceSSH profiles and calibrates over ssh against a private sshd on
// 127.0.0.1: the table comes back complete; a program whose connection
// drops or that prints garbage is a clear error that leaves the table and
// the log as they were.
func TestDeviceSSH(t *testing.T) {
	srv := sshdtest.Start(t)
	spacePath, _ := tinySetup(t)
	dir := t.TempDir()
	target := "amd64"
	if tg, err := targets.Lookup(target); err != nil || tg.HostSupports() != nil {
		target = "generic"
	}
	table := filepath.Join(dir, "lut.json")
	dev := []string{"--device", "ssh://pnas-test", "--ssh-config", srv.Config}
	// 15 runs a network: the fit of the whole-network correction rests
	// on medians of a few microsecond-long networks, and with 5 a spell
	// of a few milliseconds on a shared machine could take a median over
	// (the fit then refuses a scale that is not positive).
	code, out, errs := runCLI(t, append([]string{"profile", "--space", spacePath, "--target", target, "--dir", filepath.Join(dir, "prof"),
		"--runs", "15", "--random", "2", "-o", table}, dev...)...)
	if code != 0 {
		t.Fatalf("profile over ssh: exit %d: %s\n%s", code, errs, out)
	}
	lut, err := targets.Load(table)
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := space.Load(spacePath)
	plan, _ := sp.Plan()
	if _, err := search.NewLatencyModel(plan, lut.SearchTable()); err != nil {
		t.Errorf("table profiled over ssh: %v", err)
	}

	// calibrate --run over ssh: a real program first.
	log := filepath.Join(dir, "m.jsonl")
	code, out, errs = runCLI(t, append([]string{"calibrate", "--table", table, "--log", log, "--run", filepath.Join(dir, "prof", "model"), "--runs", "3", "--holdout", "0"}, dev...)...)
	if code != 0 || !strings.Contains(errs, "on ssh://pnas-test") {
		t.Fatalf("calibrate over ssh: exit %d: %s\n%s", code, errs, out)
	}
	tableBefore, _ := os.ReadFile(table)
	logBefore, _ := os.ReadFile(log)
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	list := `if [ "$1" = -list ]; then printf 'profile-k3e3\t1 ops\n'; exit 0; fi; `
	drop := write("drop", list+`echo '{"schema":'; p=$PPID; while [ "$p" -gt 1 ] && [ "$p" != `+strconv.Itoa(srv.PID)+` ]; do pp=$(awk '{print $4}' /proc/$p/stat); kill -9 $p; p=$pp; done; sleep 5`)
	garbage := write("garbage", list+`echo 'this is not JSON'`)
	for _, c := range []struct{ prog, want string }{
		{drop, "ssh lost or refused the connection"},
		{garbage, "not a bench report"},
	} {
		code, _, errs := runCLI(t, append([]string{"calibrate", "--table", table, "--log", log, "--run", c.prog, "--runs", "3"}, dev...)...)
		if code == 0 || !strings.Contains(errs, c.want) || !strings.Contains(errs, "ssh://pnas-test") {
			t.Errorf("%s: exit %d, stderr %q; want an error with %q", filepath.Base(c.prog), code, errs, c.want)
		}
		if b, _ := os.ReadFile(table); string(b) != string(tableBefore) {
			t.Errorf("%s: the table changed", filepath.Base(c.prog))
		}
		if b, _ := os.ReadFile(log); string(b) != string(logBefore) {
			t.Errorf("%s: the log changed", filepath.Base(c.prog))
		}
	}
	// profile over ssh with a program that fails: no table written.
	code, _, errs = runCLI(t, append([]string{"profile", "--space", spacePath, "--target", target, "--dir", filepath.Join(dir, "prof2"),
		"--runs", "5", "-o", filepath.Join(dir, "new.json")}, "--device", "ssh://127.0.0.1:1", "--ssh-config", srv.Config)...)
	if code == 0 || !strings.Contains(errs, "connection") {
		t.Errorf("profile on an unreachable device: exit %d, stderr %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.json")); err == nil {
		t.Errorf("profile on an unreachable device wrote a table")
	}
}

// TestDeviceQEMU: arm64 profiling programs run under qemu-aarch64-static
// with their timings labelled; a table from them is refused, and so is
// calibrating with them.
func TestDeviceQEMU(t *testing.T) {
	if _, err := exec.LookPath("qemu-aarch64-static"); err != nil {
		t.Skip("qemu-aarch64-static not installed (Debian package qemu-user-static; make deps-apt installs it)")
	}
	spacePath, lutPath := tinySetup(t)
	dir := t.TempDir()
	code, out, errs := runCLI(t, "profile", "--space", spacePath, "--target", "arm64", "--device", "qemu", "--runs", "5", "--random", "0", "--dir", filepath.Join(dir, "prof"))
	if code != 0 || !strings.Contains(out, "emulated (qemu, neon kernels; not a latency)") || !strings.Contains(out, "no table written") {
		t.Errorf("profile --device qemu: exit %d\n%s\n%s", code, out, errs)
	}
	for _, args := range [][]string{
		{"profile", "--space", spacePath, "--target", "arm64", "--device", "qemu", "-o", filepath.Join(dir, "t.json"), "--dir", filepath.Join(dir, "prof")},
		{"calibrate", "--table", lutPath, "--log", filepath.Join(dir, "l.jsonl"), "--device", "qemu"},
	} {
		code, _, errs := runCLI(t, args...)
		if code != 2 || !strings.Contains(errs, "emulated timings are not latencies") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs)
		}
	}
	if code, _, errs := runCLI(t, "profile", "--space", spacePath, "--target", "amd64", "--device", "qemu", "--dir", filepath.Join(dir, "p3")); code != 2 || !strings.Contains(errs, "linux/arm64") {
		t.Errorf("qemu with an amd64 target: exit %d, stderr %q", code, errs)
	}
}
