"""`python -m bench`: every benchmark in turn (about 20 minutes); each prints its own figures."""

from __future__ import annotations

import importlib
import sys

ALL = ("latency", "backfill", "watch", "memory", "gui", "wizard")


def main(argv: list[str]) -> None:
    for name in argv or ALL:
        print(f"== bench.{name}", flush=True)
        importlib.import_module(f"bench.{name}").main([])


if __name__ == "__main__":
    main(sys.argv[1:])
