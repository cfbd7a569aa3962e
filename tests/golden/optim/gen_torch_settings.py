#!/usr/bin/python3
"""Writes the torch.optim and composer `optimizer_trajectory` goldens, one file per
optimizer and setting (tests/golden/optim/{torch,composer}/<Class>__<setting>.json).

Needs torch 1.13 (the version the goldens were made with) and nothing else but the
standard library: run it with /usr/bin/python3. composer is not installed; pass
--composer-src DIR, a folder holding composer/optim/decoupled_weight_decay.py taken
from mosaicml/composer, to also write the composer files (composer.utils.dist is
stubbed: only the metric reduction uses it, never step()).

The conventions are those of the existing files: seed 20240611, shapes
[[7],[4,5],[3,2,3]], init then 12 steps of grads drawn with randn from one
torch.Generator, group A (tensor 0) lr = lr/2 and weight_decay 0.0, group B
(tensors 1, 2) weight_decay 0.1 (composer 1e-2). Floats are written with repr and
there is one top-level key per line. The `base` files it writes are byte-identical
to the ones the golden set came with.

usage: gen_torch_settings.py [--out DIR] [--composer-src DIR] [--only NAME...]
"""

import argparse
import importlib.util
import json
import os
import sys
import types

import torch

SEED = 20240611
SHAPES = [[7], [4, 5], [3, 2, 3]]
STEPS = 12
TORCH_NOTE = "torch 1.13 single-tensor (foreach=None -> False on CPU) code path."
FOREACH_NOTE = "torch 1.13 multi-tensor (foreach=True) code path."
COMPOSER_NOTES = [
    "Loaded from composer/optim/decoupled_weight_decay.py alone (composer.utils.dist "
    "stubbed; it is only used by metric reduction, not by step).",
    "weight decay: p *= 1 - (lr/initial_lr)*wd, NOT scaled by lr; initial_lr is "
    "written into every param group at construction.",
]
LR_CHANGE_NOTE = (
    "lr_per_step[step][group] is written into each param group's lr before that "
    "step (an external scheduler); initial_lr keeps its construction value."
)


def lr_change(lr, step):
    """The lr of the *_lr_change settings: constant for 3 steps, then decaying, with
    a warm restart at step 8, so that lr/initial_lr is both below and above 1."""
    factors = [1.0, 1.0, 1.0, 0.8, 0.6, 0.45, 0.3, 0.2, 1.25, 1.1, 0.7, 0.35]
    return lr * factors[step]


