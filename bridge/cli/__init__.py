"""``billing-bridge``: the operator's command line. Thin: parse, call a service, print text or JSON.

Exit codes: 0 ok, 1 runtime failure, 2 bad input. Errors are one line on stderr; ``--debug`` adds the
traceback. Each module here holds the commands of one area.
"""

from bridge.cli.base import cli, main

__all__ = ["cli", "main"]
