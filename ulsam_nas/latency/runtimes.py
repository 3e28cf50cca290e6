"""Running a module the way a deployed network runs it: PyTorch eager (eval mode, no gradients)
or ONNX Runtime on the CPU (the module exported to ONNX, one inference session), at a thread
count.  Each gives a call without arguments to time."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator

import torch
from torch import nn

from ulsam_nas.errors import InvalidInput
from ulsam_nas.latency.device import Device

OPSET = 17


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """PyTorch's intra-op thread count for a while (it is process-wide state)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


Inputs = tuple[torch.Tensor, ...]


def runner(device: Device, module: nn.Module, inputs: Inputs, what: str) -> Callable[[], object]:
    """A call running ``module`` on ``inputs`` under ``device``'s runtime (``what`` names the
    module in an error: an export that fails is refused, not timed some other way)."""
    module = module.eval()
    if device.runtime == "torch":

        def call() -> object:
            with torch.no_grad():
                return module(*inputs)

        return call
    return _onnx_runner(device, module, inputs, what)


def _onnx_runner(device: Device, module: nn.Module, inputs: Inputs, what: str) -> Callable[[], object]:
    import onnxruntime

    names = [f"input{i}" for i in range(len(inputs))]
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            # The TorchScript exporter (dynamo=False) writes to a file object too.
            torch.onnx.export(module, inputs, buffer, dynamo=False, opset_version=OPSET, input_names=names)  # type: ignore[arg-type]
    except Exception as error:  # the exporter raises many kinds; all mean the same here
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InvalidInput(f"{what} cannot be exported to ONNX for ONNX Runtime: {first}") from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = device.threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    # An exported graph keeps only the inputs it uses (a constant-folded one may use none).
    used = {i.name for i in session.get_inputs()}
    feeds = {n: t.detach().numpy() for n, t in zip(names, inputs, strict=True) if n in used}
    return lambda: session.run(None, feeds)
