"""``analyze`` on the compact networks people bring: timm's and torchvision's, 224×224.

For each model: refused (with the first lines of the reason) or costed; if costed, whether the
parameters equal ``sum(p.numel())`` and whether the closed form projected onto each supported
counter (torch's FlopCounterMode, fvcore, ptflops' aten backend) equals that counter's trace of
the same model (each counter in its own process: ``ulsam_nas.verify.plans.verify_plans``).
A model is *exact* when all of these hold, *wrong* when any differs, *counter failed* when every
counter that ran agrees but one fails on the model itself, *refused* when ``analyze`` refuses it.

timm and torchvision are not dependencies of this project (torchvision's wheel needs the CUDA
torch): run this in a scratch venv, for measurement only (see reports/zoo-tracing.md, "Rerun").
One process per model; results are kept per model in ``--results`` (a rerun skips those done)
and the table is written to reports/benchmarks.md (section "zoo").

    /tmp/zoo/bin/python benchmarks/zoo.py [--results /tmp/zoo-results] [MODEL ...]
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import time
from pathlib import Path

MODELS = (
    *("mobilenetv3_large_100", "mobilenetv3_small_100", "mobilenetv2_100", "mobilenetv4_conv_small"),
    *("efficientnet_b0", "lcnet_050", "lcnet_100", "ghostnet_100", "ghostnetv2_100", "mnasnet_100"),
    *("semnasnet_100", "regnetx_002", "regnety_002", "resnet18", "resnet18d", "seresnet18"),
    *("ecaresnet26t", "cs3darknet_s", "convnext_atto", "mobilevit_xxs", "mobilevitv2_050"),
    *("fastvit_t8", "efficientformer_l1", "repvit_m1", "hardcorenas_a", "tinynet_a", "rexnet_100"),
    *("mixnet_s", "dla34", "efficientvit_m0", "efficientvit_b0", "levit_128s", "vit_tiny_patch16_224"),
    *("tv:resnet18", "tv:mobilenet_v2", "tv:mobilenet_v3_small", "tv:mobilenet_v3_large"),
    *("tv:shufflenet_v2_x0_5", "tv:regnet_x_400mf", "tv:squeezenet1_1", "tv:mnasnet0_5"),
    "tv:efficientnet_b0",
    # a second, wider sweep of families (added with the concrete-shape tracer)
    *("mobilenetv1_100", "mobileone_s0", "repghostnet_050", "efficientformerv2_s0", "edgenext_xx_small"),
    *("tiny_vit_5m_224", "mobilenetv4_hybrid_medium", "hgnetv2_b0", "starnet_s1", "ghostnetv3_050"),
    *("resnet10t", "inception_next_atto", "fasternet_t0", "shvit_s1", "gernet_s", "regnetz_005"),
    *("skresnet18", "gcresnet33ts", "tf_efficientnet_b0", "tf_mobilenetv3_small_100", "efficientnet_lite0"),
    *("fbnetc_100", "spnasnet_100", "xcit_nano_12_p16_224", "deit_tiny_patch16_224", "pit_ti_224"),
    *("tv:regnet_y_400mf", "tv:shufflenet_v2_x1_0", "tv:mnasnet1_0", "tv:convnext_tiny", "tv:swin_t"),
)
SIZE = (3, 224, 224)


def build(name: str):
    """A model by timm name, or ``tv:NAME`` for torchvision's ``models.NAME``; random weights."""
    if name.startswith("tv:"):
        import torchvision

        return getattr(torchvision.models, name[3:])()
    import timm

    return timm.create_model(name)


def measure(name: str) -> dict[str, object]:
    """One model, in this process (the counters each get their own)."""
    import torch

    from ulsam_nas import InvalidInput, analyze
    from ulsam_nas.verify.plans import verify_plans

    torch.set_num_threads(1)
    model = build(name).eval()
    started = time.perf_counter()
    try:
        analysis = analyze(model, SIZE)
    except InvalidInput as error:
        return {"model": name, "verdict": "refused", "reason": str(error).splitlines()[:3]}
    seconds = time.perf_counter() - started
    cost = analysis.cost()
    numel = sum(p.numel() for p in model.parameters())
    rows = verify_plans(functools.partial(build, name), SIZE, [""])
    checks = [{"counter": "params", "expected": cost.params, "traced": numel, "match": cost.params == numel}]
    checks += [{k: r.get(k) for k in ("counter", "expected", "traced", "match", "error")} for r in rows]
    ran = [c for c in checks if not c.get("error")]
    if any(not c["match"] for c in ran):
        verdict = "wrong"
    else:
        verdict = "exact" if len(ran) == len(checks) else "counter failed"
    return {
        "model": name,
        "verdict": verdict,
        "params": cost.params,
        "macs": cost.macs,
        "analyze_seconds": round(seconds, 3),
        "checks": checks,
    }


def table(results: list[dict[str, object]]) -> str:
    counts = {
        v: sum(r["verdict"] == v for r in results) for v in ("exact", "counter failed", "wrong", "refused")
    }
    lines = [
        f"{len(results)} models at 1×3×224×224 (eval): {counts['exact']} exact, {counts['wrong']} wrong, "
        f"{counts['refused']} refused, {counts['counter failed']} where a counter fails on the model "
        "(the others agree). Exact: params = sum(numel) and the closed form projected onto "
        "torch (FlopCounterMode), fvcore and ptflops (aten) equals each counter's trace.",
        "",
        "| model | verdict | params | MACs | analyze (s) | what differs, or why refused |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in results:
        if r["verdict"] == "refused":
            why = " / ".join(str(line) for line in r["reason"])  # type: ignore[union-attr]
            lines.append(f"| {r['model']} | refused | | | | {why} |")
            continue
        differs = "; ".join(
            f"{c['counter']} fails on the model: {c['error']}"
            if c.get("error")
            else f"{c['counter']}: expected {c['expected']:,}, traced {c['traced']}"
            for c in r["checks"]  # type: ignore[union-attr]
            if not c["match"]
        )
        lines.append(
            f"| {r['model']} | {r['verdict']} | {r['params']:,} | {r['macs']:,} | {r['analyze_seconds']} | "
            f"{differs} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="timm names or tv:NAME (default: the list above)")
    parser.add_argument("--results", default="/tmp/zoo-results", help="one JSON file per model")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker)))
        return
    folder = Path(args.results)
    folder.mkdir(parents=True, exist_ok=True)
    names = args.models or list(MODELS)
    for name in names:
        path = folder / f"{name.replace(':', '_')}.json"
        if path.exists():
            continue
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, __file__, "--worker", name], capture_output=True, text=True, timeout=900
        )
        if run.returncode != 0:
            result = {
                "model": name,
                "verdict": "refused",
                "reason": [f"crashed: {run.stderr.strip()[-300:]}"],
            }
        else:
            result = json.loads(run.stdout.strip().splitlines()[-1])
        path.write_text(json.dumps(result))
        print(f"{name}: {result['verdict']} ({time.perf_counter() - started:.0f} s)", flush=True)
    results = [json.loads((folder / f"{n.replace(':', '_')}.json").read_text()) for n in names]
    text = table(results)
    print(text)
    if not args.models:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _report import write_section

        written = write_section("zoo", "## The compact zoo (`benchmarks/zoo.py`, scratch venv)\n\n" + text)
        print(f"\nwritten to {written}")


if __name__ == "__main__":
    main()
