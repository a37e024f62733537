"""``make reliability``: builds and prints the three tables at full size; exit 1 if any total is off.

python -m tests.reliability [--size ci|full] [--only crash|faults|bad_input]
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tests.reliability.table import Size, Table

TABLES = ("crash", "faults", "bad_input")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability")
    parser.add_argument("--size", choices=("ci", "full"), default="full")
    parser.add_argument("--only", choices=TABLES)
    arguments = parser.parse_args()
    size: Size = arguments.size
    healthy = True
    for name in [arguments.only] if arguments.only else TABLES:
        module = importlib.import_module(f"tests.reliability.{name}")
        table: Table = module.table(size)
        print(table.render(), end="\n\n", flush=True)
        healthy = healthy and module.healthy(table)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