# (class name, setting, lr of group B, constructor kwargs besides lr, options)
# options: wd_a: weight decay of group A (default 0.0); lr_change: True.
TORCH_SETTINGS = [
    ("SGD", "base", 0.1, {}, {}),
    ("SGD", "momentum", 0.1, {"momentum": 0.9}, {}),
    ("SGD", "nesterov", 0.1, {"momentum": 0.9, "nesterov": True}, {}),
    ("SGD", "dampening", 0.1, {"momentum": 0.9, "dampening": 0.5}, {}),
    ("SGD", "negative_dampening", 0.1, {"momentum": 0.5, "dampening": -0.5}, {}),
    ("SGD", "maximize", 0.1, {"maximize": True}, {}),
    ("SGD", "momentum_maximize", 0.1, {"momentum": 0.9, "maximize": True}, {}),
    ("SGD", "nesterov_maximize", 0.1,
     {"momentum": 0.9, "nesterov": True, "maximize": True}, {}),
    ("SGD", "weight_decay_both", 0.1, {"momentum": 0.9, "weight_decay": 0.05},
     {"wd_a": 0.05}),
    ("SGD", "momentum_lr_change", 0.1, {"momentum": 0.9}, {"lr_change": True}),
    ("Adam", "base", 0.01, {}, {}),
    ("Adam", "amsgrad", 0.01, {"amsgrad": True}, {}),
    ("Adam", "maximize", 0.01, {"maximize": True}, {}),
    ("Adam", "amsgrad_maximize", 0.01, {"amsgrad": True, "maximize": True}, {}),
    ("Adam", "betas_eps", 0.01, {"betas": (0.8, 0.95), "eps": 1e-3}, {}),
    ("Adam", "beta1_zero", 0.01, {"betas": (0.0, 0.99)}, {}),
    ("Adam", "lr_change", 0.01, {"amsgrad": True}, {"lr_change": True}),
    ("AdamW", "base", 0.01, {}, {}),
    ("AdamW", "amsgrad", 0.01, {"amsgrad": True}, {}),
    ("AdamW", "maximize", 0.01, {"maximize": True}, {}),
    ("AdamW", "amsgrad_maximize", 0.01, {"amsgrad": True, "maximize": True}, {}),
    ("AdamW", "betas_eps", 0.01, {"betas": (0.8, 0.95), "eps": 1e-3}, {}),
    ("AdamW", "weight_decay_both", 0.01, {"weight_decay": 0.05}, {"wd_a": 0.05}),
    ("NAdam", "base", 0.01, {}, {}),
    ("NAdam", "momentum_decay", 0.01, {"momentum_decay": 0.1}, {}),
    ("NAdam", "betas_eps", 0.01,
     {"betas": (0.8, 0.95), "eps": 1e-3, "momentum_decay": 0.01}, {}),
    ("RAdam", "base", 0.01, {}, {}),
    ("RAdam", "betas_eps", 0.01, {"betas": (0.8, 0.5), "eps": 1e-3}, {}),
    ("RAdam", "rectified_early", 0.01, {"betas": (0.9, 0.9), "eps": 0.1}, {}),
    ("Adamax", "base", 0.01, {}, {}),
    ("Adamax", "maximize", 0.01, {"maximize": True}, {}),
    ("Adamax", "betas_eps", 0.01, {"betas": (0.8, 0.9), "eps": 0.5}, {}),
    ("Adagrad", "base", 0.1, {}, {}),
    ("Adagrad", "lr_decay", 0.1, {"lr_decay": 0.1}, {}),
    ("Adagrad", "initial_accumulator_value", 0.1,
     {"initial_accumulator_value": 0.5}, {}),
    ("Adagrad", "eps", 0.1, {"eps": 0.1}, {}),
    ("Adagrad", "maximize", 0.1, {"maximize": True}, {}),
    ("Adagrad", "all", 0.1,
     {"lr_decay": 0.05, "initial_accumulator_value": 0.25, "eps": 1e-3,
      "maximize": True}, {}),
    ("Adadelta", "base", 1.0, {}, {}),
    ("Adadelta", "rho", 1.0, {"rho": 0.5}, {}),
    ("Adadelta", "lr", 0.3, {}, {}),
    ("Adadelta", "eps", 1.0, {"eps": 1e-2}, {}),
    ("Adadelta", "maximize", 1.0, {"maximize": True}, {}),
    ("RMSprop", "base", 0.01, {}, {}),
    ("RMSprop", "centered", 0.01, {"centered": True}, {}),
    ("RMSprop", "momentum", 0.01, {"momentum": 0.9}, {}),
    ("RMSprop", "centered_momentum", 0.01, {"centered": True, "momentum": 0.9}, {}),
    ("RMSprop", "maximize", 0.01, {"maximize": True}, {}),
    ("RMSprop", "centered_momentum_maximize", 0.01,
     {"centered": True, "momentum": 0.9, "maximize": True}, {}),
    ("RMSprop", "alpha_eps", 0.01, {"alpha": 0.9, "eps": 1e-3}, {}),
    # foreach=True runs the _multi_tensor_* functions: NAdam, RAdam and Adagrad (with
    # lr_decay) round differently there; the others must come out the same
    ("SGD", "foreach_nesterov_maximize", 0.1,
     {"momentum": 0.9, "nesterov": True, "maximize": True, "foreach": True}, {}),
    ("SGD", "foreach_dampening", 0.1,
     {"momentum": 0.9, "dampening": 0.5, "foreach": True}, {}),
    ("Adam", "foreach_amsgrad_maximize", 0.01,
     {"amsgrad": True, "maximize": True, "foreach": True}, {}),
    ("AdamW", "foreach_amsgrad", 0.01, {"amsgrad": True, "foreach": True}, {}),
    ("NAdam", "foreach", 0.01, {"foreach": True}, {}),
    ("NAdam", "foreach_momentum_decay", 0.01,
     {"momentum_decay": 0.1, "foreach": True}, {}),
    ("RAdam", "foreach", 0.01, {"foreach": True}, {}),
    ("RAdam", "foreach_betas_eps", 0.01,
     {"betas": (0.8, 0.5), "eps": 1e-3, "foreach": True}, {}),
    ("RAdam", "foreach_rectified_early", 0.01,
     {"betas": (0.9, 0.9), "eps": 0.1, "foreach": True}, {}),
    ("Adamax", "foreach_maximize", 0.01, {"maximize": True, "foreach": True}, {}),
    ("Adagrad", "foreach_lr_decay", 0.1, {"lr_decay": 0.1, "foreach": True}, {}),
    ("Adagrad", "foreach_all", 0.1,
     {"lr_decay": 0.05, "initial_accumulator_value": 0.25, "eps": 1e-3,
      "maximize": True, "foreach": True}, {}),
    ("Adadelta", "foreach_maximize", 1.0,
     {"rho": 0.5, "maximize": True, "foreach": True}, {}),
    ("RMSprop", "foreach_centered_momentum", 0.01,
     {"centered": True, "momentum": 0.9, "foreach": True}, {}),
]

