# ruff: noqa: E501
"""torch.export strict=True (TorchDynamo) on two models: time, success, nn_module_stack path format."""

import sys
import time

import torch
from worker import build, first_line

torch.set_num_threads(1)
for name in sys.argv[1:] or ["mobilenetv3_large_100", "mobilevitv2_050"]:
    m = build(name)
    x = torch.randn(1, 3, 224, 224)
    t = time.perf_counter()
    try:
        ep = torch.export.export(m, (x,), strict=True)
        cf = [n for n in ep.graph.nodes if n.op == "call_function"]
        paths = [list(n.meta["nn_module_stack"].values())[-1][0] for n in cf if n.meta.get("nn_module_stack")]
        print(
            name,
            f"ok {time.perf_counter() - t:.1f}s nodes={len(ep.graph.nodes)} with_stack={len(paths)}/{len(cf)} sample={paths[:2] + paths[-2:]}",
        )
    except Exception as e:
        print(name, f"FAIL {time.perf_counter() - t:.1f}s {first_line(e)}")
