# ruff: noqa: E402
"""FlopCounterMode on a model built on the meta device vs on the CPU: build and count times (item 4)."""

import json
import os
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker import build, first_line, run_dispatch

torch.set_num_threads(1)
MODELS = sys.argv[1:] or [
    "mobilenetv3_large_100",
    "efficientnet_b0",
    "resnet18",
    "convnext_atto",
    "mobilevitv2_050",
    "levit_128s",
    "vit_tiny_patch16_224",
    "tv:mobilenet_v2",
]
rows = []
import torchvision  # noqa: F401  (import time not counted)


def count(model, x):
    with torch.no_grad(), FlopCounterMode(display=False) as f:
        model(x)
    return f.get_total_flops()


for name in MODELS:
    row = dict(model=name)
    try:
        build(name)  # warm: first build pays lazy imports/registrations
        t = time.perf_counter()
        m = build(name)
        row["build_cpu_s"] = time.perf_counter() - t
        x = torch.randn(1, 3, 224, 224)
        count(m, x)
        t = time.perf_counter()
        row["total_cpu"] = count(m, x)
        row["count_cpu_s"] = time.perf_counter() - t
        t = time.perf_counter()
        run_dispatch(m, x, False)
        row["recorder_cpu_s"] = time.perf_counter() - t
        t = time.perf_counter()
        mm = build(name, "meta")
        row["build_meta_s"] = time.perf_counter() - t
        xm = torch.empty(1, 3, 224, 224, device="meta")
        try:
            t = time.perf_counter()
            row["total_meta"] = count(mm, xm)
            row["count_meta_s"] = time.perf_counter() - t
            t = time.perf_counter()
            row["total_meta"] = count(mm, xm)
            row["count_meta_2nd_s"] = time.perf_counter() - t
            t = time.perf_counter()
            recs, _ = run_dispatch(mm, xm, False)
            row["recorder_meta_s"] = time.perf_counter() - t
            row["recorder_meta_flops"] = sum(r["flops"] for r in recs)
        except Exception as e:
            row["meta_error"] = first_line(e)
    except Exception as e:
        row["error"] = first_line(e)
    print(json.dumps(row), flush=True)
    rows.append(row)
json.dump(rows, open("results_meta.json", "w"), indent=1)
