"""One way for every command to name a network: a built-in name, a MAESTRO ``.m`` file or an ONNX model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from .dataflow import Dataflow
from .errors import ParseError, SpecError
from .layer import Layer
from .mfile import read_network
from .networks import BUILTIN

Pair = tuple[Layer, Dataflow | None]


@dataclass(frozen=True, slots=True)
class LoadedNetwork:
    """A network's name, its layers each with its dataflow (``None`` where none is given: always for
    built-in networks and ONNX models), and the operators an ONNX import left out (``"LSTM x2"``)."""

    name: str
    layers: list[Pair]
    unsupported: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def total_macs(self) -> int:
        return sum(layer.true_macs * layer.count for layer, _ in self.layers)


def load_network(spec: str | Path, *, strict: bool = False,
                 dims: Mapping[str, int] | None = None) -> LoadedNetwork:
    """``spec`` is a built-in network name (``dse networks``), a ``.m`` network file or a ``.onnx`` model.

    ``strict`` and ``dims`` apply to ONNX models (see :func:`costmodel.onnx_import.read_onnx`). A ``.m``
    file with an unreadable layer raises that layer's :class:`ParseError`.
    """
    text = str(spec)
    path = Path(text)
    if path.suffix.lower() == ".onnx":
        from .onnx_import import read_onnx

        network, unsupported = read_onnx(path, strict=strict, dims=dims)
        return LoadedNetwork(network.name, [(layer, None) for layer in network.layers], unsupported,
                             network.source)
    if path.suffix.lower() == ".m" or (path.is_file() and text.lower() not in BUILTIN):
        net = read_network(path)
        bad = [m for m in net.layers if m.error is not None]
        if bad:
            first = bad[0].error
            more = f" (and {len(bad) - 1} more unreadable layer(s))" if len(bad) > 1 else ""
            raise ParseError(f"layer {bad[0].name}: {first.reason}{more}", file=first.file, line=first.line,
                             column=first.column, expected=first.expected)
        if not net.layers:
            raise ParseError("the network has no layers", file=str(path))
        return LoadedNetwork(net.name or path.stem, [(m.layer, m.dataflow) for m in net.layers],
                             source=str(path))
    factory = BUILTIN.get(text.lower())
    if factory is None:
        raise SpecError(f"'{text}' is neither a built-in network ({', '.join(BUILTIN)}) nor a .m or .onnx "
                        "file", key="network")
    network = factory()
    return LoadedNetwork(network.name, [(layer, None) for layer in network.layers], source=network.source)


def merge_repeats(pairs: list[Pair]) -> list[Pair]:
    """Layers of identical shape *and* dataflow merged into one (first name kept, counts summed)."""
    merged: dict[tuple, Pair] = {}
    for layer, dataflow in pairs:
        key = (layer.shape_key, dataflow)
        if key in merged:
            first, _ = merged[key]
            merged[key] = (replace(first, count=first.count + layer.count), dataflow)
        else:
            merged[key] = (layer, dataflow)
    return list(merged.values())


__all__ = ["LoadedNetwork", "load_network", "merge_repeats"]
