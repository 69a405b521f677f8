"""`python -m sixcheck`: the helpers around a run (the checks themselves run under pytest).

python -m sixcheck discover [--vantage router|host|outside] [-o FILE]
python -m sixcheck index REPORT_DIR [--keep N]
python -m sixcheck prometheus RESULTS.json OUT.prom
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sixcheck",
        description="sixcheck helpers; run the checks with `pytest --profile NAME`.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser(
        "discover", help="print a starter profile from what this node sees now (read-only)"
    )
    d.add_argument(
        "--vantage",
        choices=("router", "host", "outside"),
        default=None,
        help="what this node is (default: router if it forwards IPv6, else host)",
    )
    d.add_argument("-o", "--output", metavar="FILE", help="write the profile here, not stdout")
    d.add_argument(
        "--ra-listen",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also listen this long for Router Advertisements on LAN/upstream interfaces "
        "(needs CAP_NET_RAW; default 0: off)",
    )
    i = sub.add_parser("index", help="prune a report folder and rewrite its index.html")
    i.add_argument("report_dir", metavar="REPORT_DIR")
    i.add_argument(
        "--keep", type=int, default=30, metavar="N", help="runs kept per profile (0: all)"
    )
    m = sub.add_parser("prometheus", help="turn a JSON results file into a node_exporter textfile")
    m.add_argument("results", metavar="RESULTS.json")
    m.add_argument("output", metavar="OUT.prom")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "index":
        from . import history

        if args.keep < 0:
            print("sixcheck: --keep must be 0 or more", file=sys.stderr)
            return 2
        try:
            removed, index = history.rotate(Path(args.report_dir), args.keep)
        except history.HistoryError as exc:
            print(f"sixcheck: {exc}", file=sys.stderr)
            return 1
        print(f"{index} ({len(removed)} old files removed)")
        return 0
    if args.command == "prometheus":
        from . import baseline, prometheus

        try:
            doc = baseline.load(Path(args.results))
        except baseline.BaselineError as exc:
            print(f"sixcheck: {exc}", file=sys.stderr)
            return 4
        prometheus.write(Path(args.output), doc)
        return 0
    from . import discover

    text = discover.discover(vantage=args.vantage, ra_listen=args.ra_listen)
    if args.output:
        from .report import write_atomic

        write_atomic(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `python -m sixcheck discover | head`
        sys.exit(0)
