package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
)

// BenchmarkGEMMTile measures the raw speed of each level's full-size
// micro-kernel on operands that stay in L1: the ceiling the GEMM driver
// works toward.
func BenchmarkGEMMTile(b *testing.B) {
	for l := levelGo; l <= hwLevel; l++ {
		for _, K := range []int{16, 64, 256} {
			b.Run(fmt.Sprintf("%s/K%d", levelNames[l], K), func(b *testing.B) {
				im := gemmFor(l)
				mr, nv := im.mr, im.maxNV
				nr := im.nr()
				a := make([]float32, mr*K)
				bb := make([]float32, (nr+15)/16*16*K)
				c := make([]float32, mr*nr)
				bias := make([]float32, 32)
				f := im.tiles[nv-1][mr-1]
				const reps = 16
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				c0 := threadCPU()
				for b.Loop() {
					for range reps {
						f(&a[0], K, K, 1, 0, &bb[0], K*16, &c[0], nr, &bias[0], nil, 0, 1, nr, 2)
					}
				}
				flops := 2 * float64(mr*nr*K*reps)
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				if cpu := threadCPU() - c0; cpu > 0 {
					b.ReportMetric(flops*float64(b.N)/cpu.Seconds()/1e9, "cpuGFLOP/s")
				}
			})
		}
	}
}

func TestCapLevel(t *testing.T) {
	for _, c := range []struct {
		hw             int
		noasm, kernels string
		want           int
	}{
		{levelAVX512, "", "", levelAVX512},
		{levelAVX512, "1", "", levelGo},
		{levelAVX512, "0", levelNames[levelAVX2], levelAVX2},
		{levelAVX2, "", levelNames[levelAVX512], levelAVX2},
		{levelAVX512, "", "bogus", levelAVX512},
		{levelGo, "", levelNames[levelAVX2], levelGo},
	} {
		if got := capLevel(c.hw, c.noasm, c.kernels); got != c.want {
			t.Errorf("capLevel(%d, %q, %q) = %d, want %d", c.hw, c.noasm, c.kernels, got, c.want)
		}
	}
}

func TestSerialFor(t *testing.T) {
	// isIntel (CPUID) agrees with Linux's reading of the vendor
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil && runtime.GOARCH == "amd64" && hwLevel > levelGo {
		if intel := strings.Contains(string(info), "GenuineIntel"); intel != isIntel {
			t.Errorf("isIntel = %v, /proc/cpuinfo says GenuineIntel: %v", isIntel, intel)
		}
	}
	want := int64(0)
	if runtime.GOARCH == "amd64" && isIntel {
		want = serialWork
	}
	if got := serialFor(levelAVX512); got != want {
		t.Errorf("serialFor(avx512) = %d, want %d", got, want)
	}
	if got := serialFor(levelAVX2); got != 0 {
		t.Errorf("serialFor(avx2) = %d, want 0", got)
	}
	if got := serialFor(levelGo); got != 0 {
		t.Errorf("serialFor(go) = %d, want 0", got)
	}
}

// TestTileRows checks how a group's rows are cut into tiles: contiguous,
// covering the group once, no tile above the kernels' height; a group
// whose last tile would have one to three rows is shared evenly instead,
// every tile then having at least three rows (a map row of 7 on 6-row
// tiles: 4 and 3; two on the 4-row tiles of the portable kernels) and at
// most one row fewer than the others.
func TestTileRows(t *testing.T) {
	for _, mr := range []int{4, 6, 14} {
		for rows := 1; rows <= 300; rows++ {
			g := gemmRun{impl: &gemmImpl{mr: mr, vw: 16, maxNV: 1}, groups: 2, rows: rows, n: 16, lda: 1, kseg: 1, nseg: 1}
			g.plan(nil)
			next, lo, hi := 0, mr, 0
			for ti := 0; ti < g.tpg; {
				_, n, same := g.tileRows(ti)
				if same < 1 || ti+same > g.tpg {
					t.Fatalf("mr %d, %d rows: tile %d: %d tiles of its height", mr, rows, ti, same)
				}
				for k := 0; k < same; k++ {
					r, m, _ := g.tileRows(ti + k)
					if r != next || m != n || m < 1 || m > mr {
						t.Fatalf("mr %d, %d rows: tile %d at row %d with %d rows, want row %d", mr, rows, ti+k, r, m, next)
					}
					next += m
					lo, hi = min(lo, m), max(hi, m)
				}
				ti += same
			}
			if next != rows {
				t.Fatalf("mr %d, %d rows: tiles cover %d rows", mr, rows, next)
			}
			if r := rows % mr; r > 0 && r < 4 && rows > mr && (lo < min(3, mr-2) || hi-lo > 1) {
				t.Errorf("mr %d, %d rows: tiles of %d to %d rows, want an even share", mr, rows, lo, hi)
			}
		}
	}
}

