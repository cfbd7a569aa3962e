#!/usr/bin/env python3
"""Convert an mmengine Python config (with its _base_ chain) to YAML for optwrap.

usage: tools/mmconfig2yaml.py CONFIG.py [OUT.yaml] [--keys K1,K2,...]

Needs mmengine (pip install mmengine), and the config's own repository checked out,
since _base_ paths are relative to CONFIG. The merge is mmengine's own
(Config.fromfile: _base_ files, _delete_, {{_base_.x}}, read_base() configs); the
YAML is what Config.dump writes (PyYAML: keys sorted, full-precision floats, tuples
as `!!python/tuple [..]`, which optwrap reads as lists). Without OUT it prints the
YAML. --keys keeps only those top-level keys, e.g.
--keys default_scope,optim_wrapper,param_scheduler,train_cfg,auto_scale_lr
(optwrap check ignores the model/data/hook keys of a full dump anyway).
Then: ./optwrap check OUT.yaml
"""
import argparse
import sys

try:
    from mmengine.config import Config
    from mmengine.fileio import dump
except ImportError:
    sys.exit('mmconfig2yaml: mmengine is not importable; pip install mmengine')

ap = argparse.ArgumentParser(usage=__doc__.split('\n')[2][7:])
ap.add_argument('config')
ap.add_argument('out', nargs='?')
ap.add_argument('--keys', help='comma-separated top-level keys to keep')
a = ap.parse_args()

cfg = Config.fromfile(a.config)
if a.keys:
    cfg = Config({k: cfg[k] for k in a.keys.split(',') if k in cfg})
if a.out:
    if not a.out.endswith(('.yaml', '.yml')):
        sys.exit('mmconfig2yaml: OUT must end in .yaml or .yml')
    cfg.dump(a.out)
else:
    sys.stdout.write(dump(cfg.to_dict(), file_format='yaml'))
