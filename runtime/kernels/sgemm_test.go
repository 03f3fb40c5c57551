package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// gemmCase is one product with strides larger than needed.
type gemmCase struct {
	ta, tb      bool
	m, n, k     int
	alpha, beta float32
	pad         int // extra floats per row of every matrix
}

func (g gemmCase) String() string {
	return fmt.Sprintf("ta=%v tb=%v m=%d n=%d k=%d alpha=%v beta=%v pad=%d", g.ta, g.tb, g.m, g.n, g.k, g.alpha, g.beta, g.pad)
}

type gemmData struct {
	a, b, c       guarded
	lda, ldb, ldc int
}

func (g gemmCase) data(r *rand.Rand) gemmData {
	ar, ac := g.m, g.k
	if g.ta {
		ar, ac = g.k, g.m
	}
	br, bc := g.k, g.n
	if g.tb {
		br, bc = g.n, g.k
	}
	d := gemmData{lda: ac + g.pad, ldb: bc + g.pad, ldc: g.n + g.pad}
	size := func(rows, ld int) int { return max(0, rows*ld) }
	d.a = newGuarded(size(ar, d.lda), func(int) float32 { return float32(r.Float64()*2 - 1) })
	d.b = newGuarded(size(br, d.ldb), func(int) float32 { return float32(r.Float64()*2 - 1) })
	d.c = newGuarded(size(g.m, d.ldc), func(i int) float32 {
		if g.beta == 0 {
			return float32(math.NaN()) // write-only: NaNs must be ignored
		}
		return float32(r.Float64()*2 - 1)
	})
	return d
}

// reference is the naive product in float64, with per-element magnitudes.
func (g gemmCase) reference(d gemmData) (want, mag []float64) {
	A := func(i, p int) float64 {
		if g.ta {
			return float64(d.a.s()[p*d.lda+i])
		}
		return float64(d.a.s()[i*d.lda+p])
	}
	B := func(p, j int) float64 {
		if g.tb {
			return float64(d.b.s()[j*d.ldb+p])
		}
		return float64(d.b.s()[p*d.ldb+j])
	}
	want = make([]float64, g.m*g.n)
	mag = make([]float64, g.m*g.n)
	for i := 0; i < g.m; i++ {
		for j := 0; j < g.n; j++ {
			s, a := 0.0, 0.0
			for p := 0; p < g.k; p++ {
				s += A(i, p) * B(p, j)
				a += math.Abs(A(i, p) * B(p, j))
			}
			s *= float64(g.alpha)
			a *= math.Abs(float64(g.alpha))
			if g.beta != 0 {
				cv := float64(d.c.s()[i*d.ldc+j])
				s += float64(g.beta) * cv
				a += math.Abs(float64(g.beta) * cv)
			}
			want[i*g.n+j], mag[i*g.n+j] = s, a
		}
	}
	return want, mag
}

func (g gemmCase) run(d gemmData, workers int) {
	Sgemm(g.ta, g.tb, g.m, g.n, g.k, g.alpha, d.a.s(), d.lda, d.b.s(), d.ldb, g.beta, d.c.s(), d.ldc, workers)
}

func (g gemmCase) verify(t *testing.T, before []float32, d gemmData, want, mag []float64) {
	t.Helper()
	d.a.check(t, "a")
	d.b.check(t, "b")
	d.c.check(t, "c")
	c := d.c.s()
	for i := 0; i < g.m; i++ {
		for j := 0; j < d.ldc; j++ {
			got := c[i*d.ldc+j]
			if j >= g.n {
				if math.Float32bits(got) != math.Float32bits(before[i*d.ldc+j]) {
					t.Fatalf("%v: C[%d][%d] past n was written", g, i, j)
				}
				continue
			}
			if !closeTo(got, want[i*g.n+j], mag[i*g.n+j]) {
				t.Fatalf("%v: C[%d][%d] = %v, want %v", g, i, j, got, want[i*g.n+j])
			}
		}
	}
}

func TestSgemm(t *testing.T) {
	sizes := []int{1, 2, 3, 5, 7, 12, 13, 17, 31, 33, 48}
	forEachSet(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for it := 0; it < 60; it++ {
					g := gemmCase{ta: ta, tb: tb,
						m: sizes[r.IntN(len(sizes))], n: sizes[r.IntN(len(sizes))], k: sizes[r.IntN(len(sizes))],
						alpha: []float32{1, -0.75}[r.IntN(2)], beta: []float32{0, 1, 0.5}[r.IntN(3)], pad: r.IntN(3)}
					d := g.data(r)
					before := append([]float32(nil), d.c.s()...)
					want, mag := g.reference(d)
					g.run(d, 1+r.IntN(3))
					g.verify(t, before, d, want, mag)
				}
			}
		}
	})
}

// TestSgemmLarge crosses every blocking boundary (KC, MC, NC) and the
// worker split, with odd sizes.
func TestSgemmLarge(t *testing.T) {
	cases := []gemmCase{
		{m: 151, n: 2085, k: 300, alpha: 1, beta: 0, pad: 1},
		{ta: true, m: 37, n: 333, k: 517, alpha: 0.5, beta: 1, pad: 3},
		{tb: true, m: 290, n: 45, k: 261, alpha: 1, beta: 0.25},
		{tb: true, m: 23, n: 97, k: 1003, alpha: 1.5, beta: 0, pad: 2},
		{tb: true, m: 144, n: 24, k: 4099, alpha: 1, beta: 1},
		{ta: true, tb: true, m: 97, n: 101, k: 1030, alpha: -1, beta: 0},
	}
	if testing.Short() {
		cases = cases[:2]
	}
	forEachSet(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, g := range cases {
			d := g.data(r)
			before := append([]float32(nil), d.c.s()...)
			want, mag := g.reference(d)
			g.run(d, 3)
			g.verify(t, before, d, want, mag)
		}
	})
}

