package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pnasml/pnas/internal/device"
)

// DeviceFlags choose where pnas profile and pnas calibrate run programs.
type DeviceFlags struct {
	Device    string `help:"Where to run the programs: local (this machine), ssh://[user@]host[:port] (copied and run with the system's scp and ssh, so ~/.ssh/config, the agent and jump hosts apply), or qemu (arm64 programs under qemu-aarch64-static: checks that they run; emulated timings are not latencies)." default:"local" placeholder:"DEVICE"`
	SSHConfig string `name:"ssh-config" help:"ssh/scp configuration file (-F) for an ssh:// device (default: OpenSSH's own, ~/.ssh/config)." type:"existingfile" placeholder:"FILE"`
}

// open opens the device.
func (f DeviceFlags) open() (device.Device, error) {
	d, err := device.Open(f.Device, device.Options{SSHConfig: f.SSHConfig})
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return d, nil
}

// isLocal reports whether programs run on this machine's CPU.
func (f DeviceFlags) isLocal() bool { return f.Device == "" || f.Device == "local" }

// emulatedRefusal is the error for timings from an emulator where a
// latency table would be written.
func emulatedRefusal(what string) error {
	return &exitError{code: 2, err: fmt.Errorf("--device qemu: emulated timings are not latencies of any hardware, so they cannot %s; use --device ssh://HOST for the real device", what)}
}

// checkEmulatable fails unless the program built with env is an arm64
// Linux program, the only kind --device qemu runs.
func checkEmulatable(env []string) error {
	if !slices.Contains(env, "GOARCH=arm64") || !slices.Contains(env, "GOOS=linux") {
		return &exitError{code: 2, err: fmt.Errorf("--device qemu runs linux/arm64 programs (qemu-aarch64-static); this target builds %s", strings.Join(env[:2], " "))}
	}
	return nil
}

// installAndList copies a program to the device and lists its models.
func installAndList(ctx context.Context, dev device.Device, bin string) ([]string, error) {
	if err := dev.Install(ctx, bin); err != nil {
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	names, err := device.List(ctx, dev)
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	return names, nil
}
