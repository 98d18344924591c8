"""Optuna Dashboard on a study storage (the optional extra ``pip install 'dataflow-dse[dashboard]'``).

:func:`serve` answers on ``host:port`` (by default 127.0.0.1, this machine only: the dashboard has no
login, and it can rename and delete studies) until interrupted. Co-design studies open well in it:
objectives under their names, hardware parameters in their own units, small study attributes (the
mapping cache lives beside the study, :mod:`studies.mapcache`).
"""

from __future__ import annotations

import socketserver
from collections.abc import Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from costmodel import SpecError

from .storage import open_storage

INSTALL_HINT = "pip install 'dataflow-dse[dashboard]'"


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True            # a page left open does not keep the process alive


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:
        pass                         # one line per request would bury the address printed at start


def app(url: str):
    """The dashboard's WSGI application on the storage ``url`` names (which must exist)."""
    try:
        import optuna_dashboard
    except ImportError:
        raise SpecError(f"the dashboard needs optuna-dashboard: {INSTALL_HINT}", key="dashboard") from None
    return optuna_dashboard.wsgi(open_storage(url, create=False))


def serve(url: str, *, host: str = "127.0.0.1", port: int = 8080,
          ready: Callable[[str], None] | None = None) -> None:
    """Serve the dashboard until KeyboardInterrupt; ``ready`` gets the base URL once it listens (with
    the port the system chose when ``port`` is 0)."""
    application = app(url)
    try:
        server = make_server(host, port, application, server_class=_Server, handler_class=_QuietHandler)
    except OSError as exc:
        raise SpecError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", key="--port") from None
    with server:
        if ready:
            ready(f"http://{host}:{server.server_port}")
        server.serve_forever()


__all__ = ["INSTALL_HINT", "app", "serve"]
