"""make bench-search: the searcher's steps on pnas's backend next to PyTorch 1.13
doing the same steps, interleaved (each configuration in its own process, the
processes alternating), on the same machine.

  /usr/bin/python3 scripts/bench_search.py [--passes 3] [--threads 2] [--sets avx512,avx2]
      [--baseline OTHER/searchbench] [--only "binarized,full_v2"]
  /usr/bin/python3 scripts/bench_search.py --epoch [--epoch-steps N] [--sets avx512]

Prints a Markdown table of median step times (median over passes of each
process's median), images/s, the pnas/PyTorch throughput ratio, cores used
and peak RSS; writes out/bench-search/results.json. --baseline adds the
same steps run by another searchbench binary (an earlier build), interleaved
with the others, as extra columns. --epoch instead times one warm-up epoch of
pnas search on Fashion-MNIST (55,000 training images, batch 64, the fmnist
supernet with K=7, a uniformly sampled path per step, random crop and flip)
on each side, or its first N steps with --epoch-steps, and writes
out/bench-search/epoch.json.
"""
import argparse, json, os, platform, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = [  # label, searchbench args, torch args, timed steps, warm-up steps
    ("binarized weight step, K=2", ["-what", "weight", "-k", "2"], ["--what", "weight", "--k", "2"], 6, 2),
    ("binarized weight step, K=7", ["-what", "weight", "-k", "7"], ["--what", "weight", "--k", "7"], 6, 2),
    ("full_v2 architecture step, K=7", ["-what", "arch", "-gate", "full_v2", "-k", "7"], ["--what", "full_v2", "--k", "7"], 4, 1),
    ("two architecture step, K=7", ["-what", "arch", "-gate", "two", "-k", "7"], ["--what", "two", "--k", "7"], 4, 1),
    ("all (DARTS) weight step, K=7", ["-what", "allweight", "-k", "7"], ["--what", "allweight", "--k", "7"], 2, 1),
]


def run(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"bench-search: {' '.join(cmd)} failed:\n{out.stderr}{out.stdout}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--passes", type=int, default=int(os.environ.get("PASSES", "3")))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sets", default=os.environ.get("SETS", "avx512,avx2"), help="pnas kernel sets (PNAS_KERNELS)")
    ap.add_argument("--searchbench", default=os.path.join(ROOT, "bin", "searchbench"))
    ap.add_argument("--only", default="", help="comma-separated step labels prefixes")
    ap.add_argument("--baseline", default="", help="another searchbench binary to run next to this one")
    ap.add_argument("--epoch", action="store_true", help="time a warm-up epoch on Fashion-MNIST instead of the steps")
    ap.add_argument("--epoch-steps", type=int, default=0, help="with --epoch: only the first N steps (0: all)")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="with --epoch: Fashion-MNIST directory")
    a = ap.parse_args()
    if a.epoch:
        return epoch(a)
    steps = [s for s in STEPS if not a.only or any(s[0].startswith(p) for p in a.only.split(","))]
    # Configurations: (column name, binary, kernel set).
    confs = [(ks, a.searchbench, ks) for ks in a.sets.split(",")]
    if a.baseline:
        confs += [(f"baseline {ks}", a.baseline, ks) for ks in a.sets.split(",")]
    res = {}  # (label, who) -> list of results
    seen_sets = {}
    for p in range(a.passes):
        for label, sb, tb, n, warm in steps:
            r = run(["/usr/bin/python3", "scripts/bench_search_torch.py", "--threads", str(a.threads),
                     "--steps", str(n), "--warm", str(warm + 1)] + tb)
            res.setdefault((label, "torch"), []).append(r)
            for name, binary, ks in confs:
                env = dict(os.environ, GOMAXPROCS=str(a.threads), PNAS_KERNELS=ks)
                r = run([binary, "-json", "-steps", str(n), "-warm", str(warm)] + sb, env)
                seen_sets[name] = r["kernels"] == ks
                res.setdefault((label, name), []).append(r)
            print(f"pass {p + 1}/{a.passes}: {label} done", file=sys.stderr, flush=True)
    sets = [name for name, _, _ in confs if seen_sets.get(name)]  # sets the CPU has
    med = lambda rs, k: statistics.median(r[k] for r in rs)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; {a.threads} threads; batch 64; "
          f"{a.passes} passes; {time.strftime('%Y-%m-%d', time.gmtime())}")
    hdr = "| step | " + " | ".join(f"pnas ({s})" for s in sets) + " | PyTorch 1.13 | " + \
          " | ".join(f"pnas/PyTorch throughput ({s})" for s in sets) + " |"
    print(hdr)
    print("|" + "---|" * (2 + 2 * len(sets)))
    out = {"cpu": cpu_model(), "threads": a.threads, "passes": a.passes, "rows": []}
    for label, *_ in steps:
        t = res[(label, "torch")]
        tt = med(t, "median_s")
        cells, ratios, row = [], [], {"step": label, "torch_s": tt, "torch_rss_mib": med(t, "rss_mib"), "torch_cores": med(t, "cores")}
        for s in sets:
            ps = med(res[(label, s)], "median_s")
            cells.append(f"{1e3 * ps:.0f} ms ({64 / ps:.0f} img/s)")
            ratios.append(f"{tt / ps:.2f}x")
            row[s] = {"s": ps, "rss_mib": med(res[(label, s)], "rss_mib"), "cores": med(res[(label, s)], "cores")}
        print(f"| {label} | " + " | ".join(cells) + f" | {1e3 * tt:.0f} ms ({64 / tt:.0f} img/s) | " + " | ".join(ratios) + " |")
        out["rows"].append(row)
    print()
    print("CPU-seconds per step (mean over the timed steps; less sensitive than wall time to other load on the machine, "
          "but PyTorch's OpenMP threads spin while they wait, which adds CPU time when threads > 1):")
    print()
    print("| step | " + " | ".join(f"pnas ({s})" for s in sets) + " | PyTorch 1.13 | " +
          " | ".join(f"PyTorch / pnas CPU ({s})" for s in sets) + " |")
    print("|" + "---|" * (2 + 2 * len(sets)))
    for label, *_ in steps:
        tc = med(res[(label, "torch")], "cpu_s")
        pc = [med(res[(label, s)], "cpu_s") for s in sets]
        print(f"| {label} | " + " | ".join(f"{c:.3f} s" for c in pc) + f" | {tc:.3f} s | " +
              " | ".join(f"{tc / c:.2f}x" for c in pc) + " |")
        for row in out["rows"]:
            if row["step"] == label:
                row["torch_cpu_s"] = tc
                for s, c in zip(sets, pc):
                    row[s]["cpu_s"] = c
    if a.baseline:
        print()
        print("| step | " + " | ".join(f"this build / baseline: throughput (CPU per step) ({ks})" for ks in a.sets.split(",") if ks in sets) + " |")
        print("|" + "---|" * (1 + len([ks for ks in a.sets.split(",") if ks in sets])))
        for row in out["rows"]:
            print(f"| {row['step']} | " + " | ".join(f"{row['baseline ' + ks]['s'] / row[ks]['s']:.2f}x (CPU {row['baseline ' + ks]['cpu_s'] / row[ks]['cpu_s']:.2f}x)"
                                                   for ks in a.sets.split(",") if ks in sets and "baseline " + ks in row) + " |")
    print()
    print("| step | " + " | ".join(f"pnas ({s}) peak RSS, cores" for s in sets) + " | PyTorch peak RSS, cores |")
    print("|" + "---|" * (2 + len(sets)))
    for row in out["rows"]:
        print(f"| {row['step']} | " + " | ".join(f"{row[s]['rss_mib']:.0f} MiB, {row[s]['cores']:.2f}" for s in sets) +
              f" | {row['torch_rss_mib']:.0f} MiB, {row['torch_cores']:.2f} |")
    os.makedirs(os.path.join(ROOT, "out", "bench-search"), exist_ok=True)
    with open(os.path.join(ROOT, "out", "bench-search", "results.json"), "w") as f:
        json.dump(out, f, indent=1)


