"""Running the ``dse`` command line in-process, as the command-line tests do."""

from __future__ import annotations

from studies.cli import main


def run(capsys, *argv):
    """(exit code, stdout, stderr) of ``dse ARGV...``; arguments may be paths or numbers."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:               # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def write_file(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path
