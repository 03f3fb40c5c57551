"""PyTorch side of `make bench-search`: the fmnist supernet of `pnas search`
(MBConv candidates k3/5/7 x e3/6 and Zero, channels-first, batch 64, synthetic
images) stepped as pnas steps it, one configuration per process.

  /usr/bin/python3 scripts/bench_search_torch.py --what weight --k 7 --threads 2
  /usr/bin/python3 scripts/bench_search_torch.py --what epoch --threads 2 [--epoch-steps N]

Prints one JSON line: median step time, CPU-seconds per step, cores used, peak RSS. Run it with
Debian's interpreter (python3-torch 1.13).
"""
import argparse, gzip, json, math, resource, statistics, struct, time, os
import torch, torch.nn as nn, torch.nn.functional as F

CANDS = ["3e3", "3e6", "5e3", "5e6", "7e3", "7e6", "zero"]
STAGES = [(24, 2, 3), (40, 2, 3), (80, 1, 3), (96, 2, 3)]  # (out channels, first stride, layers)


def conv_bn(cin, cout, k, s, groups=1, act=True):
    m = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout, eps=1e-3)]
    return m + [nn.ReLU6(inplace=True)] if act else m


class MBConv(nn.Module):
    def __init__(self, cin, cout, k, e, s):
        super().__init__()
        mid = cin * e
        m = conv_bn(cin, mid, 1, 1) if e != 1 else []
        self.op = nn.Sequential(*m, *conv_bn(mid, mid, k, s, groups=mid), *conv_bn(mid, cout, 1, 1, act=False))

    def forward(self, x):
        return self.op(x)


class Gate(torch.autograd.Function):
    """Runs the active candidate; its backward adds dL/dg_j = <o_j, dL/dy> for the candidates in `grads`
    (recomputed from the layer input), as ProxylessNAS's full_v2 and two modes do."""
    @staticmethod
    def forward(ctx, x, gates, layer):
        ctx.layer = layer
        xd = x.detach().requires_grad_(x.requires_grad)
        with torch.enable_grad():
            out = layer.ops[layer.active](xd)
        ctx.save_for_backward(xd, out)
        return out.data

    @staticmethod
    def backward(ctx, gout):
        xd, out = ctx.saved_tensors
        gx = torch.autograd.grad(out, xd, gout)[0]
        layer, bg = ctx.layer, torch.zeros_like(ctx.layer.gates)
        with torch.no_grad():
            for j in layer.grads:
                if layer.names[j] != "zero":
                    o = out if j == layer.active else layer.ops[j](xd)
                    bg[j] = torch.sum(o * gout)
        return gx, bg, None


class Mixed(nn.Module):
    def __init__(self, cin, cout, s, names):
        super().__init__()
        self.names = names
        self.ops = nn.ModuleList([nn.Identity() if n == "zero" else MBConv(cin, cout, int(n[0]), int(n[2]), s) for n in names])
        self.residual = s == 1 and cin == cout
        self.alpha = nn.Parameter(torch.randn(len(names)) * 1e-3)
        self.gates = torch.zeros(len(names), requires_grad=True)
        self.active, self.grads, self.mode = 0, [], "binary"

    def sample(self):
        p = F.softmax(self.alpha.detach(), 0)
        if self.mode == "two":
            pair = torch.multinomial(p, 2).tolist() if len(self.names) > 1 else [0]
            self.active, self.grads = pair[0], pair
        else:
            self.active = int(torch.multinomial(p, 1))
            self.grads = list(range(len(self.names)))

    def forward(self, x):
        if self.mode == "all":
            p, out = F.softmax(self.alpha, 0), None
            for j, op in enumerate(self.ops):
                if self.names[j] != "zero":
                    o = p[j] * op(x)
                    out = o if out is None else out + o
            out = 0 if out is None else out
        elif self.names[self.active] == "zero":
            return x
        elif self.mode == "binary":
            out = self.ops[self.active](x)
        else:
            out = Gate.apply(x, self.gates, self)
        return x + out if self.residual else out


