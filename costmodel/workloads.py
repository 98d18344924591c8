"""One way for every command to name a network: a built-in name, a MAESTRO ``.m`` file or an ONNX model."""

from __future__ import annotations

import difflib
import re
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
    built-in networks and ONNX models), the operators an ONNX import left out with the MACs they held
    (``"Einsum x2 (8,192 MACs, 12 % of the model)"``) and its notes."""

    name: str
    layers: list[Pair]
    unsupported: list[str] = field(default_factory=list)
    source: str = ""
    notes: list[str] = field(default_factory=list)

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
        from .onnx_import import import_onnx

        result = import_onnx(path, strict=strict, dims=dims)
        network = result.network
        return LoadedNetwork(network.name, [(layer, None) for layer in network.layers], result.unsupported,
                             network.source, result.notes)
    builtin = builtin_name(text)
    if path.suffix.lower() == ".m" or (path.is_file() and builtin is None):
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
    if builtin is None:
        guess = difflib.get_close_matches(_key(text), list(_KEYS), n=1, cutoff=0.6)
        hint = f"; did you mean {_KEYS[guess[0]]}?" if guess else ""
        raise SpecError(f"'{text[:100]}' is neither a built-in network ({', '.join(BUILTIN)}) nor a .m or "
                        f".onnx file{hint}", key="network")
    network = BUILTIN[builtin]()
    return LoadedNetwork(network.name, [(layer, None) for layer in network.layers], source=network.source)


def _key(name: str) -> str:
    return re.sub(r"[-_ .]", "", name.lower())


_KEYS = {_key(name): name for name in BUILTIN}


def builtin_name(text: str) -> str | None:
    """The built-in network a name means, spelt as papers do or not (``ResNet-50``, ``BERT-base``,
    ``GPT-2 prefill``); ``None`` if it names none."""
    return _KEYS.get(_key(text))


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


__all__ = ["LoadedNetwork", "builtin_name", "load_network", "merge_repeats"]
