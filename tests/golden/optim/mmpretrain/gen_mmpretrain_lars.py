#!/usr/bin/python3
"""Writes the `optimizer_trajectory` goldens of mmpretrain's LARS optimizer
(tests/golden/optim/mmpretrain/LARS__<setting>.json).

Needs torch 1.13 and the standard library only: run it with /usr/bin/python3.
mmpretrain is not installed, so the LARS class below is copied verbatim (but for the
registry decorator and the docstring) from mmpretrain/engine/optimizers/lars.py of
open-mmlab/mmpretrain (main, 1.x; Copyright (c) OpenMMLab, Apache-2.0).

The conventions are those of tests/golden/optim/gen_torch_settings.py: seed 20240611,
shapes [[7],[4,5],[3,2,3]], init then 12 steps of grads drawn with randn from one
torch.Generator, group A (tensor 0) lr = lr/2 and weight_decay 0.0, group B (tensors
1, 2) weight_decay 0.1, unless a setting says otherwise. `defaults` is the
optimizer's defaults dict plus `eps`, which LARS keeps as self.eps (it is a
constructor argument, but neither in defaults nor in the groups).

usage: gen_mmpretrain_lars.py [--out DIR] [--only NAME...]
"""

import argparse
import json
import os
from typing import Iterable

import torch
from torch.optim.optimizer import Optimizer

SEED = 20240611
SHAPES = [[7], [4, 5], [3, 2, 3]]
STEPS = 12


# ---- mmpretrain/engine/optimizers/lars.py (verbatim, decorator removed) -------------

class LARS(Optimizer):
    """Implements layer-wise adaptive rate scaling for SGD (mmpretrain)."""

    def __init__(self,
                 params: Iterable,
                 lr: float,
                 momentum: float = 0,
                 weight_decay: float = 0,
                 dampening: float = 0,
                 eta: float = 0.001,
                 nesterov: bool = False,
                 eps: float = 1e-8) -> None:
        if not isinstance(lr, float) and lr < 0.0:
            raise ValueError(f'Invalid learning rate: {lr}')
        if momentum < 0.0:
            raise ValueError(f'Invalid momentum value: {momentum}')
        if weight_decay < 0.0:
            raise ValueError(f'Invalid weight_decay value: {weight_decay}')
        if eta < 0.0:
            raise ValueError(f'Invalid LARS coefficient value: {eta}')

        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            eta=eta)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                'Nesterov momentum requires a momentum and zero dampening')

        self.eps = eps
        super().__init__(params, defaults)

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault('nesterov', False)

    @torch.no_grad()
    def step(self, closure=None) -> torch.Tensor:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            weight_decay = group['weight_decay']
            momentum = group['momentum']
            dampening = group['dampening']
            eta = group['eta']
            nesterov = group['nesterov']
            lr = group['lr']
            lars_exclude = group.get('lars_exclude', False)

            for p in group['params']:
                if p.grad is None:
                    continue

                d_p = p.grad

                if lars_exclude:
                    local_lr = 1.
                else:
                    weight_norm = torch.norm(p).item()
                    grad_norm = torch.norm(d_p).item()
                    if weight_norm != 0 and grad_norm != 0:
                        # Compute local learning rate for this layer
                        local_lr = eta * weight_norm / \
                            (grad_norm + weight_decay * weight_norm + self.eps)
                    else:
                        local_lr = 1.

                actual_lr = local_lr * lr
                d_p = d_p.add(p, alpha=weight_decay).mul(actual_lr)
                if momentum != 0:
                    param_state = self.state[p]
                    if 'momentum_buffer' not in param_state:
                        buf = param_state['momentum_buffer'] = \
                                torch.clone(d_p).detach()
                    else:
                        buf = param_state['momentum_buffer']
                        buf.mul_(momentum).add_(d_p, alpha=1 - dampening)
                    if nesterov:
                        d_p = d_p.add(buf, alpha=momentum)
                    else:
                        d_p = buf
                p.add_(-d_p)

        return loss


# ---- settings ------------------------------------------------------------------------

