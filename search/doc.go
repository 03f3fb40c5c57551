// Package search is the ProxylessNAS engine of pnas: a supernet over a
// search space (package search/space) trained with binarized paths on
// GoMLX's pure-Go backend, architecture parameters trained with the
// gate-gradient estimators of ProxylessNAS plus a latency loss read from a
// latency table, derivation of the final network as an *ir.Model with its
// inherited weights, and checkpoints from which a search resumes
// bit-identically.
//
// The pieces, in the order a search uses them:
//
//   - [Config] holds every hyper-parameter, with the reference defaults.
//   - [LatencyTable] is the lookup the latency loss reads; [NewLatencyModel]
//     resolves every key the space needs and computes the expected latency
//     E[LAT] and its gradient; [Config.LatencyLoss] names the loss form
//     and [LossFunc] evaluates it.
//   - [New] builds a [Searcher]: weights (PyTorch initialization), SGD
//     state, architecture parameters alpha and their Adam state, RNGs.
//   - [Searcher.WeightStep] samples one path from softmax(alpha) (or
//     uniformly during warm-up), builds and runs that path's GoMLX graph and
//     updates only the weights it used; [Searcher.ArchStep] updates alpha on
//     a held-out batch with the full_v2, two or all gate modes, or with
//     REINFORCE ([GateReinforce]: sampled paths rewarded by ACC*(LAT/T)^w
//     against a moving-average baseline).
//   - [Searcher.Run] is the schedule: warm-up epochs, then search epochs
//     with one architecture step every Config.ArchEvery weight steps, then
//     train epochs that train the argmax network alone
//     ([Searcher.TrainStep]).
//   - [Searcher.Derive] keeps the argmax candidate of every layer, drops
//     Zero layers and returns the network with its trained weights.
//   - [Searcher.Save] and [Load] checkpoint and restore the whole state.
//   - [Trainer] trains one network of a space (from scratch or from a
//     model's weights, [Trainer.InitFrom]) on the searcher's graphs with
//     the recipe of [TrainConfig]: SGD with Nesterov momentum, a cosine
//     learning rate after a linear warm-up, weight decay not on BN or
//     biases, label smoothing, random crop, flip and erasing, selection of
//     the best epoch on the held-out set and BN statistics re-estimated at
//     the end ([Trainer.Finish]); its checkpoints ([Trainer.Save],
//     [LoadTrainer]) resume bit-identically. [ModelArch] reads a model's
//     space and choice back from its search metadata.
//   - [Sample] draws random architectures of a space (seeded),
//     [UniformChoice] names a uniform one, and [ArchModel] writes either as
//     a model with fresh weights that a Trainer takes: the baselines of a
//     search.
//   - [RunDir] is a search's run directory and owns everything in it but
//     the derived model: the settings (search.json), checkpoints, the
//     per-epoch log and alpha history, and the running sums that let
//     [RunDir.Run] resume mid-epoch and write exactly the lines an
//     uninterrupted run writes. [CreateRun] starts one, [OpenRun] and
//     [RunDir.Resume] continue it.
//
// Graphs run on pnas's own GoMLX backend (search/internal/pnasbe, CGO-free)
// by default: ops one at a time, each over all cores, on the SIMD kernels of
// runtime/kernels, with depthwise convolutions native. Config.Backend names
// another GoMLX backend compiled into the program: "go" (simplego) or, with
// the xla build tag, XLA/PJRT. The layers are built from package
// search/internal/gx, whose gradients are checked against finite
// differences on both pure-Go backends. The default backend owns its
// buffers (bounded by a graph's working set), so the memory of a binarized
// search depends neither on the candidates' kernel sizes nor on the number
// of steps, and the library changes no process-wide setting; on simplego a
// program may opt into per-step memory budgets
// (Searcher.ManageProcessMemory), which the pnas command does.
//
// Package search imports the standard library, GoMLX (graph, tensors and
// the simplego backend), and pnas's ir, data, search/space,
// search/internal/gx, search/internal/pnasbe (its own backend),
// internal/archnet and internal/atomicfile packages.
package search
