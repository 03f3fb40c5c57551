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
	if got := p2.Parts(1000); got != 8 {
		t.Errorf("Parts(1000) on 2 threads = %d, want 8", got)
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
