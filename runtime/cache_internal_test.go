package runtime

import (
	"os"
	"path/filepath"
	"testing"
)

// TestL2CacheBytes reads the L2 size from sysfs-style directories: the
// level-2 entry that is not an instruction cache, K and M suffixes, and 0
// for a missing, malformed or L2-less directory.
func TestL2CacheBytes(t *testing.T) {
	type idx struct{ level, typ, size string }
	mk := func(t *testing.T, entries ...idx) string {
		dir := t.TempDir()
		for i, e := range entries {
			d := filepath.Join(dir, "index"+string(rune('0'+i)))
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, v := range map[string]string{"level": e.level, "type": e.typ, "size": e.size} {
				if err := os.WriteFile(filepath.Join(d, name), []byte(v+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		return dir
	}
	for _, c := range []struct {
		name    string
		entries []idx
		want    int
	}{
		{"zen4", []idx{{"1", "Data", "32K"}, {"1", "Instruction", "32K"}, {"2", "Unified", "1024K"}, {"3", "Unified", "32768K"}}, 1 << 20},
		{"megabytes", []idx{{"1", "Data", "48K"}, {"2", "Unified", "2M"}}, 2 << 20},
		{"instruction L2 skipped", []idx{{"2", "Instruction", "64K"}, {"2", "Data", "512K"}}, 512 << 10},
		{"no L2", []idx{{"1", "Data", "32K"}, {"3", "Unified", "8M"}}, 0},
		{"malformed", []idx{{"2", "Unified", "lots"}}, 0},
		{"empty", nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := l2CacheBytes(mk(t, c.entries...)); got != c.want {
				t.Errorf("l2CacheBytes = %d, want %d", got, c.want)
			}
		})
	}
	if got := l2CacheBytes(filepath.Join(t.TempDir(), "missing")); got != 0 {
		t.Errorf("missing directory: %d, want 0", got)
	}
	for _, c := range [][2]int{{0, 512 << 10}, {2 << 20, 512 << 10}, {1 << 20, 256 << 10}, {512 << 10, 128 << 10},
		{128 << 10, 64 << 10}, {16 << 20, 1 << 20}} {
		if got := l2QuarterFor(c[0]); got != c[1] {
			t.Errorf("l2QuarterFor(%d) = %d, want %d", c[0], got, c[1])
		}
	}
	if s := MBConvStripBytes(); s < 64<<10 || s > 1<<20 {
		t.Errorf("MBConvStripBytes() = %d on this machine, outside [64 KiB, 1 MiB]", s)
	}
}
