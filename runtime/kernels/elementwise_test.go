package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestElementwise(t *testing.T) {
	forEachSet(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(17, 18))
		for _, n := range []int{0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100, 1023} {
			a, b := randSlice(r, n), randSlice(r, n)
			for i := range a {
				a[i] *= 8 // spans both ReLU6 bounds
			}
			nan := func(int) float32 { return float32(math.NaN()) }

			y := newGuarded(n, func(i int) float32 { return b[i] })
			Axpy(-1.5, a, y.s())
			y.check(t, "Axpy")
			for i := range a {
				if !closeTo(y.s()[i], float64(b[i])+(-1.5)*float64(a[i]), math.Abs(float64(b[i]))+1.5*math.Abs(float64(a[i]))) {
					t.Fatalf("Axpy n=%d [%d]", n, i)
				}
			}
			y = newGuarded(n, func(i int) float32 { return a[i] })
			Scale(0.25, y.s())
			y.check(t, "Scale")
			for i := range a {
				if y.s()[i] != a[i]*0.25 {
					t.Fatalf("Scale n=%d [%d]", n, i)
				}
			}
			y = newGuarded(n, nan)
			Add(y.s(), a, b)
			y.check(t, "Add")
			for i := range a {
				if y.s()[i] != a[i]+b[i] {
					t.Fatalf("Add n=%d [%d]", n, i)
				}
			}
			y = newGuarded(n, nan)
			Mul(y.s(), a, b)
			y.check(t, "Mul")
			for i := range a {
				if y.s()[i] != a[i]*b[i] {
					t.Fatalf("Mul n=%d [%d]", n, i)
				}
			}
			y = newGuarded(n, nan)
			Sub(y.s(), a, b)
			y.check(t, "Sub")
			for i := range a {
				if y.s()[i] != a[i]-b[i] {
					t.Fatalf("Sub n=%d [%d]", n, i)
				}
			}
			y = newGuarded(n, nan)
			AddConst(y.s(), a, -0.375)
			y.check(t, "AddConst")
			for i := range a {
				if y.s()[i] != a[i]+(-0.375) {
					t.Fatalf("AddConst n=%d [%d]", n, i)
				}
			}
			y = newGuarded(n, nan)
			MulConst(y.s(), a, 1.7)
			y.check(t, "MulConst")
			for i := range a {
				if y.s()[i] != a[i]*1.7 {
					t.Fatalf("MulConst n=%d [%d]", n, i)
				}
			}
			y = newGuarded(n, nan)
			ReLU6(y.s(), a)
			y.check(t, "ReLU6")
			for i := range a {
				if y.s()[i] != min(max(a[i], 0), 6) {
					t.Fatalf("ReLU6 n=%d [%d] = %v for %v", n, i, y.s()[i], a[i])
				}
			}
			y = newGuarded(n, nan)
			ReLU6Grad(y.s(), a, b)
			y.check(t, "ReLU6Grad")
			for i := range a {
				want := float32(0)
				if a[i] > 0 && a[i] < 6 {
					want = b[i]
				}
				if y.s()[i] != want {
					t.Fatalf("ReLU6Grad n=%d [%d]", n, i)
				}
			}
			s, m := 0.0, 0.0
			for _, v := range a {
				s += float64(v)
				m += math.Abs(float64(v))
			}
			if got := Sum(a); !closeTo(got, s, m) {
				t.Fatalf("Sum n=%d = %v, want %v", n, got, s)
			}
			s, m = 0, 0
			for i, v := range a {
				s += float64(v) * float64(b[i])
				m += math.Abs(float64(v) * float64(b[i]))
			}
			if got := Dot(a, b); !closeTo(got, s, m) {
				t.Fatalf("Dot n=%d = %v, want %v", n, got, s)
			}
		}
	})
}

func TestSumRows(t *testing.T) {
	forEachSet(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(19, 20))
		const rows, cols = 37, 3001
		x := randSlice(r, rows*cols)
		var first []float32
		for _, w := range []int{1, 2, 5} {
			dst := newGuarded(rows, func(int) float32 { return float32(math.NaN()) })
			SumRows(dst.s(), x, rows, cols, w)
			dst.check(t, "dst")
			for i := 0; i < rows; i++ {
				s, m := 0.0, 0.0
				for _, v := range x[i*cols : (i+1)*cols] {
					s += float64(v)
					m += math.Abs(float64(v))
				}
				if !closeTo(dst.s()[i], s, m) {
					t.Fatalf("row %d = %v, want %v", i, dst.s()[i], s)
				}
			}
			if first == nil {
				first = append([]float32(nil), dst.s()...)
			} else if !sameBits(first, dst.s()) {
				t.Fatalf("workers=%d differs", w)
			}
		}
	})
}

// TestSumTwin: the vector Sum kernel against its twin, bit for bit.
func TestSumTwin(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for l, e := range elemImpls {
		if e == nil || e.sum == nil || l > hwLevel {
			continue
		}
		for _, n := range []int{32, 64, 96, 1024} {
			x := randSlice(r, n)
			if got, want := e.sum(x), sumLanesGo(x, 8); math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("%s n=%d: %v, twin %v", levelNames[l], n, got, want)
			}
			y := randSlice(r, n)
			if got, want := e.dot(x, y), dotLanesGo(x, y, 8); math.Abs(float64(got-want)) > 1e-5*float64(n) {
				t.Fatalf("%s dot n=%d: %v, twin %v", levelNames[l], n, got, want)
			}
		}
	}
}
