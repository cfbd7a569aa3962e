#!/usr/bin/env python3
"""Times torch.optim.AdamW (foreach off and on) on the tensor layouts of `optwrap bench`
(ViT-B-like lists of 1M/10M/100M floats, 1,000 tensors of 1,000) at 1 and 2 threads,
and, given --optwrap PATH, optwrap's AdamW in the same run and the ratio; --state
f32,bf16,int8 adds optwrap's AdamW with its moments in bf16 or 8 bits (state_dtype)
beside torch's float32 figures, each with its ratio. Prints figures; asserts nothing. Without an importable torch (Debian: python3-torch) it says so and
exits 0."""
import argparse
import math
import re
import subprocess
import sys
import time


def vit_layout(target):
    """The 152 ViT-B/16 tensors, 2-D rows (and the position embedding) scaled to target
    (0: unscaled, ViT-B/16 itself), exactly as src/cli/cmd_bench.c builds them."""
    block = [(768, 0), (768, 0), (2304, 768), (2304, 0), (768, 768), (768, 0),
             (768, 0), (768, 0), (3072, 768), (3072, 0), (768, 3072), (768, 0)]
    edge = [(768, 0), (197 * 768, 0), (768, 768), (768, 0), (768, 0), (768, 0),
            (1000, 768), (1000, 0)]
    full = sum(r * (c or 1) for r, c in block) * 12 + sum(r * (c or 1) for r, c in edge)
    s = target / full if target else 1.0
    shapes = []
    for i in range(12 * 12 + 8):
        r, c = edge[i] if i < 8 else block[(i - 8) % 12]
        if c or r > 4096:
            r = max(1, int(math.floor(r * s + 0.5)))
        shapes.append((r, c) if c else (r,))
    return shapes


def time_torch(torch, shapes, threads, foreach, budget):
    torch.set_num_threads(threads)
    params = [torch.randn(s) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape)
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05, foreach=foreach)
    opt.step()
    steps, t0 = 0, time.perf_counter()
    while True:
        opt.step()
        steps += 1
        t = time.perf_counter() - t0
        if t >= budget or steps >= 100:
            return 1e3 * t / steps


def time_optwrap(path, size, threads, state):
    """optwrap's AdamW ms/step with its moments stored as state (f32, bf16, int8)."""
    out = subprocess.run([path, "bench", "--optimizers", "adamw", "--sizes", size,
                          "--threads", str(threads), "--state", state],
                         capture_output=True, text=True)
    for line in out.stdout.splitlines():
        m = re.match(r"AdamW\s+(\S+)\s+[0-9.]+\s+\S+\s+(\d+)\s+([0-9.]+)", line)
        if m and m.group(1) == state and int(m.group(2)) == threads:
            return float(m.group(3))
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--optwrap", help="path of the optwrap command, to time it too")
    ap.add_argument("--sizes", default="1,10,100,vitb,tiny")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--budget", type=float, default=1.0, help="seconds per measurement")
    ap.add_argument("--state", default="f32",
                    help="optwrap's state dtypes to time (comma list of f32, bf16, int8)")
    args = ap.parse_args()
    states = args.state.split(",")
    for st in states:
        if st not in ("f32", "bf16", "int8"):
            ap.error("--state: unknown dtype '%s' (f32, bf16, int8)" % st)
    try:
        import torch
    except ImportError:
        print("torch_adamw.py: torch is not importable with %s (Debian: apt-get install "
              "python3-torch); torch comparison skipped" % sys.executable)
        return 0
    print("torch %s, AdamW, ms/step (lower is better); torch's state is float32, "
          "optwrap's as its column says; speedup: torch's best / optwrap's"
          % torch.__version__)
    head = "%-10s %3s %12s %12s" % ("layout", "thr", "for-loop", "foreach")
    if args.optwrap:
        for st in states:
            head += " %12s %8s" % ("optwrap " + st, "speedup")
    print(head)
    for size in args.sizes.split(","):
        if size == "tiny":
            shapes, name = [(1000,)] * 1000, "1000x1000"
        elif size == "vitb":
            shapes, name = vit_layout(0), "vit-b/16"
        else:
            shapes, name = vit_layout(float(size) * 1e6), "vit-%sM" % size
        for threads in [int(t) for t in args.threads.split(",")]:
            loop = time_torch(torch, shapes, threads, False, args.budget)
            fe = time_torch(torch, shapes, threads, True, args.budget)
            row = "%-10s %3d %12.3f %12.3f" % (name, threads, loop, fe)
            for st in states if args.optwrap else []:
                ours = time_optwrap(args.optwrap, size, threads, st)
                ratio = "%7.2fx" % (min(loop, fe) / ours) if ours else "-"
                row += " %12s %8s" % ("%.3f" % ours if ours else "-", ratio)
            print(row)
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
