package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

type dwCase struct{ c, n, h, w, k, s int }

func (d dwCase) String() string {
	return fmt.Sprintf("c=%d n=%d h=%d w=%d k=%d s=%d", d.c, d.n, d.h, d.w, d.k, d.s)
}

func (d dwCase) out() (ho, wo int) {
	p := d.k / 2
	return (d.h+2*p-d.k)/d.s + 1, (d.w+2*p-d.k)/d.s + 1
}

// naive computes y, dx and dw (float64) with their term magnitudes by the
// definition: y[c,n,oh,ow] = Σ w[c,i,j]·x[c,n,oh*s+i-p,ow*s+j-p].
func (d dwCase) naive(x, w, dy []float32) (y, ym, dx, dxm, dw, dwm []float64) {
	ho, wo := d.out()
	p := d.k / 2
	y, ym = make([]float64, d.c*d.n*ho*wo), make([]float64, d.c*d.n*ho*wo)
	dx, dxm = make([]float64, d.c*d.n*d.h*d.w), make([]float64, d.c*d.n*d.h*d.w)
	dw, dwm = make([]float64, d.c*d.k*d.k), make([]float64, d.c*d.k*d.k)
	for c := 0; c < d.c; c++ {
		for n := 0; n < d.n; n++ {
			pl := c*d.n + n
			for oh := 0; oh < ho; oh++ {
				for ow := 0; ow < wo; ow++ {
					o := (pl*ho+oh)*wo + ow
					for i := 0; i < d.k; i++ {
						for j := 0; j < d.k; j++ {
							ih, iw := oh*d.s+i-p, ow*d.s+j-p
							if ih < 0 || ih >= d.h || iw < 0 || iw >= d.w {
								continue
							}
							xi := (pl*d.h+ih)*d.w + iw
							wi := (c*d.k+i)*d.k + j
							t := float64(w[wi]) * float64(x[xi])
							y[o] += t
							ym[o] += math.Abs(t)
							t = float64(w[wi]) * float64(dy[o])
							dx[xi] += t
							dxm[xi] += math.Abs(t)
							t = float64(dy[o]) * float64(x[xi])
							dw[wi] += t
							dwm[wi] += math.Abs(t)
						}
					}
				}
			}
		}
	}
	return
}

