package kernels

import "sync"

// parallelFor splits [0, n) into at most workers contiguous ranges of
// near-equal size (the first n%parts ranges one longer) and runs body on
// each, the last range on the calling goroutine. The split depends only on
// n and workers.
func parallelFor(n, workers int, body func(lo, hi int)) {
	if n <= 0 {
		return
	}
	parts := min(max(workers, 1), n)
	if parts == 1 {
		body(0, n)
		return
	}
	var wg sync.WaitGroup
	q, r := n/parts, n%parts
	lo := 0
	for p := 0; p < parts; p++ {
		hi := lo + q
		if p < r {
			hi++
		}
		if p == parts-1 {
			body(lo, hi)
			break
		}
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			body(lo, hi)
		}(lo, hi)
		lo = hi
	}
	wg.Wait()
}
