"""How fast is ``Analysis.cost(plan)`` compared with tracing the network the plan builds?

In one run on one machine, for a ResNet-18-style network written as users write it (functional
ReLU, ``out += identity``) and for MobileNetV2 (``create_network``), both 1000 classes at
224×224: ``analyze`` once, then the closed-form cost of a different random plan on every call
(1–4 modules of any registered kind inserted after or replacing module paths) and of one plan
repeated, against fvcore ``FlopCountAnalysis(...).total()`` on the built networks.  Prints the
medians and ratios and writes them to reports/benchmarks.md (section "analyze").

    python benchmarks/analyze.py [--plans 2000] [--traces 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import statistics
import time
import warnings

import torch
import torch.nn.functional as F
from _report import write_section
from torch import nn

from ulsam_nas import InvalidInput, analyze, create_network
from ulsam_nas.attention import get_attention, list_attention

SIZE = (3, 224, 224)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        out += identity
        return F.relu(out)


class ResNet18Style(nn.Module):
    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths, layers, cin = (64, 128, 256, 512), [], 64
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(cin, width, stride), BasicBlock(width, width, 1)))
            cin = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def random_plans(analysis, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    plans: list[str] = []
    seen: set[str] = set()
    while len(plans) < count:
        segments = []
        for position in rng.sample(analysis.positions, rng.randint(1, 4)):
            action = "replace" if position.replace and rng.random() < 0.5 else "insert"
            module = rng.choice(list_attention())
            config = get_attention(module).sample_config(rng, position.out_shape[0])
            segments.append(
                f"{action}@{position.path}:{module}" + "".join(f":{k}={v}" for k, v in config.items())
            )
        plan = ",".join(segments)
        try:
            analysis.resolve(plan)
        except InvalidInput:
            continue
        if plan not in seen:
            seen.add(plan)
            plans.append(plan)
    analysis._plans.clear()  # every timed call below meets its plan for the first time
    analysis._placement_costs.clear()
    return plans


def timed(function, argument) -> float:
    start = time.perf_counter()
    function(argument)
    return time.perf_counter() - start


def fvcore_seconds(model: nn.Module) -> float:
    from fvcore.nn import FlopCountAnalysis

    x = torch.randn(1, *SIZE)
    with torch.no_grad():
        start = time.perf_counter()
        analysis = FlopCountAnalysis(model.eval(), (x,))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        analysis.total()
        return time.perf_counter() - start


def measure(name: str, model: nn.Module, plans_count: int, traces: int) -> dict:
    start = time.perf_counter()
    analysis = analyze(model, SIZE)
    analyze_s = time.perf_counter() - start
    plans = random_plans(analysis, plans_count, seed=0)
    new_plan = statistics.median(timed(analysis.cost, p) for p in plans)
    repeated = statistics.median(timed(analysis.cost, plans[0]) for _ in range(plans_count))
    fvcore = statistics.median(fvcore_seconds(analysis.build(p)) for p in plans[:traces])
    return {
        "name": name,
        "positions": len(analysis.positions),
        "analyze_s": analyze_s,
        "new_plan_s": new_plan,
        "repeated_s": repeated,
        "fvcore_s": fvcore,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=2000)
    parser.add_argument("--traces", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    results = [
        measure("ResNet-18 style (hand-written)", ResNet18Style(), args.plans, args.traces),
        measure(
            "MobileNetV2 α 1.0 (`create_network`)", create_network("mobilenet_v2"), args.plans, args.traces
        ),
    ]
    lines = [
        "## Analyze (`python benchmarks/analyze.py`)",
        "",
        f"Both networks at 3×224×224, 1000 classes; `Analysis.cost(plan)` on {args.plans} distinct random "
        "plans (1–4 modules of any registered kind, inserted after or replacing module paths), each met "
        "for the first time, and on one plan repeated; fvcore: median of "
        f"{args.traces} traces of built plans. One CPU thread; {os.cpu_count()} cores; "
        f"{platform.machine()}, torch {torch.__version__}.",
        "",
        "| network | positions | `analyze` (once) | `cost(plan)`, new plan | `cost(plan)`, repeated | "
        "fvcore trace | speed-up (new plan / repeated) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['positions']} | {r['analyze_s'] * 1e3:.0f} ms | "
            f"{r['new_plan_s'] * 1e6:.0f} µs | "
            f"{r['repeated_s'] * 1e6:.1f} µs | {r['fvcore_s'] * 1e3:.0f} ms | "
            f"{r['fvcore_s'] / r['new_plan_s']:,.0f}× / {r['fvcore_s'] / r['repeated_s']:,.0f}× |"
        )
    text = "\n".join(lines)
    print(text)
    print(f"\nwritten to {write_section('analyze', text)}")


if __name__ == "__main__":
    main()
