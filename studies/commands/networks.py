"""``dse networks``: the built-in networks (or the layers of one network)."""

from __future__ import annotations

import argparse

from costmodel.networks import BUILTIN
from costmodel.workloads import load_network

from ..outputs import open_output
from ..tables import format_table, write_rows

# The same three counts in both views: layer entries (as listed, each with its repeat count),
# distinct shapes among them (what a search maps), and layers per inference (repeats counted).
COLUMNS = ("network", "entries", "distinct_shapes", "layers", "macs", "source")
TABLE_COLUMNS = (("network", "network", None), ("entries", "entries", "d"),
                 ("shapes", "distinct_shapes", "d"), ("layers", "layers", "d"), ("MACs", "macs", ","),
                 ("GMACs", "gmacs", ".3f"), ("source", "source", None))
LAYER_COLUMNS = ("layer", "layer_type", "count", "dims", "strides", "macs", "total_macs")
LAYER_TABLE_COLUMNS = (("layer", "layer", None), ("type", "layer_type", None), ("x", "count", "d"),
                       ("dimensions", "dims", None), ("stride", "strides", None), ("MACs", "macs", ","),
                       ("MACs x count", "total_macs", ","))


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "networks", help="list the built-in networks, or the layers of one network",
        description="Without NETWORK: the built-in networks with their layer entries (each listed once "
                    "with its repeat count), the distinct shapes among them (what a search maps), layers "
                    "per inference (repeats counted) and MACs. With NETWORK (a built-in name, a .m file "
                    "or an .onnx model): its layer entries.")
    p.add_argument("network", nargs="?", metavar="NETWORK", help="show this network's layers")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="output format (default: table)")
    p.add_argument("--output", metavar="PATH", help="write the output here instead of stdout")
    p.set_defaults(run=run)


def _network_rows() -> list[dict]:
    rows = []
    for name, factory in BUILTIN.items():
        net = factory()
        rows.append({"network": name, "entries": len(net.layers), "distinct_shapes": len(net.unique_shapes()),
                     "layers": net.num_layers, "macs": net.total_macs, "gmacs": net.total_macs / 1e9,
                     "source": net.source})
    return rows


def _layer_rows(spec: str) -> tuple[list[dict], str]:
    loaded = load_network(spec)
    rows = []
    for layer, _ in loaded.layers:
        rows.append({"layer": layer.name, "layer_type": layer.layer_type.value, "count": layer.count,
                     "dims": " ".join(f"{n}={v}" for n, v in layer.dims),
                     "strides": " ".join(f"{n}={v}" for n, v in layer.strides if v != 1),
                     "macs": layer.true_macs, "total_macs": layer.true_macs * layer.count})
    layers = sum(r["count"] for r in rows)
    shapes = len({layer.shape_key for layer, _ in loaded.layers})
    summary = (f"{loaded.name}: {len(rows)} layer entries ({shapes} distinct shapes), {layers} layers per "
               f"inference, {loaded.total_macs:,} MACs" + (f" ({loaded.source})" if loaded.source else ""))
    if loaded.unsupported:
        summary += f"\nleft out (unsupported): {', '.join(loaded.unsupported)}"
    return rows, summary


def run(args: argparse.Namespace) -> int:
    if args.network:
        rows, summary = _layer_rows(args.network)
        columns, table_columns = LAYER_COLUMNS, LAYER_TABLE_COLUMNS
    else:
        rows, summary = _network_rows(), ""
        columns, table_columns = COLUMNS, TABLE_COLUMNS
    with open_output(args.output) as out:
        if args.format == "table":
            if summary:
                out.write(summary + "\n")
            out.write(format_table(rows, table_columns))
        else:
            write_rows(out, rows, columns, args.format)
    return 0
