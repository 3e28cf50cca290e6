# ruff: noqa: E402
"""Module paths for shared modules: one Conv2d instance owned by two parents, and one module called twice."""

import json

import torch
import torch.nn as nn
from torch.fx.experimental.proxy_tensor import make_fx
from worker import graph_records, run_dispatch

torch.set_num_threads(1)


class Block(nn.Module):
    def __init__(self, conv):
        super().__init__()
        self.conv = conv
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        c = nn.Conv2d(8, 8, 3, padding=1)
        self.a = Block(c)
        self.b = Block(c)  # same conv under two parents
        self.stem = nn.Conv2d(3, 8, 1)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        x = self.stem(x)
        x = self.a(x)
        x = self.b(x)
        x = self.a(x)  # a called twice
        return self.head(torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


m = Net().eval()
x = torch.randn(1, 3, 16, 16)
out = {}
with torch.no_grad():
    recs, shared = run_dispatch(m, x, False)
    out["hooks_callpath"] = [(r["op"], r["path"]) for r in recs if "conv" in r["op"]]
    out["hooks_firstname"] = [(r["op"], r["first"]) for r in recs if "conv" in r["op"]]
    out["module_tracker"] = [(r["op"], r["mt"]) for r in recs if "conv" in r["op"]]

    def f(i):
        return m(i)

    f._orig_mod = m
    g = make_fx(f, record_module_stack=True, tracing_mode="fake", _allow_non_fake_inputs=True)(x)
    out["make_fx"] = [
        (o, p) for o, p, _ in [(r["op"], r["path"], 0) for r in graph_records(g)[0]] if "conv" in o
    ]
ep = torch.export.export(m, (x,), strict=False)
out["export"] = [(r["op"], r["path"]) for r in graph_records(ep.graph_module)[0] if "conv" in r["op"]]
ep2 = torch.export.export(m, (x,), strict=False).run_decompositions()
out["export_core"] = [(r["op"], r["path"]) for r in graph_records(ep2.graph_module)[0] if "conv" in r["op"]]
from torch.utils.flop_counter import FlopCounterMode

with torch.no_grad(), FlopCounterMode(display=False) as fc:
    m(x)
out["flopcounter_modules"] = {k: sum(v.values()) for k, v in fc.get_flop_counts().items()}
for k, v in out.items():
    print(k, v)
json.dump(out, open("results_shared.json", "w"), indent=1)