func checkClose(t *testing.T, what string, got []float32, want, mag []float64) {
	t.Helper()
	for i := range want {
		if !closeTo(got[i], want[i], mag[i]) {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

// run computes the three passes with guard bands and checks them.
func (d dwCase) check(t *testing.T, r *rand.Rand, workers int) (y, dx, dw []float32) {
	t.Helper()
	ho, wo := d.out()
	x, w, dy := randSlice(r, d.c*d.n*d.h*d.w), randSlice(r, d.c*d.k*d.k), randSlice(r, d.c*d.n*ho*wo)
	wantY, ym, wantDX, dxm, wantDW, dwm := d.naive(x, w, dy)
	nan := func(int) float32 { return float32(math.NaN()) }
	gy := newGuarded(len(wantY), nan)
	gdx := newGuarded(len(wantDX), nan)
	gdw := newGuarded(len(wantDW), nan)
	DepthwiseForward(x, d.c, d.n, d.h, d.w, w, d.k, d.s, gy.s(), workers)
	DepthwiseBackwardData(dy, d.c, d.n, d.h, d.w, w, d.k, d.s, gdx.s(), workers)
	DepthwiseBackwardFilter(x, dy, d.c, d.n, d.h, d.w, d.k, d.s, gdw.s(), workers)
	gy.check(t, "y")
	gdx.check(t, "dx")
	gdw.check(t, "dw")
	checkClose(t, fmt.Sprintf("%v: y", d), gy.s(), wantY, ym)
	checkClose(t, fmt.Sprintf("%v: dx", d), gdx.s(), wantDX, dxm)
	checkClose(t, fmt.Sprintf("%v: dw", d), gdw.s(), wantDW, dwm)
	return gy.s(), gdx.s(), gdw.s()
}

func TestDepthwise(t *testing.T) {
	dims := []int{1, 2, 3, 5, 7, 8, 9, 14, 15, 16, 17, 28, 33}
	forEachSet(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for _, k := range []int{3, 5, 7} {
			for _, s := range []int{1, 2} {
				for it := 0; it < 12; it++ {
					d := dwCase{c: 1 + r.IntN(4), n: 1 + r.IntN(3), h: dims[r.IntN(len(dims))], w: dims[r.IntN(len(dims))], k: k, s: s}
					if d.h+2*(k/2) < k || d.w+2*(k/2) < k {
						continue
					}
					d.check(t, r, 1+r.IntN(3))
				}
			}
		}
		// Many images: several groups side by side, the last one partial.
		for _, d := range []dwCase{{2, 25, 5, 33, 3, 1}, {2, 23, 6, 31, 5, 2}, {1, 37, 4, 14, 7, 2}, {1, 70, 3, 7, 3, 2}} {
			d.check(t, r, 2)
		}
		// Generic sizes run the Go twins.
		for _, d := range []dwCase{{2, 2, 9, 11, 1, 1}, {2, 2, 9, 11, 4, 1}, {3, 1, 10, 13, 3, 3}, {2, 2, 8, 8, 9, 2}} {
			d.check(t, r, 2)
		}
	})
}

// TestDepthwiseDeterministic: identical bits for every workers count.
func TestDepthwiseDeterministic(t *testing.T) {
	forEachSet(t, func(t *testing.T) {
		for _, d := range []dwCase{{12, 4, 14, 14, 3, 1}, {9, 3, 15, 13, 5, 2}, {6, 2, 7, 7, 7, 1}} {
			var y0, dx0, dw0 []float32
			for _, w := range []int{1, 2, 3, 5} {
				r := rand.New(rand.NewPCG(13, 14))
				y, dx, dw := d.check(t, r, w)
				if y0 == nil {
					y0, dx0, dw0 = y, dx, dw
					continue
				}
				if !sameBits(y, y0) || !sameBits(dx, dx0) || !sameBits(dw, dw0) {
					t.Fatalf("%v: workers=%d differs from workers=1", d, w)
				}
			}
		}
	})
}

// TestDWKernelTwins compares every level's depthwise kernels with their Go
// twins on raw padded planes.
func TestDWKernelTwins(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for l, impl := range dwImpls {
		if l > levelGo && l <= hwLevel && impl == nil {
			t.Errorf("level %s has no depthwise kernels", levelNames[l])
		}
		if impl == nil || l > hwLevel {
			continue
		}
		for k := range impl.rows {
			for s := range impl.rows[k] {
				if impl.rows[k][s] == nil {
					continue
				}
				for _, nv := range []int{1, 2, 3, 5} {
					rows := 1 + r.IntN(5)
					cols := nv * impl.vw
					hoff := cols + (k-1)/s + r.IntN(3)
					ldx := s * hoff
					x := randSlice(r, ((rows-1)*s+k)*ldx)
					w := randSlice(r, k*k)
					ldy := cols + r.IntN(4)
					y := newGuarded(rows*ldy, func(int) float32 { return 7 })
					want := append([]float32(nil), y.s()...)
					dwRowsGo(k, s, want, ldy, x, ldx, hoff, w, rows, cols)
					impl.rows[k][s](y.s(), ldy, x, ldx, hoff, w, rows, nv)
					y.check(t, "y")
					for i, v := range y.s() {
						if math.Abs(float64(v-want[i])) > 1e-5*float64(k*k) {
							t.Fatalf("%s k=%d s=%d nv=%d: y[%d] = %v, want %v", levelNames[l], k, s, nv, i, v, want[i])
						}
					}
					dy := randSlice(r, rows*ldy)
					acc := newGuarded(k*k*impl.vw, func(int) float32 { return float32(r.Float64()) })
					wantAcc := append([]float32(nil), acc.s()...)
					dwFiltGo(k, s, impl.vw, wantAcc, dy, ldy, x, ldx, hoff, rows, nv)
					impl.filt[k][s](acc.s(), dy, ldy, x, ldx, hoff, rows, nv)
					acc.check(t, "acc")
					for i, v := range acc.s() {
						if math.Abs(float64(v-wantAcc[i])) > 1e-5*float64(rows*nv*4) {
							t.Fatalf("%s k=%d s=%d nv=%d: acc[%d] = %v, want %v", levelNames[l], k, s, nv, i, v, wantAcc[i])
						}
					}
				}
			}
		}
	}
}

// TestDWPackTwins compares the packing kernels with their Go twin.
func TestDWPackTwins(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for l, impl := range dwImpls {
		if impl == nil || l > hwLevel {
			continue
		}
		for s := 1; s <= 2; s++ {
			if impl.pack[s] == nil {
				t.Errorf("%s: no packing kernel for stride %d", levelNames[l], s)
				continue
			}
			for _, wd := range []int{1, 2, 3, 7, 8, 9, 14, 15, 16, 17, 28, 31, 32, 33, 47, 64, 65} {
				rows := 1 + r.IntN(4)
				lds, ldd := wd+r.IntN(3), wd+r.IntN(5)
				src := randSlice(r, (rows-1)*lds+wd)
				n := rows * ldd
				got0, got1 := newGuarded(n, func(int) float32 { return 9 }), newGuarded(n, func(int) float32 { return 9 })
				want0, want1 := append([]float32(nil), got0.s()...), append([]float32(nil), got1.s()...)
				dwPackGo(s, want0, want1, ldd, src, lds, rows, wd)
				impl.pack[s](got0.s(), got1.s(), ldd, src, lds, rows, wd)
				got0.check(t, "d0")
				got1.check(t, "d1")
				if !sameBits(got0.s(), want0) || !sameBits(got1.s(), want1) {
					t.Fatalf("%s s=%d wd=%d rows=%d: differs from dwPackGo", levelNames[l], s, wd, rows)
				}
				if s == 2 {
					// The interleave kernel undoes the split.
					ldo := wd + r.IntN(3)
					out := newGuarded((rows-1)*ldo+wd, func(int) float32 { return 9 })
					wantOut := append([]float32(nil), out.s()...)
					dwUnpackGo(wantOut, ldo, want0, want1, ldd, rows, wd)
					impl.unpack(out.s(), ldo, got0.s(), got1.s(), ldd, rows, wd)
					out.check(t, "dst")
					if !sameBits(out.s(), wantOut) {
						t.Fatalf("%s wd=%d rows=%d: interleave differs from dwUnpackGo", levelNames[l], wd, rows)
					}
					for rr := 0; rr < rows; rr++ {
						if !sameBits(out.s()[rr*ldo:rr*ldo+wd], src[rr*lds:rr*lds+wd]) {
							t.Fatalf("%s wd=%d: interleave does not invert the split", levelNames[l], wd)
						}
					}
				}
			}
		}
	}
}

// TestDepthwiseEmpty: no channels or no images is a no-op; a short slice
// panics with the argument's name.
func TestDepthwiseEmpty(t *testing.T) {
	DepthwiseForward(nil, 0, 4, 5, 5, nil, 3, 1, nil, 2)
	DepthwiseBackwardData(nil, 3, 0, 5, 5, make([]float32, 27), 3, 2, nil, 2)
	DepthwiseBackwardFilter(nil, nil, 3, 0, 5, 5, 3, 1, make([]float32, 27), 2)
	defer func() {
		if e := recover(); e == nil || !strings.Contains(fmt.Sprint(e), "len(y)") {
			t.Fatalf("short y: recovered %v", e)
		}
	}()
	DepthwiseForward(make([]float32, 25), 1, 1, 5, 5, make([]float32, 9), 3, 1, make([]float32, 24), 1)
}