class Net(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.stem = nn.Sequential(*conv_bn(1, 16, 3, 1))
        self.first = MBConv(16, 16, 3, 1, 1)
        layers, cin = [], 16
        for cout, s, n in STAGES:
            for i in range(n):
                st = s if i == 0 else 1
                names = [c for c in CANDS[:k] if c != "zero" or (st == 1 and cin == cout)]
                layers.append(Mixed(cin, cout, st, names))
                cin = cout
        self.layers = nn.ModuleList(layers)
        self.head = nn.Sequential(*conv_bn(cin, 256, 1, 1))
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        x = self.first(self.stem(x))
        for l in self.layers:
            x = l(x)
        return self.fc(self.head(x).mean((2, 3)))


def load_idx(path):
    """An IDX file (gzip-compressed) as a uint8 tensor."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def epoch(a):
    """A warm-up epoch of pnas search: the training split minus 5,000 held-out images, normalized with the
    training mean and std, random crop (2-pixel zero padding) and horizontal flip per image, a uniformly
    sampled path per step, SGD with Nesterov momentum and a per-step cosine from 0.05, label smoothing 0.1.
    Batches are assembled and augmented inside the timed loop, as pnas does."""
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    imgs = load_idx(os.path.join(a.data, "train-images-idx3-ubyte.gz"))
    labels = load_idx(os.path.join(a.data, "train-labels-idx1-ubyte.gz")).long()
    perm = torch.randperm(len(imgs))
    train = perm[min(len(imgs) // 10, 5000):]
    x_all, y_all = imgs[train], labels[train]
    xf = x_all.float() / 255
    mean, std = xf.mean().item(), xf.std().item()
    net = Net(7).train()
    for l in net.layers:
        l.mode = "binary"
    weights = [p for n, p in net.named_parameters() if not n.endswith("alpha")]
    sgd = torch.optim.SGD(weights, lr=0.05, momentum=0.9, nesterov=True, weight_decay=4e-5)
    smooth = nn.CrossEntropyLoss(label_smoothing=0.1)
    iters = len(train) // a.batch
    steps = iters if a.epoch_steps <= 0 else min(iters, a.epoch_steps)
    order = torch.randperm(len(train))
    pad = 2
    c0, w0 = time.process_time(), time.perf_counter()
    for it in range(steps):
        idx = order[it * a.batch:(it + 1) * a.batch]
        xb = (x_all[idx].float().unsqueeze(1) / 255 - mean) / std
        xp = F.pad(xb, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (a.batch,)).tolist()
        dx = torch.randint(0, 2 * pad + 1, (a.batch,)).tolist()
        xb = torch.stack([xp[i, :, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28] for i in range(a.batch)])
        flip = torch.rand(a.batch) < 0.5
        xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(3), xb)
        for l in net.layers:
            l.active = int(torch.randint(0, len(l.names), ()))
        for g in sgd.param_groups:
            g["lr"] = 0.5 * 0.05 * (1 + math.cos(math.pi * it / iters))
        sgd.zero_grad(set_to_none=True)
        loss = smooth(net(xb), y_all[idx])
        loss.backward()
        sgd.step()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"epoch_s": wall, "steps": steps, "images": steps * a.batch, "train_images": len(train),
                      "cores": cpu / wall, "rss_mib": rss, "last_loss": loss.item(), "torch": torch.__version__}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--what", default="weight", choices=["weight", "full_v2", "two", "allweight", "epoch"])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="--what epoch: directory of the Fashion-MNIST IDX files")
    ap.add_argument("--epoch-steps", type=int, default=0, help="--what epoch: stop after this many steps (0: the whole epoch)")
    ap.add_argument("--k", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warm", type=int, default=2)
    a = ap.parse_args()
    if a.what == "epoch":
        return epoch(a)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = Net(a.k).train()
    weights = [p for n, p in net.named_parameters() if not n.endswith("alpha")]
    alphas = [l.alpha for l in net.layers]
    sgd = torch.optim.SGD(weights, lr=0.025, momentum=0.9, nesterov=True, weight_decay=4e-5)
    adam = torch.optim.Adam(alphas, lr=1e-3, betas=(0, 0.999))
    smooth, plain = nn.CrossEntropyLoss(label_smoothing=0.1), nn.CrossEntropyLoss()
    x, y = torch.randn(a.batch, 1, 28, 28), torch.randint(0, 10, (a.batch,))
    mode = {"weight": "binary", "allweight": "all"}.get(a.what, a.what)
    for l in net.layers:
        l.mode = mode

    def step():
        for l in net.layers:
            l.sample()
        if a.what in ("weight", "allweight"):
            sgd.zero_grad(set_to_none=True)
            smooth(net(x), y).backward()
            sgd.step()
            return
        net.zero_grad(set_to_none=True)
        for l in net.layers:
            l.gates.grad = None
        plain(net(x), y).backward()
        for l in net.layers:  # dL/dalpha_i = sum_j dL/dg_j p_j (delta_ij - p_i)
            g, p = l.gates.grad, F.softmax(l.alpha.detach(), 0)
            if g is not None:
                gp = g * p
                l.alpha.grad = gp - p * gp.sum()
        adam.step()

    for _ in range(a.warm):
        step()
    ts, c0 = [], time.process_time()
    w0 = time.perf_counter()
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"median_s": statistics.median(ts), "cpu_s": cpu / a.steps, "cores": cpu / wall, "rss_mib": rss,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
