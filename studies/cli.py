"""The ``dse`` command line: one subcommand per module in ``studies.commands``.

Exit codes: 0 success; 2 bad input (a file, layer, flag or value the user gave), reported as one line
per problem on stderr; 1 a failure of the tool itself.
"""

from __future__ import annotations

import argparse
import errno
import sys
import traceback

from costmodel import DseError

from .commands import (
    codesign,
    common,
    dashboard,
    import_onnx,
    networks,
    query,
    study,
    sweep,
    validate,
    worker,
)
from .commands import eval as eval_cmd
from .commands import map as map_cmd
from .storage import password_warning, storage_url

COMMANDS = (eval_cmd, map_cmd, codesign, worker, study, query, dashboard, sweep, networks, import_onnx,
            validate)


_PATH_ERRORS = {errno.ENAMETOOLONG, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM,
                errno.ELOOP, errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EEXIST}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's usage errors: one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dse", description="DNN dataflow cost model, mapping search and accelerator "
                                             "co-design (MAESTRO-compatible).")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


# Commands that may run Optuna: its per-trial log lines are silenced (our own progress lines say what
# happens). The others never import it.
_OPTUNA_COMMANDS = {"map", "codesign", "worker", "study", "query", "dashboard"}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in _OPTUNA_COMMANDS:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if hasattr(args, "storage"):      # --storage, --storage-file, $DSE_STORAGE or the default
            args.storage = storage_url(args.storage, args.storage_file)
            warning = password_warning(sys.argv[1:] if argv is None else argv)
            if warning:
                print(f"dse {args.command}: {warning}", file=sys.stderr)
        return args.run(args)
    except (DseError, common.UsageError) as exc:
        print(f"dse {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dse {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        if exc.filename is None or exc.errno not in _PATH_ERRORS:
            return _internal(args, exc)
        # A path the user named that the system refuses (too long, a loop, no permission, full disk).
        print(f"dse {args.command}: {str(exc.filename)[:100]}: {exc.strerror}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug of ours: say so plainly
        return _internal(args, exc)


def _internal(args: argparse.Namespace, exc: BaseException) -> int:
    if args.debug:
        traceback.print_exception(exc)
    print(f"dse {args.command}: internal error: {type(exc).__name__}: {exc} "
          "(run with --debug for the traceback, and please report it)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
