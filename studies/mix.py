"""Workload mixes: several networks co-designed onto one accelerator, each with a weight and, if asked,
a latency target.

A mix is given as ``--network NAME[:weight=W]`` several times. A trial maps every distinct layer shape
of every network once (shapes shared between networks are searched once: the mapping cache is keyed by
shape) and records, per network, its latency (cycles and ms at the study's clock), energy (nJ) and EDP
(cycles x nJ); the study's objectives are the weighted sums over the networks (``sum w_n x latency_n``,
likewise for energy and EDP).

A target is ``--max-latency-ms NET=MS`` or ``--min-fps NET=FPS`` (``1000 / FPS`` ms), checked on one
inference of the network at ``--clock-mhz`` (default :data:`CLOCK_MHZ`). Each target is an Optuna
constraint, ``latency_<NET>`` = (latency - target) / target, next to the budget's, so a design that
misses one never wins. A target that no design of the space could meet even at its compute bound
(every MAC of the network on the most PEs x SIMD lanes the budget allows, one per lane per cycle: the
cost model never runs a layer faster, see ``pe_peak_cycles``) is refused before the study starts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from costmodel import InfeasibleError, Layer, SpecError

CLOCK_MHZ = 1000.0
TARGET_FLAGS = {"max_latency_ms": "--max-latency-ms", "min_fps": "--min-fps"}
_WEIGHT = re.compile(r"(?P<name>.*):weight=(?P<weight>[^:]*)")


def parse_network_arg(text: str) -> tuple[str, float]:
    """``NAME`` or ``NAME:weight=W`` (W > 0) -> (NAME, W)."""
    m = _WEIGHT.fullmatch(text)
    if m is None:
        return text, 1.0
    name, raw = m.group("name"), m.group("weight")
    if not name:
        raise SpecError(f"'{text[:60]}' names no network before ':weight='", key="--network")
    return name, positive(raw, f"the weight of {name[:60]}", "--network")


def positive(raw: str, what: str, key: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SpecError(f"{what} must be a positive number, got '{raw[:40]}'", key=key) from None
    if not (value > 0 and math.isfinite(value)):
        raise SpecError(f"{what} must be a positive number, got {raw[:40]}", key=key)
    return value


def parse_assignment(text: str, flag: str, *, what: str = "value") -> tuple[str | None, float]:
    """``NET=VALUE`` -> (NET, VALUE); a bare ``VALUE`` -> (None, VALUE) (one network only)."""
    if "=" in text:
        name, raw = text.rsplit("=", 1)
        if not name:
            raise SpecError(f"expected NET={what.upper()}, got '{text[:60]}'", key=flag)
        return name, positive(raw, f"the {what} of {name[:60]}", flag)
    try:
        float(text)
    except ValueError:
        raise SpecError(f"expected NET={what.upper()} (e.g. resnet50=5), got '{text[:60]}'",
                        key=flag) from None
    return None, positive(text, f"the {what}", flag)


def resolve(name: str | None, known: Mapping[str, str], flag: str) -> str:
    """The network a flag's ``NET`` means: a network's name, or the argument it was given as (a file
    path); ``None`` is the only network, if there is one. ``known``: argument or name -> name."""
    names = list(dict.fromkeys(known.values()))
    if name is None:
        if len(names) == 1:
            return names[0]
        raise SpecError(f"with several networks, say which one: NET=VALUE (NET one of {', '.join(names)})",
                        key=flag)
    if name in known:
        return known[name]
    raise SpecError(f"'{name[:60]}' is not a network of the study (networks: {', '.join(names)})", key=flag)


def target_ms(kind: str, value: float) -> float:
    """A target as a latency limit in ms: ``max_latency_ms`` as given, ``min_fps`` as 1000 / FPS."""
    return float(value) if kind == "max_latency_ms" else 1000.0 / float(value)


def target_text(kind: str, value: float, net: str) -> str:
    """A target as it was typed: ``--min-fps bert_base=30``."""
    return f"{TARGET_FLAGS[kind]} {net}={value:.12g}"


def cycles_to_ms(cycles: float, clock_mhz: float) -> float:
    return float(cycles) / (clock_mhz * 1e3)


def compute_bound_cycles(layers: Iterable[Layer], lanes: int) -> int:
    """The fewest cycles any mapping can take for ``layers`` (repeats counted) on ``lanes`` MAC units
    (PEs x SIMD lanes): each layer at least ceil(MACs / lanes) cycles."""
    return sum(layer.count * -(-layer.true_macs // lanes) for layer in layers)


def violation(latency_ms: float, limit_ms: float) -> float:
    """The constraint value of a target: (latency - target) / target, <= 0 when met."""
    return (latency_ms - limit_ms) / limit_ms


def check_reachable(layers_by_net: Mapping[str, list[Layer]], targets: Mapping[str, list],
                    clock_mhz: float, *, pes: int, lanes: int) -> None:
    """Refuse a target that even the compute bound on ``pes`` x ``lanes`` misses (InfeasibleError, naming
    the network, its MACs and the bound)."""
    for net, (kind, value) in targets.items():
        layers = layers_by_net[net]
        bound = compute_bound_cycles(layers, pes * lanes)
        bound_ms = cycles_to_ms(bound, clock_mhz)
        limit = target_ms(kind, value)
        if violation(bound_ms, limit) > 0:
            macs = sum(layer.count * layer.true_macs for layer in layers)
            raise InfeasibleError(
                f"{target_text(kind, value, net)}: no design can meet it: {net} needs at least "
                f"{bound_ms:.4g} ms (its {macs:,} MACs on at most {pes} PEs x {lanes} SIMD lanes within the "
                f"budget, one MAC per lane per cycle, {bound:,} cycles at {clock_mhz:g} MHz) against the "
                f"target {limit:.4g} ms; relax the target, raise --clock-mhz or widen the hardware space",
                constraint=f"latency_{net}")


def network_figures(layers: Mapping[str, dict], members: list[tuple[str, float, list[Layer]]],
                    clock_mhz: float) -> dict[str, dict]:
    """Per network, from a trial's per-layer figures (``{layer name: {count, runtime, energy}}``): its
    latency in cycles and ms, energy in nJ and EDP."""
    out = {}
    for net, _weight, net_layers in members:
        cycles = sum(layers[layer.name]["count"] * layers[layer.name]["runtime"] for layer in net_layers)
        energy = sum(layers[layer.name]["count"] * layers[layer.name]["energy"] for layer in net_layers)
        out[net] = {"latency_cycles": int(cycles), "latency_ms": cycles_to_ms(cycles, clock_mhz),
                    "energy_nj": float(energy), "edp": float(cycles) * float(energy)}
    return out


def weighted(figures: Mapping[str, dict], weights: Mapping[str, float]) -> dict[str, float]:
    """The mix's objectives: per figure, the weighted sum over the networks."""
    return {key: sum(weights[n] * figures[n][key] for n in weights)
            for key in ("latency_cycles", "energy_nj", "edp")}


__all__ = ["CLOCK_MHZ", "TARGET_FLAGS", "check_reachable", "compute_bound_cycles", "cycles_to_ms",
           "network_figures", "parse_assignment", "parse_network_arg", "resolve", "target_ms", "target_text",
           "violation", "weighted"]
