package runtime_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/pnasml/pnas/runtime"
)

// countTask records how often each part ran.
type countTask struct {
	hits  []atomic.Int32
	parts atomic.Int32
	sleep bool
}

func (c *countTask) Do(part, parts int) {
	if c.sleep && part%3 == 0 {
		time.Sleep(50 * time.Microsecond)
	}
	c.hits[part].Add(1)
	c.parts.Store(int32(parts))
}

func TestPool(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 5} {
		p := runtime.NewPool(n)
		if got, want := p.Threads(), max(n, 1); got != want {
			t.Errorf("NewPool(%d).Threads() = %d, want %d", n, got, want)
		}
		for r := 0; r < 300; r++ {
			parts := 1 + r%17
			c := &countTask{hits: make([]atomic.Int32, parts), sleep: r%50 == 0}
			if r%100 == 99 {
				time.Sleep(300 * time.Microsecond) // let workers park
			}
			p.Run(c, parts)
			for i := range c.hits {
				if h := c.hits[i].Load(); h != 1 {
					t.Fatalf("threads %d, run %d: part %d of %d ran %d times", n, r, i, parts, h)
				}
			}
			if got := c.parts.Load(); got != int32(parts) {
				t.Fatalf("Do saw parts = %d, want %d", got, parts)
			}
		}
		p.Run(&countTask{}, 0) // no parts: no calls
		p.Close()
		p.Close()
	}
	var nilPool *runtime.Pool
	c := &countTask{hits: make([]atomic.Int32, 3)}
	nilPool.Run(c, 3)
	if nilPool.Threads() != 1 || c.hits[2].Load() != 1 {
		t.Error("nil pool did not run every part on the caller")
	}
	p2 := runtime.NewPool(2)
	defer p2.Close()
	for _, tc := range []struct {
		units int
		work  int64
		want  int
	}{
		{1000, 0, 8}, {1000, 1 << 30, 8}, {5, 1 << 30, 5}, {1000, 1 << 20, 8}, {0, 0, 1},
	} {
		if got := p2.Parts(tc.units, tc.work); got != tc.want {
			t.Errorf("Parts(%d, %d) on 2 threads = %d, want %d", tc.units, tc.work, got, tc.want)
		}
	}
	// Below the threshold of the active kernels (amd64 AVX-512: 1Mi
	// multiply-adds; 0 elsewhere) a task is one part.
	serial := runtime.SerialThreshold()
	for _, tc := range []struct {
		units int
		work  int64
		want  int
	}{
		{1000, 1<<20 - 1, map[bool]int{true: 1, false: 8}[serial > 0]},
		{1000, 100_000, map[bool]int{true: 1, false: 3}[serial > 0]},
	} {
		if got := p2.Parts(tc.units, tc.work); got != tc.want {
			t.Errorf("Parts(%d, %d) on 2 threads = %d, want %d", tc.units, tc.work, got, tc.want)
		}
	}
	// Without the threshold, parts still hold at least minPartWork each.
	runtime.SetSerialWork(p2, 0)
	for _, tc := range []struct {
		units int
		work  int64
		want  int
	}{
		{1000, 100_000, 3}, {1000, 1000, 1}, {1000, 1 << 20, 8},
	} {
		if got := p2.Parts(tc.units, tc.work); got != tc.want {
			t.Errorf("Parts(%d, %d) on 2 threads, no serial threshold = %d, want %d", tc.units, tc.work, got, tc.want)
		}
	}
	if got := nilPool.Parts(1000, 1<<30); got != 1 {
		t.Errorf("Parts on one thread = %d, want 1", got)
	}
}

// stealTask blocks in its first part until every other part has run: the
// thread that owns part 0 is stuck, so another must take the rest of its
// range.
type stealTask struct {
	left atomic.Int32
}

func (s *stealTask) Do(part, parts int) {
	if part == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for s.left.Load() > 1 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Microsecond)
		}
	}
	s.left.Add(-1)
}

func TestPoolSteals(t *testing.T) {
	for _, n := range []int{2, 3} {
		p := runtime.NewPool(n)
		for _, parts := range []int{2, 8, 13} {
			s := &stealTask{}
			s.left.Store(int32(parts))
			start := time.Now()
			p.Run(s, parts)
			if left := s.left.Load(); left != 0 {
				t.Errorf("threads %d, parts %d: %d parts did not run", n, parts, left)
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("threads %d, parts %d: took %v: the blocked thread's parts were not stolen", n, parts, d)
			}
		}
		p.Close()
	}
}

// TestRunAllocs checks that running an operator allocates nothing.
func TestRunAllocs(t *testing.T) {
	s := runtime.ConvSpec{Cin: 16, Cout: 24, KH: 1, KW: 1, Act: runtime.ActReLU6}
	pk, _ := runtime.PackPointwise(s, make([]float32, 16*24))
	op, err := runtime.NewPointwise(s, pk, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := runtime.ConvSpec{Cin: 24, Cout: 24, Groups: 24, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1}
	dk, _ := runtime.PackDepthwise(d, make([]float32, 24*9))
	dw, err := runtime.NewDepthwise(d, dk, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := runtime.NewTensor(14, 14, 16, 0)
	mid := runtime.NewTensor(14, 14, 24, 1)
	out := runtime.NewTensor(14, 14, 24, 0)
	p := runtime.NewPool(2)
	defer p.Close()
	allocs := testing.AllocsPerRun(50, func() {
		if err := op.Run(p, mid, in, nil); err != nil {
			t.Fatal(err)
		}
		if err := dw.Run(p, out, mid, &out); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Run allocates %.1f times per call, want 0", allocs)
	}
}

// TestPoolWake runs tasks after idle gaps shorter and longer than the
// time after which threads park, with and without Wake before them (and
// Wake twice, and Wake with no task after it), and checks that every part
// runs once and that Close still stops the pool.
func TestPoolWake(t *testing.T) {
	var nilPool *runtime.Pool
	nilPool.Wake()
	for _, n := range []int{2, 3} {
		p := runtime.NewPool(n)
		gaps := []time.Duration{0, 20 * time.Microsecond, 200 * time.Microsecond, 700 * time.Microsecond, 2 * time.Millisecond}
		for r := 0; r < 60; r++ {
			time.Sleep(gaps[r%len(gaps)])
			switch r % 4 {
			case 1:
				p.Wake()
			case 2:
				p.Wake()
				p.Wake()
			case 3:
				p.Wake()
				time.Sleep(gaps[(r/4)%len(gaps)])
			}
			parts := 1 + r%13
			c := &countTask{hits: make([]atomic.Int32, parts)}
			p.Run(c, parts)
			for i := range c.hits {
				if h := c.hits[i].Load(); h != 1 {
					t.Fatalf("n=%d round %d: part %d ran %d times", n, r, i, h)
				}
			}
		}
		p.Wake()
		time.Sleep(2 * time.Millisecond)
		p.Wake()
		p.Close()
	}
}
