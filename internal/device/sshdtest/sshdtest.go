package sshdtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SSHD is the path of the server (Debian package openssh-server).
const SSHD = "/usr/sbin/sshd"

// Server is a running test server.
type Server struct {
	Dir    string // holds keys, configs and the log
	Port   int
	User   string
	Config string // client config for ssh -F: Host "pnas-test" and 127.0.0.1 reach the server
	Log    string // the server's log
	PID    int    // the listening server process
}

// Start starts a server for the test. It skips the test, naming the
// package to install, when sshd is missing (make test's set-up installs it).
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := os.Stat(SSHD); err != nil {
		t.Skipf("%s not installed (Debian package openssh-server; make deps-apt installs it)", SSHD)
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen not installed (Debian package openssh-client)")
	}
	dir := t.TempDir()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	keygen := func(name string) {
		if b, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pnas-test", "-f", filepath.Join(dir, name)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, b)
		}
	}
	keygen("host_key")
	keygen("id_ed25519")
	pub, err := os.ReadFile(filepath.Join(dir, "id_ed25519.pub"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("authorized_keys", string(pub), 0o600)
	if os.Geteuid() == 0 {
		// sshd refuses to start without its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	s := &Server{Dir: dir, Port: port, User: u.Username, Log: filepath.Join(dir, "sshd.log")}
	cfg := write("sshd_config", fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers %s
Subsystem sftp internal-sftp
LogLevel VERBOSE
`, port, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"), u.Username), 0o600)
	hostPub, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(hostPub))
	known := write("known_hosts", fmt.Sprintf("[127.0.0.1]:%d %s %s\n", port, f[0], f[1]), 0o600)
	s.Config = write("ssh_config", fmt.Sprintf(`Host pnas-test 127.0.0.1
  HostName 127.0.0.1
  Port %d
  User %s
  IdentityFile %s
  IdentitiesOnly yes
  UserKnownHostsFile %s
  StrictHostKeyChecking yes
  HostKeyAlias [127.0.0.1]:%d
  ConnectTimeout 10
`, port, u.Username, filepath.Join(dir, "id_ed25519"), known, port), 0o600)

	logf, err := os.Create(s.Log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(SSHD, "-D", "-e", "-f", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.PID = cmd.Process.Pid
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.Log)
			t.Fatalf("sshd did not listen on 127.0.0.1:%d: %v\n%s", port, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// One login proves the keys and configs before the test relies on them.
	out, err := exec.Command("ssh", "-F", s.Config, "-o", "BatchMode=yes", "pnas-test", "echo ok").CombinedOutput()
	if err != nil || !bytes.Equal(bytes.TrimSpace(out), []byte("ok")) {
		b, _ := os.ReadFile(s.Log)
		t.Fatalf("ssh to the test sshd: %v\n%s\nsshd log:\n%s", err, out, b)
	}
	return s
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
