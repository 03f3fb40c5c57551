// Package device runs compiled pnas programs where they are meant to run
// and brings their output back: on this machine ("local"), on another one
// over OpenSSH ("ssh://user@host[:port]"), or under user-mode emulation
// ("qemu", qemu-aarch64-static for arm64 programs, for correctness only).
//
// The ssh device uses the system's ssh and scp commands, so the user's
// ~/.ssh/config, agent and jump hosts apply. It checks that the program's
// ELF machine is the remote's (uname -sm), copies the program into a
// fresh directory made with mktemp on the remote machine, runs it there
// with the arguments quoted for a POSIX shell, and removes the directory
// on Close. Batch mode is on: a host that asks for a password fails
// instead of waiting for one.
//
// Bench runs the loop every caller of a compiled program shares: run one
// model of the program with -bench N -json and parse the report, failing
// with an error that names the device, the command and what came back
// when the program fails, the connection drops or the output is not a
// bench report. pnas profile, pnas calibrate and the latency benchmark
// (internal/cmd/latbench) run their programs through it; package sshdtest
// starts the OpenSSH server its tests and cmd/pnas's run against.
package device
