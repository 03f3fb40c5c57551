package plots

import "testing"

func TestTraining(t *testing.T) {
	var eps []TrainEpoch
	for e := range 8 {
		f := float64(e)
		eps = append(eps, TrainEpoch{Epoch: e, Warmup: e < 2, TrainLoss: 2 - 0.2*f, HeldLoss: 2.1 - 0.18*f,
			TrainAccuracy: 0.3 + 0.07*f, HeldAccuracy: 0.28 + 0.065*f})
	}
	b, err := Training("net", eps, 6)
	checkPNG(t, b, err, "training.png")
	if _, err := Training("net", nil, -1); err == nil {
		t.Fatal("no epochs: expected an error")
	}
}
