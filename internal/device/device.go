package device

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pnasml/pnas/targets"
)

// A Device runs one installed program.
type Device interface {
	// String names the device as the user gave it.
	String() string
	// Emulated reports whether the program runs under an emulator, whose
	// timings are not latencies of any hardware.
	Emulated() bool
	// Install copies the program at path to the device; later Runs run it.
	Install(ctx context.Context, path string) error
	// Run runs the installed program with args and returns its standard
	// output.
	Run(ctx context.Context, args ...string) ([]byte, error)
	// Close removes what Install put on the device.
	Close() error
}

// Options configures Open.
type Options struct {
	SSHConfig string // ssh -F FILE; empty: OpenSSH's default (~/.ssh/config)
	SSH, SCP  string // the commands; default "ssh" and "scp"
	QEMU      string // the emulator; default "qemu-aarch64-static"
}

// Open parses a device specification: "" or "local", "qemu", or
// "ssh://[user@]host[:port]".
func Open(spec string, o Options) (Device, error) {
	switch {
	case spec == "" || spec == "local":
		return &local{}, nil
	case spec == "qemu":
		q := o.QEMU
		if q == "" {
			q = "qemu-aarch64-static"
		}
		p, err := exec.LookPath(q)
		if err != nil {
			return nil, fmt.Errorf("--device qemu: %s not found (Debian package qemu-user-static): %w", q, err)
		}
		return &local{emulator: p}, nil
	case strings.HasPrefix(spec, "ssh://"):
		u, err := url.Parse(spec)
		if err != nil || u.Host == "" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("--device %q: expected ssh://[user@]host[:port]", spec)
		}
		if _, pass := u.User.Password(); pass {
			return nil, fmt.Errorf("--device %q: passwords in the URL are not supported; use ssh keys or the agent", spec)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("--device %q: port: expected 1..65535, got %q", spec, p)
			}
		}
		d := &sshDevice{spec: spec, host: u.Hostname(), port: u.Port(), config: o.SSHConfig, ssh: o.SSH, scp: o.SCP}
		if u.User != nil {
			d.user = u.User.Username()
		}
		if d.ssh == "" {
			d.ssh = "ssh"
		}
		if d.scp == "" {
			d.scp = "scp"
		}
		return d, nil
	}
	return nil, fmt.Errorf("--device %q: expected local, qemu or ssh://[user@]host[:port]", spec)
}

// local runs programs on this machine, directly or under an emulator.
type local struct {
	emulator string
	bin      string
}

func (l *local) String() string {
	if l.emulator != "" {
		return "qemu"
	}
	return "local"
}

func (l *local) Emulated() bool { return l.emulator != "" }

func (l *local) Install(_ context.Context, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return err
	}
	l.bin = abs
	return nil
}

func (l *local) Run(ctx context.Context, args ...string) ([]byte, error) {
	name, argv := l.bin, args
	if l.emulator != "" {
		name, argv = l.emulator, append([]string{l.bin}, args...)
	}
	return output(ctx, l.String(), exec.CommandContext(ctx, name, argv...))
}

func (l *local) Close() error { return nil }

// sshDevice runs programs on another machine through OpenSSH.
type sshDevice struct {
	spec, user, host, port, config string
	ssh, scp                       string
	dir                            string // remote directory of the installed program
}

func (d *sshDevice) String() string { return d.spec }
func (d *sshDevice) Emulated() bool { return false }

func (d *sshDevice) dest() string {
	if d.user != "" {
		return d.user + "@" + d.host
	}
	return d.host
}

// opts are the options ssh and scp share; port is -p for ssh, -P for scp.
func (d *sshDevice) opts(portFlag string) []string {
	o := []string{"-o", "BatchMode=yes"}
	if d.config != "" {
		o = append(o, "-F", d.config)
	}
	if d.port != "" {
		o = append(o, portFlag, d.port)
	}
	return o
}

// remote runs a shell command line on the device.
func (d *sshDevice) remote(ctx context.Context, line string) ([]byte, error) {
	args := append(d.opts("-p"), "--", d.dest(), line)
	return output(ctx, d.spec, exec.CommandContext(ctx, d.ssh, args...))
}

func (d *sshDevice) Install(ctx context.Context, path string) error {
	out, err := d.remote(ctx, "uname -sm && mktemp -d \"${TMPDIR:-/tmp}/pnas.XXXXXX\"")
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "/") || strings.Contains(lines[1], "'") {
		return fmt.Errorf("device %s: uname -sm && mktemp -d printed %q, expected the system and a directory", d.spec, out)
	}
	d.dir = lines[1]
	if err := checkPlatform(d.spec, path, unamePlatform(lines[0])); err != nil {
		d.Close()
		return err
	}
	args := append(d.opts("-P"), "-q", "--", path, d.dest()+":"+d.dir+"/program")
	if _, err := output(ctx, d.spec, exec.CommandContext(ctx, d.scp, args...)); err != nil {
		return fmt.Errorf("copying %s: %w", path, err)
	}
	return nil
}

func (d *sshDevice) Run(ctx context.Context, args ...string) ([]byte, error) {
	if d.dir == "" {
		return nil, fmt.Errorf("device %s: no program installed", d.spec)
	}
	line := "cd " + Quote(d.dir) + " && ./program"
	for _, a := range args {
		line += " " + Quote(a)
	}
	return d.remote(ctx, line)
}

func (d *sshDevice) Close() error {
	if d.dir == "" {
		return nil
	}
	_, err := d.remote(context.Background(), "rm -rf "+Quote(d.dir))
	d.dir = ""
	return err
}

// Quote quotes s as one word for a POSIX shell.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// output runs cmd and returns its standard output; on failure the error
// names the device and the command and carries the end of its standard
// error. ssh's exit status 255 is a connection failure.
func output(ctx context.Context, dev string, cmd *exec.Cmd) ([]byte, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil {
		return out, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("device %s: %s: %w", dev, filepath.Base(cmd.Path), ctx.Err())
	}
	msg := strings.TrimSpace(stderr.String())
	if len(msg) > 600 {
		msg = "…" + msg[len(msg)-600:]
	}
	what := "failed"
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 255 && (filepath.Base(cmd.Path) == "ssh" || filepath.Base(cmd.Path) == "scp") {
		what = "lost or refused the connection"
	}
	if msg != "" {
		msg = ": " + msg
	}
	return nil, fmt.Errorf("device %s: %s %s (%v)%s", dev, filepath.Base(cmd.Path), what, err, msg)
}

// Bench runs model of the installed program with -bench runs -json and
// the extra arguments, and parses its report. Output that is not a bench
// report is an error quoting its start.
func Bench(ctx context.Context, d Device, model string, runs int, extra ...string) (*targets.BenchReport, error) {
	args := []string{"-bench", strconv.Itoa(runs), "-json"}
	if model != "" {
		args = append([]string{"-model", model}, args...)
	}
	args = append(args, extra...)
	out, err := d.Run(ctx, args...)
	if err != nil {
		return nil, err
	}
	r, err := targets.ParseBench(out)
	if err != nil {
		head := string(out)
		if len(head) > 120 {
			head = head[:120] + "…"
		}
		return nil, fmt.Errorf("device %s: program -model %s: output is not a bench report (%v); it began %q", d, model, err, head)
	}
	return r, nil
}

// List returns the model names of the installed program (-list).
func List(ctx context.Context, d Device) ([]string, error) {
	out, err := d.Run(ctx, "-list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("device %s: program -list printed no models", d)
	}
	return names, nil
}
