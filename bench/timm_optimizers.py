#!/usr/bin/env python3
"""Times timm's optimizer classes (Lamb, Adafactor, Lion, Adan, Muon) on ViT-B/16's 152
tensors at 1 and 2 threads, and, given --optwrap PATH, optwrap's same optimizers in the
same run and the ratio. timm is read from a source checkout (--timm-src, the folder that
holds timm/optim; `git clone https://github.com/huggingface/pytorch-image-models`): only
the optimizer modules are imported, so timm's other dependencies are not needed. Prints
figures; asserts nothing. Without torch or the checkout it says so and exits 0."""
import argparse
import importlib
import os
import re
import subprocess
import sys
import time
import types

from torch_adamw import vit_layout

# name in `optwrap bench --optimizers`, timm module, class, constructor kwargs
OPTIMIZERS = [
    ("lamb", "lamb", "Lamb", dict(lr=1e-3, weight_decay=0.01)),
    ("adafactor", "adafactor", "Adafactor", dict(lr=1e-3)),
    ("lion", "lion", "Lion", dict(lr=1e-4, weight_decay=0.01)),
    ("adan", "adan", "Adan", dict(lr=1e-3, weight_decay=0.02)),
    ("muon", "muon", "Muon", dict(lr=0.02)),
]


def load_timm_optim(src):
    """timm/optim as a package without running its __init__ (which imports all of timm)."""
    path = os.path.join(src, "timm", "optim")
    if not os.path.isdir(path):
        return None
    pkg = types.ModuleType("timm_optim_src")
    pkg.__path__ = [path]
    sys.modules["timm_optim_src"] = pkg
    return pkg


def time_timm(torch, cls, kwargs, shapes, threads, budget):
    torch.set_num_threads(threads)
    params = [torch.randn(s) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape)
    opt = cls(params, **kwargs)
    opt.step()
    steps, t0 = 0, time.perf_counter()
    while True:
        opt.step()
        steps += 1
        t = time.perf_counter() - t0
        if t >= budget or steps >= 50:
            return 1e3 * t / steps


def time_optwrap(path, key, threads):
    out = subprocess.run([path, "bench", "--optimizers", key, "--sizes", "vitb",
                          "--threads", str(threads)], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        m = re.match(r"\S+\s+f32\s+[0-9.]+\s+vit-b/16\s+(\d+)\s+([0-9.]+)", line)
        if m and int(m.group(1)) == threads:
            return float(m.group(2))
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--timm-src", default=os.environ.get("TIMM_SRC", ""),
                    help="a pytorch-image-models checkout (or $TIMM_SRC)")
    ap.add_argument("--optwrap", help="path of the optwrap command, to time it too")
    ap.add_argument("--optimizers", default=",".join(o[0] for o in OPTIMIZERS))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--budget", type=float, default=2.0, help="seconds per measurement")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("timm_optimizers.py: torch is not importable; comparison skipped")
        return 0
    if not args.timm_src or not load_timm_optim(args.timm_src):
        print("timm_optimizers.py: no timm checkout (--timm-src); comparison skipped")
        return 0
    shapes = vit_layout(0)
    print("torch %s, timm from %s, ViT-B/16, ms/step (lower is better)"
          % (torch.__version__, args.timm_src))
    print("%-10s %3s %12s %12s %8s" % ("optimizer", "thr", "timm", "optwrap", "speedup"))
    wanted = args.optimizers.split(",")
    for key, module, name, kwargs in OPTIMIZERS:
        if key not in wanted:
            continue
        try:
            cls = getattr(importlib.import_module("timm_optim_src." + module), name)
        except Exception as e:  # an older checkout, or a torch it does not run on
            print("%-10s timm class not importable here: %s" % (key, e))
            continue
        for threads in [int(t) for t in args.threads.split(",")]:
            ref = time_timm(torch, cls, kwargs, shapes, threads, args.budget)
            ours = time_optwrap(args.optwrap, key, threads) if args.optwrap else None
            ratio = "%7.1fx" % (ref / ours) if ours else "-"
            print("%-10s %3d %12.3f %12s %8s" % (key, threads, ref,
                                                 "%.3f" % ours if ours else "-", ratio))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
