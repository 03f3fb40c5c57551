package runtime

import "testing"

// TestKernelSetNames: the file table's kernel sets are the level names of
// their architecture (codegen's TestKernelSetTable checks both against
// targets/presets.json).
func TestKernelSetNames(t *testing.T) {
	for _, k := range kernelSets {
		arch := k.goarch
		if arch == "" {
			arch = "amd64"
		}
		if got := levelNamesFor(arch)[k.level]; got != k.name {
			t.Errorf("kernel set %s (%s, level %d): levelNamesFor says %q", k.name, k.goarch, k.level, got)
		}
		if k.goarch != "" && len(levelFeaturesFor(k.goarch)[k.level]) == 0 {
			t.Errorf("kernel set %s: no features to detect it by", k.name)
		}
	}
	for _, arch := range []string{"amd64", "arm64"} {
		for l, n := range levelNamesFor(arch) {
			found := n == ""
			for _, k := range kernelSets {
				found = found || (k.name == n && k.level == l && (k.goarch == arch || k.goarch == ""))
			}
			if !found {
				t.Errorf("%s level %d (%q) is not in the file table", arch, l, n)
			}
		}
	}
}
