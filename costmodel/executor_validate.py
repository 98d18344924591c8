"""The cost model checked against the reference executor, figure by figure (``dse validate``).

:func:`validate` evaluates one layer with the default model (:func:`costmodel.evaluate`) and plays it
out with :func:`costmodel.executor.execute`, and pairs their figures. Which figures are compared, and
what each side's value means:

* ``num_macs``: MAESTRO's MAC count (the model) against the MACs the PEs execute (the executor; its
  coverage also says how many of the layer's MACs are skipped or repeated);
* ``l1_size_req``: per PE, double-buffered; the output tile measured over its input window on both
  sides (the model's convention, semantics doc 4.7); ``l1_size_req_outputs`` gives the executor's
  literal output tile for information;
* ``l2_size_req``, ``input_l2_reads``, ``weight_l2_reads``, ``output_l2_writes``, ``runtime_cycles``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .accelerator import Accelerator
from .cost import evaluate
from .dataflow import Dataflow
from .errors import DseError
from .executor import ExecutionReport, execute
from .layer import Layer

COMPARED = ("num_macs", "l1_size_req", "l2_size_req", "input_l2_reads", "weight_l2_reads",
            "output_l2_writes", "runtime_cycles")


@dataclass(frozen=True, slots=True, kw_only=True)
class FigurePair:
    figure: str
    model: int
    executor: int

    @property
    def agree(self) -> bool:
        return self.model == self.executor


@dataclass(frozen=True, slots=True, kw_only=True)
class Validation:
    """One layer: both sides' figures, or why a side could not evaluate it."""

    layer: str
    pairs: tuple[FigurePair, ...] = ()
    model_error: str | None = None
    executor_error: str | None = None
    report: ExecutionReport | None = None
    deviations: str = ""

    @property
    def confirmed_invalid(self) -> bool:
        """The model refuses the mapping and the executor shows it does not compute the layer."""
        if self.model_error is None:
            return False
        return self.executor_error is not None or (self.report is not None
                                                   and self.report.coverage_problem() is not None)

    @property
    def agree(self) -> bool:
        """Both sides evaluated and every compared figure is equal, or both find the mapping invalid."""
        if self.model_error is not None:
            return self.confirmed_invalid
        if self.executor_error is not None:
            return False
        return all(p.agree for p in self.pairs)

    def disagreeing(self) -> list[str]:
        return [p.figure for p in self.pairs if not p.agree]


def executor_figures(rep: ExecutionReport) -> dict[str, int]:
    """The executor's figures under the model's conventions (output L1 over its input window)."""
    fig = rep.figures()
    fig["l1_size_req"] = rep.l1_req["input"] + rep.l1_req["weight"] + rep.l1_output_window
    return fig


def validate(layer: Layer, dataflow: Dataflow, accelerator: Accelerator) -> Validation:
    """Evaluate ``layer`` with the model and the executor. Executor limits raise :class:`SpecError`."""
    from .errors import SpecError

    rep = None
    executor_error = None
    try:
        rep = execute(layer, dataflow, accelerator)
    except SpecError:
        raise
    except DseError as e:
        executor_error = str(e)
    try:
        cost = evaluate(layer, dataflow, accelerator, engine="reference")
    except DseError as e:
        return Validation(layer=layer.name, model_error=str(e), executor_error=executor_error, report=rep)
    if rep is None:
        return Validation(layer=layer.name, executor_error=executor_error, deviations=str(cost.deviations))
    ex = executor_figures(rep)
    pairs = tuple(FigurePair(figure=f, model=int(getattr(cost, f)), executor=int(ex[f])) for f in COMPARED)
    return Validation(layer=layer.name, pairs=pairs, report=rep, deviations=str(cost.deviations))


def describe(v: Validation) -> list[str]:
    """Lines for a terminal: each figure's two values and whether they agree, then the coverage."""
    lines = []
    rep = v.report
    if v.model_error is not None:
        lines.append(f"model: refuses the mapping: {v.model_error}")
    if v.executor_error is not None:
        lines.append(f"executor: cannot run the mapping: {v.executor_error}")
    if v.pairs:
        width = max(len(p.figure) for p in v.pairs)
        lines.append(f"{'figure':<{width}}  {'model':>14}  {'executor':>14}  agree")
        for p in v.pairs:
            mark = "yes" if p.agree else "NO"
            lines.append(f"{p.figure:<{width}}  {p.model:>14,}  {p.executor:>14,}  {mark}")
    if rep is not None:
        problem = rep.coverage_problem()
        lines.append("coverage: every MAC of the layer executed exactly once" if problem is None
                     else f"coverage: {problem}")
        lines.append(f"executor: {rep.steps:,} level steps ({rep.top_steps:,} at the top); literal L1 "
                     f"requirement (outputs as output tiles) {rep.l1_size_req:,}; PE-peak bound "
                     f"{rep.pe_peak_cycles:,} cycles")
    if v.model_error is not None:
        lines.append("verdict: " + ("both find the mapping invalid" if v.confirmed_invalid
                                    else "the executor runs every MAC exactly once: the model's refusal "
                                         "is not confirmed"))
    elif v.deviations:
        lines.append(f"model deviations from MAESTRO named: {v.deviations}")
    if v.pairs:
        bad = v.disagreeing()
        lines.append("verdict: " + ("all figures agree" if not bad else "differ on " + ", ".join(bad)))
        if bad:
            lines.extend(_why_they_differ(v))
    return lines


def _why_they_differ(v: Validation) -> list[str]:
    """The documented reasons a difference can have (docs/maestro-deviations.md): a mapping that
    skips or repeats MACs, which the model counts by its tiles, and the one approximation it keeps."""
    why = []
    if v.report is not None and v.report.coverage_problem() is not None:
        why.append("  the mapping does not run every MAC exactly once, so the model's figures (which count "
                   "its tiles, and bound runtime by the layer's MACs over the PEs) need not be what runs")
    if "partial-filter-shift" in v.deviations.split(","):
        why.append("  partial-filter-shift: a filter tile smaller than the filter beside a tiled row; the "
                   "model's counts there are approximate (the output rows a tile computes shift with the "
                   "filter position, which its case analysis does not follow)")
    return why