COMPOSER_SETTINGS = [
    ("DecoupledSGDW", "base", 0.1, {}, {}),
    ("DecoupledSGDW", "momentum", 0.1, {"momentum": 0.9}, {}),
    ("DecoupledSGDW", "nesterov", 0.1, {"momentum": 0.9, "nesterov": True}, {}),
    ("DecoupledSGDW", "dampening", 0.1, {"momentum": 0.9, "dampening": 0.5}, {}),
    ("DecoupledSGDW", "lr_change", 0.1, {}, {"lr_change": True}),
    ("DecoupledSGDW", "momentum_lr_change", 0.1, {"momentum": 0.9},
     {"lr_change": True}),
    ("DecoupledSGDW", "nesterov_lr_change", 0.1, {"momentum": 0.9, "nesterov": True},
     {"lr_change": True}),
    ("DecoupledAdamW", "base", 0.01, {}, {}),
    ("DecoupledAdamW", "amsgrad", 0.01, {"amsgrad": True}, {}),
    ("DecoupledAdamW", "betas_eps", 0.01, {"betas": (0.8, 0.99), "eps": 1e-3}, {}),
    ("DecoupledAdamW", "lr_change", 0.01, {}, {"lr_change": True}),
    ("DecoupledAdamW", "amsgrad_lr_change", 0.01, {"amsgrad": True},
     {"lr_change": True}),
]


# ---- JSON output ---------------------------------------------------------------------

def plain(x):
    """A JSON-ready copy: tuples become lists, tensors {dtype, shape, data}."""
    if isinstance(x, torch.Tensor):
        return {"dtype": str(x.dtype).replace("torch.", ""), "shape": list(x.shape),
                "data": [float(v) for v in x.detach().reshape(-1).tolist()]}
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    return x


def flat(tensors):
    """init, grads and params: each tensor as a flat (row-major) list of floats."""
    return [[float(v) for v in t.reshape(-1).tolist()] for t in tensors]


def dumps(x):
    # json writes floats with float.__repr__, the exact decimal of a float32 value
    return json.dumps(plain(x), separators=(",", ":"), allow_nan=False)


def write(path, doc):
    lines = ['"%s":%s' % (k, dumps(v)) for k, v in doc.items()]
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


# ---- recording ----------------------------------------------------------------------

class CodePaths:
    """Wraps torch.optim's module-level _single_tensor_* / _multi_tensor_* functions
    and records, in call order, the ones a step ran."""

    def __init__(self):
        self.called = []
        for mod in list(sys.modules.values()):
            name = getattr(mod, "__name__", "") or ""
            if not name.startswith("torch.optim."):
                continue
            for attr in list(vars(mod)):
                if attr.startswith(("_single_tensor_", "_multi_tensor_")):
                    fn = getattr(mod, attr)
                    if callable(fn) and not hasattr(fn, "_recorded"):
                        setattr(mod, attr, self._wrap(name + "." + attr, fn))

    def _wrap(self, qual, fn):
        def wrapper(*args, **kwargs):
            if qual not in self.called:
                self.called.append(qual)
            return fn(*args, **kwargs)
        wrapper._recorded = True
        return wrapper


