"""Closed-form costs of the layers every module is built from.

Each function takes output sizes (never derives them), so it stays a polynomial that works on
plain ints and on symbolic :class:`~ulsam_nas.cost.symbolic.Poly` values alike.  Callers pass
``in_per_group`` (input channels seen by one filter) rather than ``groups``, which keeps
depthwise (1) and grouped convolutions free of division.
"""

from __future__ import annotations

from ulsam_nas.cost.cost import GROUPED_WEIGHT_EXTRA, Terms
from ulsam_nas.cost.symbolic import Num


def conv2d(
    in_per_group: Num,
    out_channels: Num,
    kernel: Num,
    out_h: Num,
    out_w: Num,
    bias: bool,
    kernel_w: Num | None = None,
    groups: Num = 1,
) -> Terms:
    """A 2-D convolution: weights out·in_per_group·k_h·k_w, one MAC per weight per output pixel.
    ``groups`` changes no MAC; it is what torch's counter multiplies the weight gradient by."""
    weights = out_channels * in_per_group * kernel * (kernel if kernel_w is None else kernel_w)
    pixels = out_h * out_w
    terms = _weighted("conv", weights, pixels, out_channels if bias else None)
    if not (isinstance(groups, int) and groups == 1):
        macs = weights * pixels
        terms.values[("train", GROUPED_WEIGHT_EXTRA)] = macs * groups + macs * -1  # (groups − 1)·MACs
    return terms


def linear(in_features: Num, out_features: Num, bias: bool, rows: Num = 1) -> Terms:
    """A fully connected layer applied to ``rows`` vectors."""
    weights = in_features * out_features
    return _weighted("linear", weights, rows, out_features if bias else None)


def _weighted(kind: str, weights: Num, applications: Num, biases: Num | None) -> Terms:
    """A layer whose weights each make one MAC per application (output pixel or row), with a
    bias of ``biases`` values added at each application unless None; in training, its input's
    and its weight's gradients, as many MACs each."""
    macs = weights * applications
    values: dict[tuple[str, str], Num] = {
        ("params", "weight"): weights,
        ("macs", kind): macs,
        ("train", f"{kind}_grad_input"): macs,
        ("train", f"{kind}_grad_weight"): macs,
    }
    if biases is not None:
        values[("params", "bias")] = biases
        values[("ops", "bias_add")] = biases * applications
    return Terms.of(values)


def matmul(n: Num, k: Num, p: Num) -> Terms:
    """(n×k) @ (k×p): n·k·p MACs, no parameters; in training, both operands' gradients."""
    return Terms.of({("macs", "matmul"): n * k * p, ("train", "matmul_grad"): 2 * n * k * p})


def batch_norm(channels: Num, elements: Num) -> Terms:
    """Affine BatchNorm over ``channels``: γ and β parameters; ``elements`` normalized."""
    return Terms.of({("params", "bn"): 2 * channels, ("ops", "batch_norm"): elements})


def elementwise(op: str, elements: Num) -> Terms:
    """A parameter-free element-wise operation (see ``OP_UNITS`` for what each op counts)."""
    return Terms.of({("ops", op): elements})
