package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Dataset is a labelled set of equally sized images held in memory.
type Dataset struct {
	Name    string   // where the images came from, e.g. "fashion-mnist/train"
	C, H, W int      // channels, height and width of every image
	Pixels  []uint8  // N*C*H*W bytes; image i is Pixels[i*C*H*W:(i+1)*C*H*W], CHW order
	Labels  []uint8  // N labels, each an index into Classes
	Classes []string // class names; label l means Classes[l]
}

// FashionMNISTClasses are the Fashion-MNIST class names in label order.
var FashionMNISTClasses = []string{
	"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
}

// Len returns the number of images.
func (d *Dataset) Len() int { return len(d.Labels) }

// ImageSize returns C*H*W, the number of bytes per image.
func (d *Dataset) ImageSize() int { return d.C * d.H * d.W }

// Image returns the pixels of image i (a sub-slice of d.Pixels, not a copy).
func (d *Dataset) Image(i int) []uint8 {
	n := d.ImageSize()
	return d.Pixels[i*n : (i+1)*n]
}

// Validate checks that the shape, pixel count, labels and classes agree.
func (d *Dataset) Validate() error {
	if d.C <= 0 || d.H <= 0 || d.W <= 0 {
		return fmt.Errorf("data: %s: image shape C,H,W = %d,%d,%d: expected all > 0", d.Name, d.C, d.H, d.W)
	}
	if want := len(d.Labels) * d.ImageSize(); len(d.Pixels) != want {
		return fmt.Errorf("data: %s: pixel count: expected %d (%d images of %dx%dx%d), got %d",
			d.Name, want, len(d.Labels), d.C, d.H, d.W, len(d.Pixels))
	}
	if len(d.Classes) == 0 || len(d.Classes) > 256 {
		return fmt.Errorf("data: %s: class count: expected 1..256, got %d", d.Name, len(d.Classes))
	}
	for i, l := range d.Labels {
		if int(l) >= len(d.Classes) {
			return fmt.Errorf("data: %s: label of image %d: expected 0..%d, got %d", d.Name, i, len(d.Classes)-1, l)
		}
	}
	return nil
}

// ClassCounts returns the number of images of each class.
func (d *Dataset) ClassCounts() []int {
	counts := make([]int, len(d.Classes))
	for _, l := range d.Labels {
		if int(l) < len(counts) {
			counts[l]++
		}
	}
	return counts
}

// Subset returns a new Dataset holding copies of images idx, in that order
// (an index may repeat). It panics if an index is out of range, like slice
// indexing does.
func (d *Dataset) Subset(idx []int) *Dataset {
	n := d.ImageSize()
	s := &Dataset{
		Name:    d.Name,
		C:       d.C,
		H:       d.H,
		W:       d.W,
		Pixels:  make([]uint8, len(idx)*n),
		Labels:  make([]uint8, len(idx)),
		Classes: slices.Clone(d.Classes),
	}
	for j, i := range idx {
		if i < 0 || i >= d.Len() {
			panic(fmt.Sprintf("data: Subset: index %d out of range [0,%d)", i, d.Len()))
		}
		copy(s.Pixels[j*n:(j+1)*n], d.Pixels[i*n:(i+1)*n])
		s.Labels[j] = d.Labels[i]
	}
	return s
}

