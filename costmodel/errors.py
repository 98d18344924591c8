"""The project's exception hierarchy.

Every error a user can cause derives from :class:`DseError` and also from the builtin a caller would
naturally catch (``ValueError`` for bad input), so library users can handle either. Each class carries
structured details besides its message, so the command line can print one clear line per problem.
"""

from __future__ import annotations


class DseError(Exception):
    """Root of every error raised by dataflow-dse."""


class ParseError(DseError, ValueError):
    """A MAESTRO ``.m``, hardware or specification file could not be read.

    ``file``, ``line`` and ``column`` locate the problem (1-based); ``expected`` says what the
    parser wanted there.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 column: int | None = None, expected: str | None = None) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.expected = expected
        self.reason = message
        where = file or "<input>"
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        text = f"{where}: {message}"
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)


class MappingError(DseError, ValueError):
    """A dataflow cannot be evaluated on a layer (and accelerator).

    ``layer`` names the layer, ``level`` the cluster level (0 = outermost), ``directive`` the
    directive as written, ``reason`` what is wrong.
    """

    def __init__(self, reason: str, *, layer: str | None = None, level: int | None = None,
                 directive: str | None = None) -> None:
        self.layer = layer
        self.level = level
        self.directive = directive
        self.reason = reason
        parts = []
        if layer is not None:
            parts.append(f"layer {layer}")
        if level is not None:
            parts.append(f"cluster level {level}")
        if directive is not None:
            parts.append(directive)
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {reason}" if prefix else reason)


class SpecError(DseError, ValueError):
    """A specification (command-line value, study spec, tech table) is invalid; ``key`` is its path."""

    def __init__(self, reason: str, *, key: str | None = None) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}" if key else reason)


class InfeasibleError(DseError, ValueError):
    """Nothing satisfies the constraints; ``constraint`` names the one that binds."""

    def __init__(self, reason: str, *, constraint: str | None = None) -> None:
        self.constraint = constraint
        self.reason = reason
        super().__init__(reason)
