# ruff: noqa: E501
"""Run worker.py on every model, one at a time, in its own process. Rerunnable: skips models already measured."""

import json
import os
import subprocess
import sys
import time

MODELS = [
    "mobilenetv3_large_100",
    "mobilenetv3_small_100",
    "mobilenetv2_100",
    "mobilenetv4_conv_small",
    "efficientnet_b0",
    "lcnet_050",
    "lcnet_100",
    "ghostnet_100",
    "ghostnetv2_100",
    "mnasnet_100",
    "semnasnet_100",
    "regnetx_002",
    "regnety_002",
    "resnet18",
    "resnet18d",
    "seresnet18",
    "ecaresnet26t",
    "cs3darknet_s",
    "convnext_atto",
    "mobilevit_xxs",
    "mobilevitv2_050",
    "fastvit_t8",
    "efficientformer_l1",
    "repvit_m1",
    "hardcorenas_a",
    "tinynet_a",
    "rexnet_100",
    "mixnet_s",
    "dla34",
    "efficientvit_m0",
    "efficientvit_b0",
    "levit_128s",
    "vit_tiny_patch16_224",
    "tv:resnet18",
    "tv:mobilenet_v2",
    "tv:mobilenet_v3_small",
    "tv:mobilenet_v3_large",
    "tv:shufflenet_v2_x0_5",
    "tv:regnet_x_400mf",
    "tv:squeezenet1_1",
    "tv:mnasnet0_5",
    "tv:efficientnet_b0",
]
os.makedirs("results", exist_ok=True)
for m in sys.argv[1:] or MODELS:
    out = f"results/{m.replace(':', '_')}.json"
    if os.path.exists(out):
        continue
    t = time.time()
    p = subprocess.run([sys.executable, "worker.py", m, out], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        json.dump(dict(model=m, crashed=p.returncode, stderr=p.stderr[-3000:]), open(out, "w"))
    print(f"{m}: rc={p.returncode} {time.time() - t:.1f}s", flush=True)
