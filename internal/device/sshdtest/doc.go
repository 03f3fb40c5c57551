// Package sshdtest starts a private OpenSSH server on 127.0.0.1 for tests
// of ssh devices: a free port, generated host and user keys, its own
// sshd_config and a client config that names it, all in a temporary
// directory; the server stops when the test ends.
package sshdtest
