package shell

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// vmFlags returns the VmFlags line of the mapping of /proc/self/smaps that
// holds addr.
func vmFlags(t *testing.T, addr uintptr) string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		if r, _, ok := strings.Cut(line, " "); ok && strings.Contains(r, "-") && !strings.HasSuffix(r, ":") {
			lo, hi, _ := strings.Cut(r, "-")
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			in = err1 == nil && err2 == nil && uint64(addr) >= a && uint64(addr) < b
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return line
		}
	}
	t.Fatalf("no mapping in /proc/self/smaps holds %#x", addr)
	return ""
}

func TestAlignedFloatsHugePages(t *testing.T) {
	n := hugeFloatsFrom/4 + 12345
	w := alignedFloats(n)
	if len(w) != n || cap(w) < n {
		t.Fatalf("len %d cap %d, want %d", len(w), cap(w), n)
	}
	addr := uintptr(unsafe.Pointer(&w[0]))
	if addr%hugePage != 0 {
		t.Errorf("large slice at %#x, not 2 MiB aligned", addr)
	}
	for i, v := range w {
		if v != 0 {
			t.Fatalf("w[%d] = %v, want 0", i, v)
		}
	}
	for i := range w {
		w[i] = float32(i)
	}
	if w[n-1] != float32(n-1) {
		t.Fatalf("last float reads %v", w[n-1])
	}
	// Kernels built without transparent huge pages have no such setting
	// and refuse the advice; the slice is then an ordinary mapping.
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Logf("no transparent huge pages here (%v): advice not checked", err)
	} else if fl := vmFlags(t, addr); !strings.Contains(fl, " hg") {
		t.Errorf("mapping not advised for huge pages: %s", fl)
	}

	small := alignedFloats(1000)
	if len(small) != 1000 || addrMod64(&small[0]) != 0 {
		t.Errorf("small slice: len %d, address mod 64 = %d", len(small), addrMod64(&small[0]))
	}
}
