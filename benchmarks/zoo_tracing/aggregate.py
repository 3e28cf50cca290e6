# ruff: noqa: E402, E501, E741
"""Aggregate results/*.json into tables (markdown) used by REPORT.md."""

import collections
import glob
import json

R = []
for f in sorted(glob.glob("results/*.json")):
    R.append(json.load(open(f)))
order = [l.split(":")[0] for l in open("run_all.log") if ": rc=" in l]
R.sort(key=lambda r: order.index(r["model"]) if r["model"] in order else 999)
METHODS = [
    "fx_symbolic",
    "dispatch_real",
    "dispatch_fake",
    "makefx_real",
    "makefx_fake",
    "makefx_predispatch",
    "export",
    "export_cia",
    "export_core",
]
out = []
P = out.append


def cell(m, k, size_key):
    v = m.get(k)
    if v is None:
        return "-"
    if not v["ok"]:
        return "FAIL"
    n = v.get(size_key)
    return f"{v['time_s']:.2f}s/{n}" if n is not None else f"{v['time_s']:.2f}s"


P(
    "### Per model: time / size (dispatch_*: recorded aten ops; make_fx/export: all graph nodes; fx_symbolic: nodes)\n"
)
P("export_cia/export_core time = run_decompositions only (add the export time).\n")
P("| model | params | fwd | " + " | ".join(METHODS) + " |")
P("|---|---:|---:|" + "---|" * len(METHODS))
for r in R:
    if "crashed" in r:
        P(f"| {r['model']} | crashed | " + " | ".join(["-"] * (len(METHODS) + 1)) + " |")
        continue
    M = r["methods"]
    cells = [cell(M, k, "ops" if k.startswith("dispatch") else "nodes") for k in METHODS]
    P(
        f"| {r['model']} | {r['params'] / 1e6:.2f}M | {M['forward']['time_s']:.2f}s | "
        + " | ".join(cells)
        + " |"
    )

P("\n### Failures (first line of the error)\n")
for r in R:
    if "crashed" in r:
        P(f"- {r['model']}: worker crashed: {r['stderr'][-300:]!r}")
        continue
    for k, v in r["methods"].items():
        if not v["ok"]:
            P(f"- {r['model']} / {k}: `{v['error']}`")

P("\n### Module paths and flops vs ground truth (dispatch_real with forward-hook call stack)\n")
P(
    "path = nodes whose innermost nn_module_stack path equals the ground truth's (positional when the op sequences match, multiset of (op, path) otherwise; in-place `_` folded); modflops = modules whose flops (node flops summed into every ancestor) equal the ground truth's; flops = per-node FlopCounter formulas summed.\n"
)
P(
    "| model | FCM total | dispatch_real flops | mt==hooks | FCM per-module match | "
    + " | ".join(
        f"{k} path / modflops / flops=="
        for k in ["dispatch_fake", "makefx_real", "makefx_fake", "export_cia", "export_core"]
    )
    + " |"
)
P("|---|---:|---:|---|---|" + "---|" * 5)
for r in R:
    if "crashed" in r:
        continue
    M = r["methods"]
    gt = M.get("dispatch_real", {})
    fc = M.get("flopcounter", {})
    if not gt.get("ok"):
        P(f"| {r['model']} | {fc.get('total')} | FAIL |")
        continue
    tot = fc.get("total")
    cols = []
    for k in ["dispatch_fake", "makefx_real", "makefx_fake", "export_cia", "export_core"]:
        v = M.get(k, {})
        if not v.get("ok"):
            cols.append("FAIL")
            continue
        cols.append(
            f"{v['path_agree']}/{v['path_of']} ({v['path_cmp'][0]}) / {v['module_flops_match']}/{v['module_flops_of']} / {'yes' if v['flops'] == tot else 'NO ' + str(v['flops'])}"
        )
    P(
        f"| {r['model']} | {tot:,} | {gt['flops']:,}{'' if gt['flops'] == tot else ' (NE)'} | {gt['mt_agree']}/{gt['ops']} | "
        f"{fc.get('module_match_firstname')}/{fc.get('modules')} | " + " | ".join(cols) + " |"
    )


# op lists per level
def oplist(key, title):
    tot = collections.Counter()
    nmod = collections.Counter()
    per = {}
    for r in R:
        if "crashed" in r:
            continue
        v = r["methods"].get(key, {})
        if not v.get("ok"):
            continue
        per[r["model"]] = v["op_counts"]
        for op, c in v["op_counts"].items():
            tot[op] += c
            nmod[op] += 1
    P(f"\n### {title}: {len(tot)} distinct ops over {len(per)} models\n")
    P("| op | models | nodes | per model |")
    P("|---|---:|---:|---|")
    for op, c in sorted(tot.items(), key=lambda kv: (-nmod[kv[0]], -kv[1])):
        pm = ", ".join(f"{m}:{cs[op]}" for m, cs in per.items() if op in cs)
        if nmod[op] > 12:
            missing = [m for m in per if op not in per[m]]
            pm = f"all but {len(missing)}" + (
                f" (absent: {', '.join(missing)})" if len(missing) <= 12 else ""
            )
        P(f"| `{op}` | {nmod[op]} | {c} | {pm} |")
    return per


per_dispatch = oplist("dispatch_real", "ATen ops at the dispatch level (dispatch_real == make_fx real/fake)")
oplist("export_cia", "ATen ops in torch.export non-strict + run_decompositions(CIA-only table)")
oplist("export_core", "ATen ops in torch.export non-strict + run_decompositions() (core ATen)")
oplist("export", "ATen ops in torch.export non-strict, no decomposition (training IR)")

# csv per-model matrix
ops = sorted({op for cs in per_dispatch.values() for op in cs})
with open("ops_dispatch_matrix.csv", "w") as fh:
    fh.write("op," + ",".join(per_dispatch) + "\n")
    for op in ops:
        fh.write(op + "," + ",".join(str(per_dispatch[m].get(op, 0)) for m in per_dispatch) + "\n")
open("tables.md", "w").write("\n".join(out) + "\n")
print("\n".join(out))

# timing summary
import statistics

S = [
    "### Time summary over all models (seconds; median / max / sum)\n",
    "| method | ok | median | max | sum |",
    "|---|---|---:|---:|---:|",
]
for k in [
    "forward",
    "flopcounter",
    "fx_symbolic",
    "dispatch_real",
    "dispatch_fake",
    "makefx_real",
    "makefx_fake",
    "makefx_predispatch",
    "export",
    "export_functional",
    "export_cia",
    "export_core",
]:
    ts = [
        r["methods"][k]["time_s"] for r in R if "methods" in r and k in r["methods"] and r["methods"][k]["ok"]
    ]
    ok = sum(1 for r in R if "methods" in r and r["methods"].get(k, {}).get("ok"))
    S.append(f"| {k} | {ok}/{len(R)} | {statistics.median(ts):.3f} | {max(ts):.3f} | {sum(ts):.1f} |")
tt = [r["methods"]["export"]["time_s"] + r["methods"]["export_cia"]["time_s"] for r in R]
S.append(f"| export + CIA decomposition | | {statistics.median(tt):.3f} | {max(tt):.3f} | {sum(tt):.1f} |")
open("timing.md", "w").write("\n".join(S) + "\n")
print("\n".join(S))
