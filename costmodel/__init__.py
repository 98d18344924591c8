"""dataflow-dse cost model: MAESTRO's analytical model of DNN dataflows, compiled and fixed.

numpy, and Numba for the compiled kernel (imported on first evaluation); pandas only for tables.
Nothing here imports the search or study packages.
"""

from .accelerator import UNLIMITED, Accelerator
from .cost import FIGURES, LayerCost, evaluate, evaluate_batch, evaluate_mixed, set_jobs
from .dataflow import Dataflow, DimSize, Directive, DirectiveKind, Hole
from .errors import DseError, InfeasibleError, MappingError, ParseError, SpecError
from .layer import Layer, LayerType
from .mfile import (
    MappedLayer,
    NetworkFile,
    format_dataflow_template,
    format_hw,
    format_network,
    parse_dataflow,
    parse_hw,
    parse_network,
    read_dataflow,
    read_hw,
    read_network,
)
from .tech import DEFAULT_TECH, Tech

__all__ = [
    "DEFAULT_TECH", "FIGURES", "UNLIMITED", "Accelerator", "Dataflow", "DimSize", "Directive",
    "DirectiveKind", "DseError", "Hole", "InfeasibleError", "Layer", "LayerCost", "LayerType",
    "MappedLayer", "MappingError", "NetworkFile", "ParseError", "SpecError", "Tech", "evaluate",
    "evaluate_batch", "evaluate_mixed", "format_dataflow_template", "format_hw", "format_network",
    "parse_dataflow", "parse_hw", "parse_network", "read_dataflow", "read_hw", "read_network", "set_jobs",
]
