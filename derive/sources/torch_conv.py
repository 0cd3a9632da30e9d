"""Torch's convolution and pooling, modules and ``F.`` functions, read as the ops of `derive.ops.conv` and
`derive.ops.pool`: the options are read the same way from a module's attributes or a call's arguments,
sizes become one int per spatial dim, ``padding="same"``/``"valid"`` become explicit (possibly uneven)
padding, and what derive does not model is refused by name (``padding_mode``, ``ceil_mode=True``,
``return_indices=True``, ``divisor_override``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from derive.model.build import Ref

if TYPE_CHECKING:
    from derive.sources.torch_ops import Call

#: each op's options in the order of the ``F.`` function's arguments after the input
_CONV = ("weight", "bias", "stride", "padding", "dilation", "groups")
_MAX_POOL = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_AVG_POOL = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
_DEFAULTS = {"bias": None, "stride": None, "padding": 0, "dilation": 1, "groups": 1, "ceil_mode": False,
             "return_indices": False, "count_include_pad": True, "divisor_override": None, "padding_mode": "zeros"}


def _options(call: Call, names: tuple[str, ...]) -> dict[str, Any]:
    """The call's options by name: a module's attributes, or a function's arguments after its input."""
    if call.node.op == "call_module":
        return {n: getattr(call.module, n, _DEFAULTS.get(n)) for n in (*names, "padding_mode")}
    options = {n: _DEFAULTS.get(n) for n in names}
    options.update(zip(names, call.args[1:]))
    options.update((k, v) for k, v in call.kwargs.items() if k != "input")
    return options


def _per_dim(call: Call, value: Any, nd: int, name: str) -> tuple[int, ...]:
    """An int or a sequence of ints as one int per spatial dim."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * nd
    if len(values) != nd or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        call.refuse(f"{name}={value!r} (one int, or one per spatial dim)")
    return values


def conv(nd: int) -> Callable[[Call], Ref]:
    def lower(call: Call) -> Ref:
        options = _options(call, _CONV)
        if call.node.op == "call_module":
            path = call.node.target
            weight, bias = call.reader.parameter(path, "weight"), call.reader.parameter(path, "bias")
            kernel = tuple(call.module.kernel_size)
            if options["padding_mode"] != "zeros":
                call.refuse(f"padding_mode={options['padding_mode']!r} (zeros only)")
        else:
            weight, bias = options["weight"], options["bias"]
            kernel = tuple(weight.real.shape[2:])
        dilation = _per_dim(call, options["dilation"], nd, "dilation")
        padding = options["padding"]
        if padding == "valid":
            padding = ((0, 0),) * nd
        elif padding == "same":  # torch pads d(k − 1) in all, the odd one after
            padding = tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation))
        else:
            padding = tuple((p, p) for p in _per_dim(call, padding, nd, "padding"))
        stride = _per_dim(call, options["stride"] or 1, nd, "stride")
        return call.op("conv", call.args[0], weight, bias, stride=stride, padding=padding, dilation=dilation,
                       groups=int(options["groups"]))

    return lower


def _window(call: Call, options: dict[str, Any], nd: int) -> dict[str, tuple[int, ...]]:
    """kernel, stride (the kernel's when not given) and padding of a pooling call; refuse ceil_mode."""
    if options["ceil_mode"]:
        call.refuse("ceil_mode=True")
    kernel = _per_dim(call, options["kernel_size"], nd, "kernel_size")
    stride = options["stride"]
    stride = kernel if stride is None or stride == [] or stride == () else _per_dim(call, stride, nd, "stride")
    return {"kernel": kernel, "stride": stride, "padding": _per_dim(call, options["padding"], nd, "padding")}


def max_pool(nd: int) -> Callable[[Call], Ref]:
    def lower(call: Call) -> Ref:
        options = _options(call, _MAX_POOL)
        if options["return_indices"]:
            call.refuse("return_indices=True")
        dilation = _per_dim(call, options["dilation"], nd, "dilation")
        return call.op("max_pool", call.args[0], **_window(call, options, nd), dilation=dilation)

    return lower


def avg_pool(nd: int) -> Callable[[Call], Ref]:
    def lower(call: Call) -> Ref:
        options = _options(call, _AVG_POOL)
        if options["divisor_override"] is not None:
            call.refuse(f"divisor_override={options['divisor_override']!r}")
        return call.op("avg_pool", call.args[0], **_window(call, options, nd),
                       count_include_pad=bool(options["count_include_pad"]))

    return lower


def adaptive_avg_pool(nd: int) -> Callable[[Call], Ref]:
    def lower(call: Call) -> Ref:
        size = _options(call, ("output_size",))["output_size"]
        spatial = tuple(call.args[0].real.shape[-nd:])
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * nd
        if len(sizes) != nd:
            call.refuse(f"output_size={size!r} (one int, or one per spatial dim)")
        sizes = tuple(length if s is None else s for s, length in zip(sizes, spatial))  # None keeps the size
        return call.op("adaptive_avg_pool", call.args[0], output_size=_per_dim(call, sizes, nd, "output_size"))

    return lower


def _with_indices(call: Call) -> Ref:
    call.refuse("return_indices=True")
    raise AssertionError("refused")  # pragma: no cover


MODULES: dict[str, Callable[[Call], Ref]] = {
    "Conv1d": conv(1), "Conv2d": conv(2), "MaxPool1d": max_pool(1), "MaxPool2d": max_pool(2),
    "AvgPool1d": avg_pool(1), "AvgPool2d": avg_pool(2),
    "AdaptiveAvgPool1d": adaptive_avg_pool(1), "AdaptiveAvgPool2d": adaptive_avg_pool(2),
}  # fmt: skip


def functions(F: Any) -> dict[Any, Callable[[Call], Ref]]:
    """The ``F.`` functions (``F.conv2d`` is ``torch.conv2d``: both are read)."""
    return {
        F.conv1d: conv(1), F.conv2d: conv(2), F.max_pool1d: max_pool(1), F.max_pool2d: max_pool(2),
        F.avg_pool1d: avg_pool(1), F.avg_pool2d: avg_pool(2),
        F.adaptive_avg_pool1d: adaptive_avg_pool(1), F.adaptive_avg_pool2d: adaptive_avg_pool(2),
        F.max_pool1d_with_indices: _with_indices, F.max_pool2d_with_indices: _with_indices,
    }  # fmt: skip
