# ruff: noqa: B023, B905
"""Measure ATen-level tracing candidates on one model.

usage: python worker.py MODEL OUT.json
MODEL: a timm name, or tv:<torchvision.models function name>.
Every method runs inside try/except; the first line of an error is recorded.
"""

from __future__ import annotations

import collections
import json
import sys
import time
import traceback

import torch
import torch.fx as fx
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map
from torch.utils.flop_counter import FlopCounterMode, flop_registry
from torch.utils.module_tracker import ModuleTracker

torch.set_num_threads(1)


def build(name: str, device: str | None = None) -> torch.nn.Module:
    ctx = torch.device(device) if device else _null()
    with ctx:
        if name.startswith("tv:"):
            import torchvision

            m = getattr(torchvision.models, name[3:])()
        else:
            import timm

            m = timm.create_model(name)
    return m.eval()


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def first_line(e: BaseException) -> str:
    s = f"{type(e).__name__}: {e}"
    return s.strip().splitlines()[0][:300]


def flop_of(func, args, kwargs, out) -> int:
    p = getattr(func, "overloadpacket", None)
    if p is not None and p in flop_registry:
        return int(flop_registry[p](*args, **(kwargs or {}), out_val=out))
    return 0


def shapes(x):
    out = []
    for a in tree_flatten(x)[0]:
        if isinstance(a, torch.Tensor):
            out.append(list(a.shape))
    return out


# ---------------------------------------------------------------- module call stack (ground truth)
class CallStack:
    """Global forward (pre-)hooks; path of a call = caller's call path + attribute name in the caller."""

    def __init__(self, root: torch.nn.Module):
        self.first = {}
        for n, mod in root.named_modules():
            self.first.setdefault(id(mod), n)
        self.root = root
        self.stack: list[tuple[torch.nn.Module, str, str]] = []
        self.handles = []
        self.shared = 0  # calls whose call path differs from the first name

    def _rel(self, parent, mod):
        for k, v in parent._modules.items():
            if v is mod:
                return k
        for k, v in parent.named_modules():
            if v is mod and k:
                return k
        return None

    def pre(self, mod, args):
        first = self.first.get(id(mod), "?" + type(mod).__name__)
        if not self.stack:
            path = first
        else:
            parent, ppath, _ = self.stack[-1]
            rel = self._rel(parent, mod)
            path = first if rel is None else (f"{ppath}.{rel}" if ppath else rel)
        if path != first:
            self.shared += 1
        self.stack.append((mod, path, first))

    def post(self, mod, args, out):
        while self.stack and self.stack[-1][0] is not mod:
            self.stack.pop()
        if self.stack:
            self.stack.pop()

    def __enter__(self):
        self.handles = [
            torch.nn.modules.module.register_module_forward_pre_hook(self.pre),
            torch.nn.modules.module.register_module_forward_hook(self.post, always_call=True),
        ]
        return self

    def __exit__(self, *a):
        for h in self.handles:
            h.remove()
        return False

    @property
    def path(self):
        return self.stack[-1][1] if self.stack else ""

    @property
    def first_path(self):
        return self.stack[-1][2] if self.stack else ""


def mt_innermost(parents: set[str]) -> str:
    names = [p for p in parents if p != "Global"]
    if not names:
        return ""
    inner = max(names, key=lambda s: s.count("."))
    return inner.split(".", 1)[1] if "." in inner else ""


class Recorder(TorchDispatchMode):
    def __init__(self, cs: CallStack, mt: ModuleTracker):
        super().__init__()
        self.cs, self.mt, self.records = cs, mt, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not str(func).startswith("aten."):
            return out  # prim.device etc. (FlopCounterMode skips those too)
        self.records.append(
            dict(
                op=str(func),
                path=self.cs.path,
                first=self.cs.first_path,
                mt=mt_innermost(self.mt.parents),
                ins=shapes((args, kwargs)),
                out=shapes(out),
                flops=flop_of(func, args, kwargs, out),
            )
        )
        return out


def run_dispatch(model, x, fake: bool):
    cs = CallStack(model)
    mt = ModuleTracker()
    if fake:
        fm = FakeTensorMode(allow_non_fake_inputs=True)
        with fm:
            xf = fm.from_tensor(x)
        with fm, cs, mt, Recorder(cs, mt) as rec:
            model(xf)
    else:
        with cs, mt, Recorder(cs, mt) as rec:
            model(x)
    return rec.records, cs.shared


# ---------------------------------------------------------------- fx graph analysis
def innermost_from_meta(n: fx.Node):
    st = n.meta.get("nn_module_stack")
    if not st:
        return None
    path = list(st.values())[-1][0]
    return path