def epoch(a):
    """One warm-up epoch (or its first --epoch-steps steps) on each side, PyTorch first."""
    steps = ["--epoch-steps", str(a.epoch_steps)] if a.epoch_steps > 0 else []
    loads = [os.getloadavg()[0]]
    rows = [("PyTorch 1.13", run(["/usr/bin/python3", "scripts/bench_search_torch.py", "--what", "epoch",
                                  "--threads", str(a.threads), "--data", a.data] + steps))]
    loads.append(os.getloadavg()[0])
    for ks in a.sets.split(","):
        env = dict(os.environ, GOMAXPROCS=str(a.threads), PNAS_KERNELS=ks)
        r = run([a.searchbench, "-json", "-what", "epoch", "-data", "fashion-mnist:" + a.data] + steps, env)
        if r["kernels"] == ks:
            rows.append((f"pnas ({ks})", r))
        loads.append(os.getloadavg()[0])
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; {a.threads} threads; batch 64; "
          f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; 1-minute load average "
          + ", ".join(f"{l:.1f}" for l in loads) + " (before, between and after the runs)")
    torch_s = rows[0][1]["epoch_s"] / rows[0][1]["steps"]
    torch_cpu = rows[0][1]["cores"] * torch_s
    print("| | steps | images | time | images/s | per step | CPU-seconds per step | cores | peak RSS | throughput / PyTorch | PyTorch / pnas CPU per step |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        per = r["epoch_s"] / r["steps"]
        cpu = r["cores"] * per
        print(f"| {name} | {r['steps']} of {r['train_images'] // 64} | {r['images']} | {r['epoch_s']:.1f} s | "
              f"{r['images'] / r['epoch_s']:.0f} | {1e3 * per:.0f} ms | {cpu:.3f} s | {r['cores']:.2f} | {r['rss_mib']:.0f} MiB | "
              f"{torch_s / per:.2f}x | {torch_cpu / cpu:.2f}x |")
    os.makedirs(os.path.join(ROOT, "out", "bench-search"), exist_ok=True)
    with open(os.path.join(ROOT, "out", "bench-search", "epoch.json"), "w") as f:
        json.dump({"cpu": cpu_model(), "threads": a.threads, "loads": loads, "rows": [{"who": n, **r} for n, r in rows]}, f, indent=1)


if __name__ == "__main__":
    main()