def load_composer(src):
    """composer.optim.decoupled_weight_decay from src/composer/optim, alone."""
    name = "composer.optim.decoupled_weight_decay"
    if name in sys.modules:
        return sys.modules[name]
    path = os.path.join(src, "composer", "optim", "decoupled_weight_decay.py")
    for pkg in ("composer", "composer.optim", "composer.utils"):
        sys.modules.setdefault(pkg, types.ModuleType(pkg))
    dist = types.ModuleType("composer.utils.dist")
    sys.modules["composer.utils.dist"] = dist
    sys.modules["composer.utils"].dist = dist
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def draw():
    gen = torch.Generator().manual_seed(SEED)
    init = [torch.randn(s, generator=gen) for s in SHAPES]
    grads = [[torch.randn(s, generator=gen) for s in SHAPES] for _ in range(STEPS)]
    return init, grads


def trajectory(family, cls, setting, lr, kwargs, opts, recorder):
    init, grads = draw()
    params = [t.clone().requires_grad_(True) for t in init]
    wd_b = 1e-2 if family == "composer" else 0.1
    overrides = [{"lr": lr / 2, "weight_decay": opts.get("wd_a", 0.0)},
                 {"lr": lr, "weight_decay": wd_b}]
    tensors = [[0], [1, 2]]
    groups = [dict(o, params=[params[i] for i in ts])
              for o, ts in zip(overrides, tensors)]
    factory_kwargs = dict({"lr": lr}, **kwargs)
    opt = cls(groups, **factory_kwargs)
    # the group dicts torch was given are copied: the lr written below is the group's
    lr_per_step = None
    if opts.get("lr_change"):
        lr_per_step = [[lr_change(o["lr"], k) for o in overrides] for k in range(STEPS)]
    recorder.called = []
    history = []
    for k in range(STEPS):
        if lr_per_step:
            for g, v in zip(opt.param_groups, lr_per_step[k]):
                g["lr"] = v
        for p, g in zip(params, grads[k]):
            p.grad = g.clone()
        opt.step()
        history.append([p.detach().clone() for p in params])
    sd = opt.state_dict()
    doc = {
        "kind": "optimizer_trajectory",
        "optimizer": ("torch.optim." if family == "torch" else "composer.") + cls.__name__,
        "family": family,
        "setting": setting,
        "source": cls.__module__ + "." + cls.__name__,
        "factory": None,
        "factory_kwargs": factory_kwargs,
        "defaults": opt.defaults,
        "groups": [{"tensors": ts, "overrides": o} for o, ts in zip(overrides, tensors)],
        "steps": STEPS,
        "seed": SEED,
        "notes": ([FOREACH_NOTE if kwargs.get("foreach") else TORCH_NOTE]
                  if family == "torch" else list(COMPOSER_NOTES))
        + ([LR_CHANGE_NOTE] if lr_per_step else []),
        "code_paths": list(recorder.called),
    }
    if lr_per_step:
        doc["lr_per_step"] = lr_per_step
    doc.update({
        "shapes": SHAPES,
        "init": flat(init),
        "grads": [flat(g) for g in grads],
        "params": [flat(h) for h in history],
        "state": [sd["state"][i] for i in range(len(params))],
        "groups_final": [{k: v for k, v in g.items() if k != "params"}
                         for g in sd["param_groups"]],
    })
    return doc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=here, help="folder holding torch/ and composer/")
    ap.add_argument("--composer-src", help="folder with composer/optim/...py")
    ap.add_argument("--only", nargs="*", help="file stems to write (Class__setting)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    recorder = CodePaths()
    jobs = [("torch", getattr(torch.optim, c), *rest) for c, *rest in TORCH_SETTINGS]
    if args.composer_src:
        comp = load_composer(args.composer_src)
        jobs += [("composer", getattr(comp, c), *rest) for c, *rest in COMPOSER_SETTINGS]
    else:
        print("no --composer-src: composer files skipped", file=sys.stderr)
    for family, cls, setting, lr, kwargs, opts in jobs:
        stem = "%s__%s" % (cls.__name__, setting)
        if args.only and stem not in args.only:
            continue
        os.makedirs(os.path.join(args.out, family), exist_ok=True)
        path = os.path.join(args.out, family, stem + ".json")
        write(path, trajectory(family, cls, setting, lr, kwargs, opts, recorder))
        print(path)


if __name__ == "__main__":
    main()