# (setting, lr of group B, constructor kwargs besides lr, options)
# options: wd_a / wd_b: the groups' weight decay (default 0.0 / 0.1); exclude_a: group
# A sets lars_exclude; zero_grads: {step: [tensor, ...]} whose gradient is all zeros;
# zero_init: tensors that start at zero (weight norm 0).
SETTINGS = [
    ("base", 0.1, {}, {}),
    ("momentum", 0.1, {"momentum": 0.9}, {}),
    ("nesterov", 0.1, {"momentum": 0.9, "nesterov": True}, {}),
    ("dampening", 0.1, {"momentum": 0.9, "dampening": 0.5}, {}),
    ("weight_decay_zero", 0.1, {"momentum": 0.9}, {"wd_b": 0.0}),
    ("weight_decay_both", 1.0, {"momentum": 0.9, "weight_decay": 0.05, "eta": 0.02},
     {"wd_a": 0.05, "wd_b": 0.05}),
    ("eta_eps", 2.0, {"momentum": 0.9, "eta": 0.05, "eps": 1e-3}, {}),
    ("lars_exclude", 0.1, {"momentum": 0.9, "weight_decay": 1e-4},
     {"exclude_a": True, "wd_b": 1e-4}),
    ("lars_exclude_nesterov", 0.5, {"momentum": 0.9, "nesterov": True},
     {"exclude_a": True, "wd_a": 0.01}),
    ("zero_norms", 0.4, {"momentum": 0.9, "eta": 0.01},
     {"zero_grads": {0: [1], 3: [0, 2], 4: [1]}, "zero_init": [0]}),
]


# ---- JSON output (as gen_torch_settings.py) ------------------------------------------

def plain(x):
    if isinstance(x, torch.Tensor):
        return {"dtype": str(x.dtype).replace("torch.", ""), "shape": list(x.shape),
                "data": [float(v) for v in x.detach().reshape(-1).tolist()]}
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    return x


def flat(tensors):
    return [[float(v) for v in t.reshape(-1).tolist()] for t in tensors]


def dumps(x):
    return json.dumps(plain(x), separators=(",", ":"), allow_nan=False)


def write(path, doc):
    lines = ['"%s":%s' % (k, dumps(v)) for k, v in doc.items()]
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


# ---- recording -----------------------------------------------------------------------

def draw(opts):
    gen = torch.Generator().manual_seed(SEED)
    init = [torch.randn(s, generator=gen) for s in SHAPES]
    grads = [[torch.randn(s, generator=gen) for s in SHAPES] for _ in range(STEPS)]
    for i in opts.get("zero_init", []):
        init[i].zero_()
    for k, ts in opts.get("zero_grads", {}).items():
        for i in ts:
            grads[k][i].zero_()
    return init, grads


def trajectory(setting, lr, kwargs, opts):
    init, grads = draw(opts)
    params = [t.clone().requires_grad_(True) for t in init]
    overrides = [{"lr": lr / 2, "weight_decay": opts.get("wd_a", 0.0)},
                 {"lr": lr, "weight_decay": opts.get("wd_b", 0.1)}]
    if opts.get("exclude_a"):
        overrides[0]["lars_exclude"] = True
    tensors = [[0], [1, 2]]
    groups = [dict(o, params=[params[i] for i in ts])
              for o, ts in zip(overrides, tensors)]
    factory_kwargs = dict({"lr": lr}, **kwargs)
    opt = LARS(groups, **factory_kwargs)
    history = []
    for k in range(STEPS):
        for p, g in zip(params, grads[k]):
            p.grad = g.clone()
        opt.step()
        history.append([p.detach().clone() for p in params])
    sd = opt.state_dict()
    notes = [
        "mmpretrain.engine.optimizers.lars.LARS, copied into the generator "
        "(mmpretrain is not installed), on torch 1.13 CPU.",
        "defaults: the optimizer's defaults dict plus eps (self.eps, not a group key).",
        "The norms are float32 reductions (torch.norm(p).item()); local_lr and "
        "actual_lr are Python floats.",
    ]
    if opts.get("zero_grads") or opts.get("zero_init"):
        notes.append("zero_grads %s (step: tensors) and zero_init %s: those steps take "
                     "local_lr = 1." % (opts.get("zero_grads", {}),
                                        opts.get("zero_init", [])))
    doc = {
        "kind": "optimizer_trajectory",
        "optimizer": "mmpretrain.LARS",
        "family": "mmpretrain",
        "setting": setting,
        "source": "mmpretrain.engine.optimizers.lars.LARS",
        "factory": None,
        "factory_kwargs": factory_kwargs,
        "defaults": dict(opt.defaults, eps=opt.eps),
        "groups": [{"tensors": ts, "overrides": o} for o, ts in zip(overrides, tensors)],
        "steps": STEPS,
        "seed": SEED,
        "notes": notes,
        "code_paths": [],
        "shapes": SHAPES,
        "init": flat(init),
        "grads": [flat(g) for g in grads],
        "params": [flat(h) for h in history],
        "state": [sd["state"].get(i, {}) for i in range(len(params))],
        "groups_final": [{k: v for k, v in g.items() if k != "params"}
                         for g in sd["param_groups"]],
    }
    return doc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=here, help="folder to write LARS__*.json into")
    ap.add_argument("--only", nargs="*", help="settings to write")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    for setting, lr, kwargs, opts in SETTINGS:
        if args.only and setting not in args.only:
            continue
        path = os.path.join(args.out, "LARS__%s.json" % setting)
        write(path, trajectory(setting, lr, kwargs, opts))
        print(path)


if __name__ == "__main__":
    main()
