"""The design a study found, shown and written out: a MAESTRO hardware file and the network's mappings
(in a mix, one mapping file per network)."""

from __future__ import annotations

from pathlib import Path

import optuna

from costmodel import SpecError, format_hw, format_network

from . import mapcache
from .codesign import LAYERS_ATTR, CodesignSpec, accelerator_of, mapping_of
from .outputs import check_output_dir, write_text
from .tables import format_table


def layer_rows(study: optuna.Study, spec: CodesignSpec, trial: optuna.trial.FrozenTrial) -> list[dict]:
    """Per layer of the network: its count, figures and the dataflow the trial chose."""
    cache = mapcache.for_study(study)
    chosen = trial.system_attrs.get(LAYERS_ATTR, {})
    rows = []
    for layer in spec.layers():
        info = chosen.get(layer.name, {})
        entry = cache.get(info.get("key", "")) or {}
        rows.append({"layer": layer.name, "count": layer.count, "type": layer.layer_type.value,
                     "runtime_cycles": entry.get("runtime_cycles"), "energy_nj": entry.get("energy_nj"),
                     "utilization": entry.get("utilization"), "l1_size_req": entry.get("l1_size_req"),
                     "l2_size_req": entry.get("l2_size_req"), "searcher": entry.get("searcher"),
                     "status": entry.get("status"), "dataflow": entry.get("dataflow", "")})
    return rows


def format_layers(rows: list[dict]) -> str:
    columns = (("layer", "layer", None), ("x", "count", "d"), ("type", "type", None),
               ("runtime (cycles)", "runtime_cycles", ","), ("energy (nJ)", "energy_nj", ",.1f"),
               ("util", "utilization", "%"), ("L1 req", "l1_size_req", ","), ("L2 req", "l2_size_req", ","),
               ("mapping", "dataflow_short", None))
    for r in rows:
        r["dataflow_short"] = " ".join(r["dataflow"].split())[:60] if r["dataflow"] else "-"
    return format_table(rows, columns)


class Paths(tuple):
    """Several files written, shown as a comma-separated list."""

    def __str__(self) -> str:
        return ", ".join(map(str, self))


def write_design(study: optuna.Study, spec: CodesignSpec, trial: optuna.trial.FrozenTrial,
                 directory: str | Path) -> tuple[Path, Path | Paths]:
    """``hardware.m`` (MAESTRO hardware file) and ``mapping.m`` (the network, each layer with its
    dataflow) of one trial, in ``directory`` (created); in a mix, ``mapping-<network>.m`` per network
    (the second value then lists them)."""
    out = check_output_dir(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecError(f"cannot create {out}: {exc.strerror or exc}", key="--output-dir") from None
    acc = accelerator_of(trial, spec)
    header = (f"best design of study {study.study_name} (trial {trial.number}): {acc.describe()}\n"
              f"objective {', '.join(spec.objectives)}; mappings found by dse codesign's inner search")
    hw_path = write_text(out / "hardware.m", format_hw(acc), "--output-dir")
    if spec.is_mix:
        paths = []
        for net in spec.network_names():
            text = format_network(net, mapping_of(study, trial, spec, net), f"{header}\nnetwork {net} of "
                                  f"the mix {spec.describe_networks()}")
            paths.append(write_text(out / f"mapping-{net}.m", text, "--output-dir"))
        return hw_path, Paths(paths)
    mapping = format_network(spec.network_name, mapping_of(study, trial, spec), header)
    map_path = write_text(out / "mapping.m", mapping, "--output-dir")
    return hw_path, map_path


__all__ = ["Paths", "format_layers", "layer_rows", "write_design"]