// HoldOut splits d deterministically and stratified by class into held, n
// images for architecture steps or model selection, and train, all the
// others. The n images are spread as evenly as possible over the classes: in
// rounds, every class that still has unselected images receives one more
// slot, lowest label first, until n slots are given out (so a class too small
// for its share passes the rest to the others). Within each class the images
// are drawn uniformly without replacement by a PCG generator seeded with
// seed. Both parts keep d's order. The same d, n and seed always give the
// same split, on every platform and Go version.
func HoldOut(d *Dataset, n int, seed int64) (train, held *Dataset, err error) {
	if err := d.Validate(); err != nil {
		return nil, nil, err
	}
	if n < 0 || n > d.Len() {
		return nil, nil, fmt.Errorf("data: HoldOut %s: held-out count: expected 0..%d, got %d", d.Name, d.Len(), n)
	}
	byClass := make([][]int, len(d.Classes))
	for i, l := range d.Labels {
		byClass[l] = append(byClass[l], i)
	}
	quota := make([]int, len(d.Classes))
	for left := n; left > 0; {
		for c := range quota {
			if left > 0 && quota[c] < len(byClass[c]) {
				quota[c]++
				left--
			}
		}
	}
	src := rand.NewPCG(uint64(seed), 0x706e61732d646174) // "pnas-dat"
	isHeld := make([]bool, d.Len())
	for c, members := range byClass {
		// Partial Fisher-Yates: the first quota[c] entries become a uniform sample.
		for k := 0; k < quota[c]; k++ {
			j := k + int(uniform(src, uint64(len(members)-k)))
			members[k], members[j] = members[j], members[k]
			isHeld[members[k]] = true
		}
	}
	var trainIdx, heldIdx []int
	for i, h := range isHeld {
		if h {
			heldIdx = append(heldIdx, i)
		} else {
			trainIdx = append(trainIdx, i)
		}
	}
	return d.Subset(trainIdx), d.Subset(heldIdx), nil
}

// uniform returns a uniformly distributed value in [0,n) from src using
// rejection sampling on src's raw output, which (unlike the helpers of
// math/rand/v2) is fixed by the PCG-DXSM definition.
func uniform(src *rand.PCG, n uint64) uint64 {
	limit := math.MaxUint64 - math.MaxUint64%n // values >= limit would bias the result
	for {
		if v := src.Uint64(); v < limit {
			return v % n
		}
	}
}

// Normalization maps a pixel p of channel c to (p/255 - Mean[c]) / Std[c].
// Mean and Std each hold one value per channel, or a single value used for
// every channel; both empty means no normalization beyond scaling to [0,1].
type Normalization struct{ Mean, Std []float32 }

// Check reports whether n can normalize images with c channels.
func (n Normalization) Check(c int) error {
	if len(n.Mean) != len(n.Std) {
		return fmt.Errorf("data: normalization: expected as many std values as means (%d), got %d", len(n.Mean), len(n.Std))
	}
	if len(n.Mean) != 0 && len(n.Mean) != 1 && len(n.Mean) != c {
		return fmt.Errorf("data: normalization: expected 0, 1 or %d values per field for %d channels, got %d", c, c, len(n.Mean))
	}
	for i, s := range n.Std {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("data: normalization: std[%d]: expected a finite value > 0, got %v", i, s)
		}
	}
	for i, m := range n.Mean {
		if math.IsNaN(float64(m)) || math.IsInf(float64(m), 0) {
			return fmt.Errorf("data: normalization: mean[%d]: expected a finite value, got %v", i, m)
		}
	}
	return nil
}

// Augment describes training-time augmentation applied by Batch.
type Augment struct {
	// Pad is the zero padding of a random crop: the image is conceptually
	// padded with Pad black (value 0) pixels on every side and an H x W
	// window is cut at a uniformly random offset in [0,2*Pad] x [0,2*Pad].
	// Padding pixels are normalized like any other pixel of value 0.
	Pad int
	// Flip mirrors the image horizontally with probability 1/2.
	Flip bool
}

