# ruff: noqa: E501
"""Path check for graphs whose op sequence differs from the dispatch-level ground truth (export*, pre_dispatch):
align the two op sequences (difflib) after folding equivalent ops, compare the innermost module path of aligned pairs."""

import difflib
import glob
import json

EQ = {
    "aten.conv2d.default": "CONV",
    "aten.convolution.default": "CONV",
    "aten.batch_norm.default": "BN",
    "aten.native_batch_norm.default": "BN",
    "aten._native_batch_norm_legit_no_training.default": "BN",
    "aten.linear.default": "LIN",
    "aten.addmm.default": "LIN",
    "aten.layer_norm.default": "LN",
    "aten.native_layer_norm.default": "LN",
    "aten.adaptive_avg_pool2d.default": "GAP",
    "aten.mean.dim": "GAP",
    "aten.scaled_dot_product_attention.default": "SDPA",
    "aten._scaled_dot_product_flash_attention_for_cpu.default": "SDPA",
}
SKIP = {
    "aten.empty.memory_format",
    "aten.t.default",
    "aten.permute.default",
    "aten.view.default",
    "aten.flatten.using_ints",
    "aten.reshape.default",
    "aten._unsafe_view.default",
    "aten.expand.default",
    "aten.clone.default",
    "aten.dropout.default",
    "aten.alias.default",
    "aten.detach.default",
}


def norm(op):
    if op in EQ:
        return EQ[op]
    p = op.split(".")
    p[1] = p[1].rstrip("_")
    return ".".join(p)


def align(gt, recs):
    a = [(norm(o), p) for o, p, *_ in gt if o not in SKIP]
    b = [(norm(o), p) for o, p, *_ in recs if o not in SKIP]
    sm = difflib.SequenceMatcher(None, [x for x, _ in a], [x for x, _ in b], autojunk=False)
    pairs = agree = 0
    bad = []
    for blk in sm.get_matching_blocks():
        for k in range(blk.size):
            pairs += 1
            pa, pb = a[blk.a + k][1], b[blk.b + k][1]
            if pa == pb:
                agree += 1
            elif len(bad) < 3:
                bad.append((a[blk.a + k][0], pa, pb))
    return pairs, len(a), len(b), agree, bad


if __name__ == "__main__":
    res = {}
    for f in sorted(glob.glob("results/*.json")):
        r = json.load(open(f))
        if "crashed" in r:
            continue
        gt = [(q["op"], q["path"]) for q in r["gt_records"]]
        row = {}
        for k in [
            "makefx_fake",
            "makefx_predispatch",
            "export",
            "export_functional",
            "export_cia",
            "export_core",
        ]:
            v = r["methods"].get(k, {})
            if v.get("ok") and "recs" in v:
                row[k] = align(gt, v["recs"])
        res[r["model"]] = row
        print(
            r["model"],
            {k: f"{v[3]}/{v[0]} aligned (of {v[1]} gt, {v[2]} graph) {v[4]}" for k, v in row.items()},
        )
    json.dump(res, open("results_align.json", "w"), indent=1)
