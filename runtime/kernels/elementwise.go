package kernels

import "fmt"

// Element-wise helpers and reductions over float32 slices. Each runs on the
// calling goroutine; callers split large tensors themselves. Vector kernels
// are used where the active kernel set has them (see elementwise_amd64.go);
// the Go loops here are their twins.

func checkSame(fn string, n int, names string, lens ...int) {
	for _, l := range lens {
		if l < n {
			panic(fmt.Sprintf("kernels: %s: %s shorter than %d", fn, names, n))
		}
	}
}

// Axpy sets y[i] += alpha*x[i] for i < len(x); y must be at least as long.
func Axpy(alpha float32, x, y []float32) {
	checkSame("Axpy", len(x), "y", len(y))
	if f := elem().axpy; f != nil {
		f(alpha, x, y[:len(x)])
		return
	}
	axpyGo(alpha, x, y[:len(x)])
}

// axpyGo is the reference of the Axpy kernels: y[i] += alpha*x[i].
func axpyGo(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

// Scale sets x[i] *= alpha.
func Scale(alpha float32, x []float32) {
	if f := elem().scale; f != nil {
		f(alpha, x)
		return
	}
	scaleGo(alpha, x)
}

// scaleGo is the reference of the Scale kernels: x[i] *= alpha.
func scaleGo(alpha float32, x []float32) {
	for i := range x {
		x[i] *= alpha
	}
}

// Add sets dst[i] = a[i] + b[i] for i < len(dst).
func Add(dst, a, b []float32) {
	checkSame("Add", len(dst), "a or b", len(a), len(b))
	if f := elem().add; f != nil {
		f(dst, a[:len(dst)], b[:len(dst)])
		return
	}
	addGo(dst, a, b)
}

// addGo is the reference of the Add kernels: dst[i] = a[i] + b[i].
func addGo(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] + b[i]
	}
}

// Mul sets dst[i] = a[i] * b[i] for i < len(dst).
func Mul(dst, a, b []float32) {
	checkSame("Mul", len(dst), "a or b", len(a), len(b))
	if f := elem().mul; f != nil {
		f(dst, a[:len(dst)], b[:len(dst)])
		return
	}
	mulGo(dst, a, b)
}

// mulGo is the reference of the Mul kernels: dst[i] = a[i] * b[i].
func mulGo(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] * b[i]
	}
}

// Sub sets dst[i] = a[i] - b[i] for i < len(dst).
func Sub(dst, a, b []float32) {
	checkSame("Sub", len(dst), "a or b", len(a), len(b))
	if f := elem().sub; f != nil {
		f(dst, a[:len(dst)], b[:len(dst)])
		return
	}
	subGo(dst, a, b)
}

// subGo is the reference of the Sub kernels: dst[i] = a[i] - b[i].
func subGo(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] - b[i]
	}
}

// AddConst sets dst[i] = x[i] + c for i < len(dst).
func AddConst(dst, x []float32, c float32) {
	checkSame("AddConst", len(dst), "x", len(x))
	if f := elem().addConst; f != nil {
		f(dst, x[:len(dst)], c)
		return
	}
	addConstGo(dst, x, c)
}

// addConstGo is the reference of the AddConst kernels: dst[i] = x[i] + c.
func addConstGo(dst, x []float32, c float32) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] = v + c
	}
}

// MulConst sets dst[i] = x[i] * c for i < len(dst).
func MulConst(dst, x []float32, c float32) {
	checkSame("MulConst", len(dst), "x", len(x))
	if f := elem().mulConst; f != nil {
		f(dst, x[:len(dst)], c)
		return
	}
	mulConstGo(dst, x, c)
}

// mulConstGo is the reference of the MulConst kernels: dst[i] = x[i] * c.
func mulConstGo(dst, x []float32, c float32) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] = v * c
	}
}

// ReLU6 sets dst[i] = min(max(x[i], 0), 6) for i < len(dst) (NaN stays NaN
// in Go and becomes 0 or 6 in the vector kernels; inputs are finite in use).
func ReLU6(dst, x []float32) {
	checkSame("ReLU6", len(dst), "x", len(x))
	if f := elem().relu6; f != nil {
		f(dst, x[:len(dst)])
		return
	}
	relu6Go(dst, x)
}

// relu6Go is the reference of the ReLU6 kernels.
func relu6Go(dst, x []float32) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] = min(max(v, 0), 6)
	}
}