def graph_records(gm: fx.GraphModule):
    recs = []
    nodes = list(gm.graph.nodes)
    for n in nodes:
        if n.op != "call_function":
            continue
        tgt = n.target
        if not isinstance(tgt, torch._ops.OpOverload):
            continue  # getitem etc.

        def val(a):
            if isinstance(a, fx.Node):
                if "val" in a.meta:
                    return a.meta["val"]
                if a.op == "get_attr":
                    obj = gm
                    for p in a.target.split("."):
                        obj = getattr(obj, p)
                    return obj
                return None
            return a

        args = tree_map(val, n.args)
        kwargs = tree_map(val, n.kwargs)
        out = n.meta.get("val")
        try:
            fl = flop_of(tgt, args, kwargs, out)
        except Exception:
            fl = -1
        recs.append(dict(op=str(tgt), path=innermost_from_meta(n), flops=fl, ins=shapes((args, kwargs))))
    return recs, len(nodes)


def norm_op(s):
    parts = s.split(".")
    if len(parts) >= 2:
        parts[1] = parts[1].rstrip("_")
    return ".".join(parts)


def norm_path(p):
    # export/make_fx paths are already 'a.b.c'; root is ''
    return p


def summarise(recs, gt=None, total_nodes=None):
    d = dict(
        recs=[(r["op"], r["path"], r["flops"]) for r in recs],
        ops=len(recs),
        op_counts=dict(collections.Counter(r["op"] for r in recs)),
        flops=sum(max(r["flops"], 0) for r in recs),
        flop_errors=sum(1 for r in recs if r["flops"] < 0),
        with_path=sum(1 for r in recs if r["path"] is not None),
    )
    if total_nodes is not None:
        d["nodes"] = total_nodes
    if gt is not None:
        # compare innermost paths with ground truth: same op sequence -> positional; else multiset
        a = [(norm_op(r["op"]), r["path"]) for r in recs]
        b = [(norm_op(r["op"]), r["path"]) for r in gt]
        gt_paths = {r["path"] for r in gt}
        d["path_known"] = sum(1 for r in recs if r["path"] in gt_paths)
        d["path_unknown_examples"] = sorted(
            {(r["op"], r["path"]) for r in recs if r["path"] not in gt_paths}
        )[:6]
        if [o for o, _ in a] == [o for o, _ in b]:
            d["path_cmp"] = "positional"
            d["path_agree"] = sum(1 for x, y in zip(a, b) if x[1] == y[1])
            d["path_disagree_examples"] = [(x[0], x[1], y[1]) for x, y in zip(a, b) if x[1] != y[1]][:5]
        else:
            ca, cb = collections.Counter(a), collections.Counter(b)
            d["path_cmp"] = "multiset"
            d["path_agree"] = sum((ca & cb).values())
        d["path_of"] = len(recs)
        mg, mm = module_flops_from(gt), module_flops_from(recs)
        keys = set(mg) | set(mm)
        d["module_flops_match"] = sum(1 for k in keys if mg.get(k, 0) == mm.get(k, 0))
        d["module_flops_of"] = len(keys)
        d["module_flops_mismatch_examples"] = [
            (k, mg.get(k, 0), mm.get(k, 0)) for k in sorted(keys) if mg.get(k, 0) != mm.get(k, 0)
        ][:5]
    return d


def module_flops_from(recs):
    """flops per module path, every ancestor included (FlopCounterMode semantics)."""
    acc = collections.defaultdict(int)
    for r in recs:
        if r["flops"] <= 0:
            continue
        p = r["path"] or ""
        parts = p.split(".") if p else []
        acc[""] += r["flops"]
        for i in range(1, len(parts) + 1):
            acc[".".join(parts[:i])] += r["flops"]
    return acc


def cia_table():
    t = torch.export.default_decompositions()
    return {
        k: t[k]
        for k in list(t.keys())
        if torch._C._dispatch_has_kernel_for_dispatch_key(k.name(), "CompositeImplicitAutograd")
    }