// Batch writes images idx as float32 NCHW into dst, growing it if its
// capacity is short, and returns it together with the images' labels.
// Pixels are scaled to [0,1] and then normalized with norm. When aug is
// non-nil each image is augmented independently, drawing from rng in this
// order: crop row offset, crop column offset (each only if aug.Pad > 0),
// then flip (only if aug.Flip). Batch panics on programmer errors: an index
// out of range, a norm rejected by norm.Check(d.C), or a nil rng with an
// augmentation that needs it.
func (d *Dataset) Batch(idx []int, norm Normalization, aug *Augment, rng *rand.Rand, dst []float32) ([]float32, []int) {
	if err := norm.Check(d.C); err != nil {
		panic(err.Error())
	}
	if aug != nil && (aug.Pad > 0 || aug.Flip) && rng == nil {
		panic("data: Batch: augmentation needs a non-nil *rand.Rand")
	}
	if aug != nil && aug.Pad < 0 {
		panic(fmt.Sprintf("data: Batch: augment pad: expected >= 0, got %d", aug.Pad))
	}
	size := d.ImageSize()
	need := len(idx) * size
	if cap(dst) < need {
		dst = make([]float32, need)
	}
	dst = dst[:need]
	labels := make([]int, len(idx))

	// lut[c][p] is the normalized value of pixel p in channel c.
	lut := make([][256]float32, d.C)
	for c := range lut {
		mean, std := float32(0), float32(1)
		switch len(norm.Mean) {
		case 1:
			mean, std = norm.Mean[0], norm.Std[0]
		case d.C:
			mean, std = norm.Mean[c], norm.Std[c]
		}
		for p := range 256 {
			lut[c][p] = (float32(p)/255 - mean) / std
		}
	}
	plane := d.H * d.W
	for j, i := range idx {
		if i < 0 || i >= d.Len() {
			panic(fmt.Sprintf("data: Batch: index %d out of range [0,%d)", i, d.Len()))
		}
		labels[j] = int(d.Labels[i])
		src := d.Pixels[i*size : (i+1)*size]
		out := dst[j*size : (j+1)*size]
		dy, dx, flip := 0, 0, false
		if aug != nil {
			if aug.Pad > 0 {
				dy = rng.IntN(2*aug.Pad+1) - aug.Pad
				dx = rng.IntN(2*aug.Pad+1) - aug.Pad
			}
			if aug.Flip {
				flip = rng.IntN(2) == 1
			}
		}
		if dy == 0 && dx == 0 && !flip {
			for c := 0; c < d.C; c++ {
				l := &lut[c]
				o := out[c*plane : (c+1)*plane]
				for k, p := range src[c*plane : (c+1)*plane] {
					o[k] = l[p]
				}
			}
			continue
		}
		for c := 0; c < d.C; c++ {
			l := &lut[c]
			sp := src[c*plane : (c+1)*plane]
			o := out[c*plane : (c+1)*plane]
			for y := 0; y < d.H; y++ {
				sy := y + dy
				for x := 0; x < d.W; x++ {
					sx := x
					if flip {
						sx = d.W - 1 - x
					}
					sx += dx
					v := l[0]
					if sy >= 0 && sy < d.H && sx >= 0 && sx < d.W {
						v = l[sp[sy*d.W+sx]]
					}
					o[y*d.W+x] = v
				}
			}
		}
	}
	return dst, labels
}

// Stats returns the per-channel mean and (population) standard deviation of
// the pixels scaled to [0,1], for use as the default normalization. A
// channel with zero variance, or an empty data set, gets Std 1 so that the
// result always passes Normalization.Check.
func (d *Dataset) Stats() Normalization {
	norm := Normalization{Mean: make([]float32, d.C), Std: make([]float32, d.C)}
	plane := d.H * d.W
	size := d.ImageSize()
	for c := 0; c < d.C; c++ {
		var hist [256]int64
		for i := 0; i < d.Len(); i++ {
			for _, p := range d.Pixels[i*size+c*plane : i*size+(c+1)*plane] {
				hist[p]++
			}
		}
		var n, sum float64
		for p, k := range hist {
			n += float64(k)
			sum += float64(k) * float64(p) / 255
		}
		std := 1.0
		mean := 0.0
		if n > 0 {
			mean = sum / n
			var ss float64
			for p, k := range hist {
				dv := float64(p)/255 - mean
				ss += float64(k) * dv * dv
			}
			if v := math.Sqrt(ss / n); v > 0 {
				std = v
			}
		}
		norm.Mean[c], norm.Std[c] = float32(mean), float32(std)
	}
	return norm
}