// ReLU6Grad sets dx[i] = dy[i] where 0 < x[i] < 6, else 0: the gradient of
// ReLU6 at its input x.
func ReLU6Grad(dx, x, dy []float32) {
	checkSame("ReLU6Grad", len(dx), "x or dy", len(x), len(dy))
	if f := elem().relu6Grad; f != nil {
		f(dx, x[:len(dx)], dy[:len(dx)])
		return
	}
	relu6GradGo(dx, x, dy)
}

// relu6GradGo is the reference of the ReLU6Grad kernels.
func relu6GradGo(dx, x, dy []float32) {
	x, dy = x[:len(dx)], dy[:len(dx)]
	for i, v := range x {
		if v > 0 && v < 6 {
			dx[i] = dy[i]
		} else {
			dx[i] = 0
		}
	}
}

// Sum returns the sum of x. The vector kernels sum lane-wise (lane i takes
// the elements i, i+vw, ...) and then across lanes in a fixed order.
func Sum(x []float32) float32 {
	if f := elem().sum; f != nil {
		return f(x)
	}
	return sumGo(x)
}

// sumGo is the reference of the Sum kernels, with lanes of width 1.
func sumGo(x []float32) float32 {
	s := float32(0)
	for _, v := range x {
		s += v
	}
	return s
}

// sumLanesGo is the reference of the Sum kernels of vector width vw over
// n = len(x) floats, n a multiple of 4*vw: four accumulators of vw lanes
// take the vectors in turn, then fold pairwise: (a0+a1)+(a2+a3), then the
// upper half of the lanes onto the lower half until one lane is left.
func sumLanesGo(x []float32, vw int) float32 {
	a := make([]float32, 4*vw)
	for i, v := range x {
		a[i%(4*vw)] += v
	}
	for l := 0; l < vw; l++ {
		a[l] = (a[l] + a[vw+l]) + (a[2*vw+l] + a[3*vw+l])
	}
	for half := vw / 2; half >= 1; half /= 2 {
		for l := 0; l < half; l++ {
			a[l] += a[half+l]
		}
	}
	return a[0]
}

// Dot returns the sum of x[i]*y[i] for i < len(x); y must be at least as
// long. The vector kernels sum lane-wise as Sum does.
func Dot(x, y []float32) float32 {
	checkSame("Dot", len(x), "y", len(y))
	if f := elem().dot; f != nil {
		return f(x, y[:len(x)])
	}
	return dotGo(x, y)
}

// dotGo is the Go path of Dot: one sequential sum.
func dotGo(x, y []float32) float32 {
	y = y[:len(x)]
	s := float32(0)
	for i, v := range x {
		s += v * y[i]
	}
	return s
}

// dotLanesGo is the reference of the Dot kernels, as sumLanesGo over the
// products x[i]*y[i].
func dotLanesGo(x, y []float32, vw int) float32 {
	a := make([]float32, 4*vw)
	y = y[:len(x)]
	for i, v := range x {
		a[i%(4*vw)] += v * y[i]
	}
	for l := 0; l < vw; l++ {
		a[l] = (a[l] + a[vw+l]) + (a[2*vw+l] + a[3*vw+l])
	}
	for half := vw / 2; half >= 1; half /= 2 {
		for l := 0; l < half; l++ {
			a[l] += a[half+l]
		}
	}
	return a[0]
}

// SumRows sets dst[i] to the sum of row i of the rows×cols matrix x (row
// stride cols), e.g. per-channel sums in the [C, N·H·W] layout; rows are
// split between at most workers goroutines.
func SumRows(dst, x []float32, rows, cols, workers int) {
	checkSame("SumRows", rows, "dst", len(dst))
	checkSame("SumRows", rows*cols, "x", len(x))
	parallelFor(rows, min(max(workers, 1), max(1, rows*cols>>16)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			dst[i] = Sum(x[i*cols : (i+1)*cols])
		}
	})
}

// elemKernels is one level's element-wise kernels; nil entries use Go.
type elemKernels struct {
	axpy      func(alpha float32, x, y []float32)
	scale     func(alpha float32, x []float32)
	add, mul  func(dst, a, b []float32)
	sub       func(dst, a, b []float32)
	addConst  func(dst, x []float32, c float32)
	mulConst  func(dst, x []float32, c float32)
	relu6     func(dst, x []float32)
	relu6Grad func(dx, x, dy []float32)
	sum       func(x []float32) float32
	dot       func(x, y []float32) float32
}

var elemImpls [numLevels]*elemKernels

var noElem elemKernels

// elem returns the element-wise kernels of the active level.
func elem() *elemKernels {
	for l := level(); l > 0; l-- {
		if elemImpls[l] != nil {
			return elemImpls[l]
		}
	}
	return &noElem
}