def main():
    name, out_path = sys.argv[1], sys.argv[2]
    res = dict(model=name, torch=torch.__version__, methods={})
    t = time.perf_counter()
    model = build(name)
    res["build_s"] = time.perf_counter() - t
    res["params"] = sum(p.numel() for p in model.parameters())
    x = torch.randn(1, 3, 224, 224)
    M = res["methods"]

    def timed(key, fn):
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                r = fn()
            M[key] = dict(ok=True, time_s=time.perf_counter() - t0)
            return r
        except Exception as e:
            M[key] = dict(
                ok=False,
                time_s=time.perf_counter() - t0,
                error=first_line(e),
                tb=traceback.format_exc()[-1500:],
            )
            return None

    # plain forward (reference time)
    timed("forward", lambda: model(x))

    # ground truth: dispatch-mode recorder with hook call stack, real tensors
    r = timed("dispatch_real", lambda: run_dispatch(model, x, False))
    gt = None
    if r is not None:
        gt, shared = r
        M["dispatch_real"].update(summarise(gt))
        M["dispatch_real"]["shared_calls"] = shared
        M["dispatch_real"]["mt_agree"] = sum(1 for q in gt if q["mt"] == q["path"])
        M["dispatch_real"]["first_agree"] = sum(1 for q in gt if q["first"] == q["path"])
        M["dispatch_real"]["mt_disagree_examples"] = [
            (q["op"], q["path"], q["mt"]) for q in gt if q["mt"] != q["path"]
        ][:5]
        res["gt_records"] = gt

    r = timed("dispatch_fake", lambda: run_dispatch(model, x, True))
    if r is not None:
        M["dispatch_fake"].update(summarise(r[0], gt))

    # FlopCounterMode
    def fcm():
        with FlopCounterMode(display=False) as f:
            model(x)
        return f

    f = timed("flopcounter", fcm)
    if f is not None:
        M["flopcounter"]["total"] = f.get_total_flops()
        counts = f.get_flop_counts()
        fc_mod = {}
        for k, v in counts.items():
            if k == "Global":
                continue
            path = k.split(".", 1)[1] if "." in k else ""
            fc_mod[path] = sum(v.values())
        M["flopcounter"]["modules"] = len(fc_mod)
        M["flopcounter"]["per_op"] = {str(op): c for op, c in counts.get("Global", {}).items()}
        if gt is not None:
            mine = module_flops_from(gt)
            mine_first = module_flops_from([dict(q, path=q["first"]) for q in gt])
            M["flopcounter"]["module_match_callpath"] = sum(1 for k, v in fc_mod.items() if mine.get(k) == v)
            M["flopcounter"]["module_match_firstname"] = sum(
                1 for k, v in fc_mod.items() if mine_first.get(k) == v
            )
            M["flopcounter"]["module_mismatch_examples"] = [
                (k, v, mine_first.get(k)) for k, v in fc_mod.items() if mine_first.get(k) != v
            ][:5]

    # torch.fx symbolic trace (today's approach) - baseline
    g = timed("fx_symbolic", lambda: fx.symbolic_trace(model))
    if g is not None:
        M["fx_symbolic"]["nodes"] = len(g.graph.nodes)

    # make_fx variants (record_module_stack needs f._orig_mod)
    def mk(**kw):
        def f(inp):
            return model(inp)

        f._orig_mod = model
        return make_fx(f, record_module_stack=True, **kw)(x)

    for key, kw in [
        ("makefx_real", dict(tracing_mode="real")),
        ("makefx_fake", dict(tracing_mode="fake", _allow_non_fake_inputs=True)),
        ("makefx_predispatch", dict(tracing_mode="fake", _allow_non_fake_inputs=True, pre_dispatch=True)),
    ]:
        g = timed(key, lambda: mk(**kw))
        if g is not None:
            recs, nn = graph_records(g)
            M[key].update(summarise(recs, gt, nn))
            M[key]["call_function"] = sum(1 for n in g.graph.nodes if n.op == "call_function")

    # torch.export non-strict
    ep = timed("export", lambda: torch.export.export(model, (x,), strict=False))
    if ep is not None:
        recs, nn = graph_records(ep.graph_module)
        M["export"].update(summarise(recs, gt, nn))
        M["export"]["call_function"] = sum(1 for n in ep.graph.nodes if n.op == "call_function")
        for key, arg in [("export_functional", {}), ("export_cia", "cia"), ("export_core", None)]:
            if arg == "cia":
                arg = cia_table()
            e2 = timed(
                key,
                (lambda a=arg: ep.run_decompositions(a))
                if arg is not None
                else (lambda: ep.run_decompositions()),
            )
            if e2 is not None:
                recs, nn = graph_records(e2.graph_module)
                M[key].update(summarise(recs, gt, nn))
                M[key]["call_function"] = sum(1 for n in e2.graph.nodes if n.op == "call_function")
    for v in M.values():
        if "path_disagree_examples" in v:
            v["path_disagree_examples"] = [list(map(str, e)) for e in v["path_disagree_examples"]]
    with open(out_path, "w") as fh:
        json.dump(res, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
