"""One module per ``dse`` subcommand; each exposes ``add_parser(subparsers)`` and ``run(args) -> int``."""
