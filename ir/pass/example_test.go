package pass_test

import (
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/pass"
)

// Apply folds a stem's batchnorm and activation into its convolution; the
// dump after fold-bn shows the intermediate step.
func ExampleApply() {
	b := ir.NewBuilder("stem", 1, 8, 8, rand.New(rand.NewPCG(1, 2)))
	x := b.ConvBNAct("stem", b.Input(), 4, 3, 2, 1, ir.ActReLU6)
	x = b.GlobalPool("pool", x)
	x = b.Flatten("flat", x)
	m, err := b.Model(b.Dense("fc", x, 2, nil, nil))
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := pass.Apply(m, pass.Options{Check: true, Dump: []string{"fold-bn"}, DumpTo: os.Stdout})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("# result")
	pass.Fprint(os.Stdout, out)
	// Output:
	// # IR after pass fold-bn
	// model "stem": input input [1 8 8] NCHW, output fc
	//   stem.conv = conv2d(input) out_channels=4 kernel=[3 3] stride=[2 2] pads=[1 1 1 1] groups=1 bias
	//   stem.act = activation(stem.conv) activation=relu6
	//   pool = global_avg_pool(stem.act)
	//   flat = flatten(pool)
	//   fc = dense(flat) units=2 bias
	//   weight fc.bias [2]
	//   weight fc.weight [2 4]
	//   weight stem.conv.bias [4]
	//   weight stem.conv.weight [4 1 3 3]
	// # result
	// model "stem": input input [1 8 8] NCHW, output fc
	//   stem.conv = conv2d(input) out_channels=4 kernel=[3 3] stride=[2 2] pads=[1 1 1 1] groups=1 bias activation=relu6
	//   pool = global_avg_pool(stem.conv)
	//   flat = flatten(pool)
	//   fc = dense(flat) units=2 bias
	//   weight fc.bias [2]
	//   weight fc.weight [2 4]
	//   weight stem.conv.bias [4]
	//   weight stem.conv.weight [4 1 3 3]
}
