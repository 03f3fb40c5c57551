package ir

// OpStats is the cost of one op at batch 1.
type OpStats struct {
	Name     string
	Type     OpType
	OutShape []int
	Params   int   // weight values
	MACs     int64 // multiply-accumulates (conv2d and dense; 0 for the rest)
}

// Stats summarises a model's cost at batch 1.
type Stats struct {
	Ops    []OpStats
	Params int   // total weight values
	MACs   int64 // total multiply-accumulates
	// PeakActivationBytes is the largest number of float32 activation bytes
	// live at once when ops run in order: a tensor is live from the op that
	// produces it (the input from the start) to its last reader (the model
	// output to the end), and an op's inputs and output are live together.
	PeakActivationBytes int64
	// PeakOp is the op during which the peak occurs.
	PeakOp string
}

// Stats verifies the model and computes its statistics.
func (m *Model) Stats() (*Stats, error) {
	shapes, err := m.InferShapes()
	if err != nil {
		return nil, err
	}
	st := &Stats{}
	for i := range m.Ops {
		op := &m.Ops[i]
		os := OpStats{Name: op.Name, Type: op.Type, OutShape: shapes[op.Output]}
		for _, r := range ParamRoles(op) {
			if t := m.Param(op.Name, r); t != nil {
				os.Params += len(t.Data)
			}
		}
		switch op.Type {
		case OpConv2D:
			out := shapes[op.Output]
			cin := shapes[op.Inputs[0]][0]
			os.MACs = int64(out[0]) * int64(out[1]) * int64(out[2]) * int64(cin/op.Groups) * int64(op.Kernel[0]) * int64(op.Kernel[1])
		case OpDense:
			os.MACs = int64(op.Units) * int64(shapes[op.Inputs[0]][0])
		}
		st.Params += os.Params
		st.MACs += os.MACs
		st.Ops = append(st.Ops, os)
	}
	st.PeakActivationBytes, st.PeakOp = peakLive(m, shapes)
	return st, nil
}

// LastUse returns, for every tensor, the index of the last op that reads
// it; the model output is read "after" the last op (len(m.Ops)). Tensors
// nobody reads map to the index of the op producing them (-1 for the input).
func LastUse(m *Model) map[string]int {
	last := map[string]int{m.Input.Name: -1}
	for i, op := range m.Ops {
		last[op.Output] = i
		for _, in := range op.Inputs {
			last[in] = i
		}
	}
	last[m.Output] = len(m.Ops)
	return last
}

func peakLive(m *Model, shapes Shapes) (int64, string) {
	last := LastUse(m)
	bytesOf := func(name string) int64 { return int64(numel(shapes[name])) * 4 }
	live := map[string]bool{m.Input.Name: true}
	var cur, peak int64
	cur = bytesOf(m.Input.Name)
	peakOp := ""
	for i, op := range m.Ops {
		cur += bytesOf(op.Output)
		live[op.Output] = true
		if cur > peak {
			peak, peakOp = cur, op.Name
		}
		// free what is no longer needed after op i
		for _, name := range append(append([]string(nil), op.Inputs...), op.Output) {
			if live[name] && last[name] <= i {
				live[name] = false
				cur -= bytesOf(name)
			}
		}
	}
	return peak, peakOp
}