// TestTailTiles checks every tail micro-kernel of the levels this machine
// runs (gemmImpl.tail: 24 columns; AVX2 3x8 lanes, AVX-512 16 + 8) against
// gemmTileGo and gemmWrapGo, for every row count, two k segments, a
// residual and each activation. The operator tests reach them only at the
// row counts their shapes happen to leave.
func TestTailTiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = rng.Float32()*2 - 1
		}
		return s
	}
	const kseg, nseg, ntiles = 13, 2, 3
	for l := levelGo; l <= hwLevel; l++ {
		tm := gemmFor(l).tail
		if tm == nil || gemmFor(l) != gemmImpls[l] {
			continue
		}
		lda := nseg*kseg + 5
		bstride := nseg*kseg*panelW + 7
		b := fill(bstride + nseg*kseg*panelW)
		bias := fill(32)
		for act := 0; act < 3; act++ {
			for mr := 1; mr <= tm.mr; mr++ {
				a := fill(ntiles * mr * lda)
				ldc, ldr := tailCols+3, tailCols+5
				res := fill(ntiles * mr * ldr)
				got, want := fill(ntiles*mr*ldc), make([]float32, ntiles*mr*ldc)
				copy(want, got)
				tm.tiles[2][mr-1](&a[0], lda, kseg, nseg, kseg, &b[0], bstride, &got[0], ldc,
					&bias[0], &res[0], ldr, ntiles, tailCols, act)
				gemmTileGo(mr, &a[0], lda, kseg, nseg, kseg, &b[0], bstride, &want[0], ldc,
					&bias[0], &res[0], ldr, ntiles, tailCols, act)
				checkClose(t, fmt.Sprintf("%s tail m%d act %d", levelNames[l], mr, act), got, want)
			}
			if tm.wrap == nil {
				continue
			}
			// rows in groups of rpg with gaps, the first group partial
			mr := tm.mr
			rpg, left, cskip, rskip := 5, 2, 11, 6
			groups := ntiles*mr/rpg + 2
			ldc, ldr := tailCols+1, tailCols+2
			a := fill(ntiles * mr * lda)
			res := fill(groups * rpg * (ldr + rskip))
			got := fill(groups * rpg * (ldc + cskip))
			want := append([]float32(nil), got...)
			tm.wrap[2](&a[0], lda, kseg, nseg, kseg, &b[0], bstride, &got[0], ldc, &bias[0], &res[0], ldr,
				ntiles, tailCols, act, rpg, left, cskip, rskip)
			gemmWrapGo(mr, &a[0], lda, kseg, nseg, kseg, &b[0], bstride, &want[0], ldc, &bias[0], &res[0], ldr,
				ntiles, tailCols, act, rpg, left, cskip, rskip)
			checkClose(t, fmt.Sprintf("%s tail wrap act %d", levelNames[l], act), got, want)
		}
	}
}

func checkClose(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("%s: element %d = %g, want %g", what, i, got[i], want[i])
		}
	}
}

func TestGEMMForShape(t *testing.T) {
	a2, a5 := gemmImpls[levelAVX2], gemmImpls[levelAVX512]
	if a2 == nil || a5 == nil {
		t.Logf("no AVX2 and AVX-512 GEMM kernels in this build (%s): only the identity is checked", runtime.GOARCH)
		if im := gemmImpls[levelGo]; gemmForShape(im, 16, 16) != im {
			t.Fatal("gemmForShape changed the portable kernels")
		}
		return
	}
	old := halfWidth512
	defer func() { halfWidth512 = old }()
	for _, c := range []struct {
		half bool
		k, n int
		want *gemmImpl
	}{
		{false, 16, 96, a5}, {false, 144, 24, a5},
		{true, 16, 96, a2}, {true, 27, 40, a2}, {true, 32, 192, a2}, {true, 144, 24, a2},
		{true, 33, 192, a5}, {true, 144, 32, a5}, {true, 1536, 256, a5},
	} {
		halfWidth512 = c.half
		if got := gemmForShape(a5, c.k, c.n); got != c.want {
			t.Errorf("halfWidth512 %v, k %d, n %d: got the kernels of mr %d, want mr %d", c.half, c.k, c.n, got.mr, c.want.mr)
		}
		if got := gemmForShape(a2, c.k, c.n); got != a2 {
			t.Errorf("halfWidth512 %v, k %d, n %d: the AVX2 kernels were replaced", c.half, c.k, c.n)
		}
	}
}

func TestCPUFamily(t *testing.T) {
	for _, c := range []struct{ eax, want uint32 }{
		{0x00a10f11, 0x19}, // AMD EPYC Zen 4 (family 25 model 17)
		{0x00a00f11, 0x19}, // Zen 3
		{0x00b40f40, 0x1a}, // Zen 5
		{0x000806f8, 6},    // Intel Sapphire Rapids
	} {
		if got := cpuFamily(c.eax); got != c.want {
			t.Errorf("cpuFamily(%#x) = %#x, want %#x", c.eax, got, c.want)
		}
	}
}
