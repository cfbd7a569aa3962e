#!/usr/bin/python3
"""Writes the `mmengine_param_scheduler` goldens of mmpretrain's
CosineAnnealingWeightDecay (tests/golden/sched/mmpretrain/<case>.json).

Runs the real scheduler code: mmengine/optim/scheduler/param_scheduler.py of
open-mmlab/mmengine (and lr_scheduler.py beside it, for LinearLR and
CosineAnnealingLR) and mmpretrain/engine/schedulers/weight_decay_scheduler.py of
open-mmlab/mmpretrain (Copyright (c) OpenMMLab, Apache-2.0), loaded as files with
their few imports stubbed (print_log, BaseOptimWrapper, the registries): neither
package is installed. Give the files with --param-scheduler, --lr-scheduler and
--wd-scheduler, or let the script read them from the git mirrors under /work/.mirror.

The runner is mimicked as for the other mmengine goldens (see the golden README):
`end` defaults to max_epochs / max_iters, convert_to_iter_based goes through
build_iter_from_epoch, after every iteration the by_epoch=False schedulers step and
at the end of an epoch the by_epoch=True ones, in list order. The optimizer is a
torch SGD whose groups are [lr 0.1, wd 0.05], [lr 0.05, wd 0.0] and a third group
standing for mmengine's base_param_settings (the optimizer's defaults, lr 0.1,
wd 0.05). Needs torch; run it with /usr/bin/python3.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import types

import torch

MIRRORS = {
    "param_scheduler": ("/work/.mirror/open-mmlab+mmengine/repo",
                        "mmengine/optim/scheduler/param_scheduler.py"),
    "lr_scheduler": ("/work/.mirror/open-mmlab+mmengine/repo",
                     "mmengine/optim/scheduler/lr_scheduler.py"),
    "wd_scheduler": ("/work/.mirror/open-mmlab+mmpretrain/repo",
                     "mmpretrain/engine/schedulers/weight_decay_scheduler.py"),
}

EPOCH_LENGTH = 5
MAX_EPOCHS = 10

CASES = [
    # spark's schedule: warmup, cosine lr, and weight decay annealed *up* to 0.2
    ("cosine_weight_decay_spark", [
        {"type": "LinearLR", "start_factor": 1e-4, "by_epoch": True, "begin": 0,
         "end": 2, "convert_to_iter_based": True},
        {"type": "CosineAnnealingLR", "eta_min": 0.0, "by_epoch": True, "begin": 2,
         "end": 10, "convert_to_iter_based": True},
        {"type": "CosineAnnealingWeightDecay", "eta_min": 0.2, "T_max": 10,
         "by_epoch": True, "begin": 0, "end": 10, "convert_to_iter_based": True},
    ]),
    # T_max shorter than the window: the (last_step - 1 - T_max) % (2 T_max) branch
    ("cosine_weight_decay_ratio_restart", [
        {"type": "CosineAnnealingWeightDecay", "eta_min_ratio": 0.1, "T_max": 3,
         "by_epoch": True},
    ]),
    # iteration-based, T_max from the window, eta_min 0
    ("cosine_weight_decay_iter", [
        {"type": "CosineAnnealingWeightDecay", "by_epoch": False, "begin": 3,
         "end": 40},
    ]),
]


def source(name, given):
    if given:
        return given
    repo, path = MIRRORS[name]
    text = subprocess.check_output(["git", "--git-dir=" + repo, "show", "HEAD:" + path])
    f = tempfile.NamedTemporaryFile("wb", suffix=".py", delete=False)
    f.write(text)
    f.close()
    return f.name


class Registry:
    def __init__(self):
        self.classes = {}

    def register_module(self):
        def deco(cls):
            self.classes[cls.__name__] = cls
            return cls
        return deco


def load(ps_path, lr_path, wd_path):
    mm = Registry()
    mods = {
        "mmengine": {}, "mmengine.logging": {"print_log": lambda *a, **k: None},
        "mmengine.optim": {"BaseOptimWrapper": type("BaseOptimWrapper", (), {})},
        "mmengine.registry": {"PARAM_SCHEDULERS": mm},
        "mmpretrain": {}, "mmpretrain.registry": {"PARAM_SCHEDULERS": mm},
    }
    for name, attrs in mods.items():
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m
    spec = importlib.util.spec_from_file_location("mmengine.optim.scheduler", ps_path)
    ps = importlib.util.module_from_spec(spec)
    sys.modules["mmengine.optim.scheduler"] = ps
    spec.loader.exec_module(ps)
    sys.modules["mmengine.optim.scheduler.param_scheduler"] = ps
    spec = importlib.util.spec_from_file_location(
        "mmengine.optim.scheduler.lr_scheduler", lr_path,
        submodule_search_locations=None)
    lr = importlib.util.module_from_spec(spec)
    lr.__package__ = "mmengine.optim.scheduler"
    spec.loader.exec_module(lr)
    spec = importlib.util.spec_from_file_location("wd_scheduler", wd_path)
    wd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wd)
    return mm.classes, ps.INF


def record(classes, inf, case, config):
    params = [torch.zeros(1, requires_grad=True) for _ in range(3)]
    groups = [{"params": [params[0]], "lr": 0.1, "weight_decay": 0.05},
              {"params": [params[1]], "lr": 0.05, "weight_decay": 0.0},
              {"params": [params[2]], "lr": 0.1, "weight_decay": 0.05}]
    opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9, weight_decay=0.05)
    base_lr = [g["lr"] for g in opt.param_groups]
    base_wd = [g["weight_decay"] for g in opt.param_groups]
    total = EPOCH_LENGTH * MAX_EPOCHS
    scheds, built = [], []
    for cfg in config:
        cfg = dict(cfg)
        cls = classes[cfg.pop("type")]
        by_epoch = cfg.get("by_epoch", True)
        cfg.setdefault("end", MAX_EPOCHS if by_epoch else total)
        if cfg.pop("convert_to_iter_based", False):
            s = cls.build_iter_from_epoch(opt, **cfg, epoch_length=EPOCH_LENGTH)
        else:
            s = cls(opt, **cfg)
        scheds.append(s)
        b = {"type": type(s).__name__, "by_epoch": s.by_epoch, "begin": s.begin,
             "end": s.end, "base_values": list(s.base_values),
             "param_name": s.param_name}
        for k in ("T_max", "eta_min", "eta_min_ratio", "start_factor", "end_factor"):
            if hasattr(s, k):
                b[k] = getattr(s, k)
        built.append(b)
    lr = [[float(g["lr"]) for g in opt.param_groups]]
    wd = [[float(g["weight_decay"]) for g in opt.param_groups]]
    for i in range(total):
        opt.step()
        for s in scheds:
            if not s.by_epoch:
                s.step()
        if (i + 1) % EPOCH_LENGTH == 0:
            for s in scheds:
                if s.by_epoch:
                    s.step()
        lr.append([float(g["lr"]) for g in opt.param_groups])
        wd.append([float(g["weight_decay"]) for g in opt.param_groups])
    return {
        "kind": "mmengine_param_scheduler",
        "case": case,
        "config": config,
        "optimizer": "torch.optim.SGD",
        "base_lr": base_lr,
        "base_weight_decay": base_wd,
        "groups": ["optimizer.param_groups[0] (lr=0.1, weight_decay=0.05 = defaults)",
                   "optimizer.param_groups[1] (lr=0.05, weight_decay=0.0)",
                   "base_param_settings: mmengine's phantom group (the defaults)"],
        "train_loop": "EpochBasedTrainLoop",
        "epoch_length": EPOCH_LENGTH,
        "max_epochs": MAX_EPOCHS,
        "total_iters": total,
        "built_schedulers": built,
        "notes": ["Generated with mmengine's param_scheduler.py and mmpretrain's "
                  "weight_decay_scheduler.py loaded as files (imports stubbed), "
                  "torch 1.13.",
                  "lr[k][g] / weight_decay[k][g]: value in param_groups[g]; k=0 right "
                  "after building, k=i+1 after training iteration i (hooks run)."],
        "lr": lr,
        "weight_decay": wd,
    }


def write(path, doc):
    lines = ['"%s":%s' % (k, json.dumps(v, separators=(",", ":"), allow_nan=False))
             for k, v in doc.items()]
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=here)
    ap.add_argument("--param-scheduler", help="mmengine's param_scheduler.py")
    ap.add_argument("--lr-scheduler", help="mmengine's lr_scheduler.py")
    ap.add_argument("--wd-scheduler", help="mmpretrain's weight_decay_scheduler.py")
    args = ap.parse_args()
    classes, inf = load(source("param_scheduler", args.param_scheduler),
                        source("lr_scheduler", args.lr_scheduler),
                        source("wd_scheduler", args.wd_scheduler))
    for case, config in CASES:
        path = os.path.join(args.out, case + ".json")
        write(path, record(classes, inf, case, config))
        print(path)


if __name__ == "__main__":
    main()