// TestSgemmDeterministic: identical bits for every workers count.
func TestSgemmDeterministic(t *testing.T) {
	forEachSet(t, func(t *testing.T) {
		for _, g := range []gemmCase{
			{m: 144, n: 1000, k: 24, alpha: 1, beta: 0},
			{ta: true, m: 24, n: 777, k: 144, alpha: 1, beta: 1},
			{tb: true, m: 144, n: 24, k: 3000, alpha: 1, beta: 0},
			{m: 7, n: 5, k: 4000, alpha: 1, beta: 0},
		} {
			r := rand.New(rand.NewPCG(5, 6))
			d := g.data(r)
			c0 := append([]float32(nil), d.c.s()...)
			var first []float32
			for _, w := range []int{1, 2, 3, 4, 7} {
				copy(d.c.s(), c0)
				g.run(d, w)
				if first == nil {
					first = append([]float32(nil), d.c.s()...)
				} else if !sameBits(first, d.c.s()) {
					t.Fatalf("%v: workers=%d differs from workers=1", g, w)
				}
			}
		}
	})
}

func TestSgemmEdge(t *testing.T) {
	// k == 0: C = beta*C; alpha == 0 likewise; m or n == 0: nothing.
	c := []float32{1, 2, 3, 4}
	Sgemm(false, false, 2, 2, 0, 1, nil, 1, nil, 2, 0.5, c, 2, 2)
	if !sameBits(c, []float32{0.5, 1, 1.5, 2}) {
		t.Fatalf("k=0: got %v", c)
	}
	Sgemm(false, false, 2, 2, 1, 0, []float32{1, 1}, 1, []float32{1, 1}, 2, 0, c, 2, 1)
	if !sameBits(c, []float32{0, 0, 0, 0}) {
		t.Fatalf("alpha=0 beta=0: got %v", c)
	}
	Sgemm(false, false, 0, 5, 3, 1, nil, 3, make([]float32, 15), 5, 0, nil, 5, 1)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("short c: no panic")
			}
		}()
		Sgemm(false, false, 2, 2, 1, 1, []float32{1, 1}, 1, []float32{1, 1}, 2, 0, make([]float32, 3), 2, 1)
	}()
}

func TestSgemmBatched(t *testing.T) {
	forEachSet(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		const batch, m, n, k = 5, 9, 21, 13
		sa, sb, sc := m*k+3, k*n+1, m*n+2
		a, b := randSlice(r, batch*sa), randSlice(r, batch*sb)
		for _, w := range []int{1, 2, 8} {
			c := randSlice(r, batch*sc)
			want := append([]float32(nil), c...)
			for i := 0; i < batch; i++ {
				Sgemm(false, true, m, n, k, 0.5, a[i*sa:], k, b[i*sb:], k, 1, want[i*sc:], n, 1)
			}
			SgemmBatched(batch, false, true, m, n, k, 0.5, a, k, sa, b, k, sb, 1, c, n, sc, w)
			if !sameBits(c, want) {
				t.Fatalf("workers=%d: batched differs from one Sgemm per matrix", w)
			}
		}
	})
}

// TestGemmKernelTwins compares every level's micro-kernel with its Go twin
// on full tiles, with and without accumulation.
func TestGemmKernelTwins(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for l, g := range gemmKernels {
		if g == nil || l > hwLevel {
			if l <= hwLevel {
				t.Errorf("level %s has no GEMM kernel", levelNames[l])
			}
			continue
		}
		for _, kc := range []int{1, 2, 3, 4, 5, 8, 17, 256} {
			for _, load := range []bool{false, true} {
				ldc, ldb := g.nr+3, g.nr+r.IntN(2)*5
				a, b := randSlice(r, kc*g.mr), randSlice(r, (kc-1)*ldb+g.nr)
				c := newGuarded(g.mr*ldc, func(int) float32 { return float32(r.Float64()) })
				want := append([]float32(nil), c.s()...)
				sgemmTileGo(g.mr, g.nr, kc, a, b, ldb, want, ldc, load)
				g.fn(kc, a, b, ldb, c.s(), ldc, load)
				c.check(t, "c")
				for i, v := range c.s() {
					if math.Abs(float64(v-want[i])) > 1e-5*float64(kc) {
						t.Fatalf("%s kc=%d load=%v: c[%d] = %v, want %v", levelNames[l], kc, load, i, v, want[i])
					}
				}
			}
		}
	}
}

// TestDotKernelTwins compares every dot-product tile with its Go twin.
func TestDotKernelTwins(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for l, d := range dotImpls {
		if d == nil || l > hwLevel {
			continue
		}
		for mr := 1; mr <= d.mr; mr++ {
			for nr := 1; nr <= d.nr; nr++ {
				for _, k := range []int{d.vw, 3 * d.vw, 37 * d.vw} {
					lda, ldb := k+r.IntN(5), k+r.IntN(5)
					a, b := randSlice(r, mr*lda), randSlice(r, nr*ldb)
					got := newGuarded(mr*nr, func(int) float32 { return 0 })
					want := make([]float32, mr*nr)
					sdotTileGo(mr, nr, d.vw, k, a, lda, b, ldb, want)
					d.tiles[mr-1][nr-1](k, a, lda, b, ldb, got.s())
					got.check(t, "t")
					for i, v := range got.s() {
						if math.Abs(float64(v-want[i])) > 1e-5*float64(k) {
							t.Fatalf("%s %dx%d k=%d: t[%d] = %v, want %v", levelNames[l], mr, nr, k, i, v, want[i])
						}
					}
				}
			}
		}
	}
}
