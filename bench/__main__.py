"""Run every benchmark and write ``bench/results/REPORT.md``.

``python -m bench --quick`` runs a short version of each, for CI, so the
benchmarks cannot rot; CI checks that the report is written, not the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
from pathlib import Path

from bench.common import Figure, machine

MODULES = ["bench.bench_schedule"]
REPORT = Path(__file__).parent / "results" / "REPORT.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run, for CI")
    args = parser.parse_args()
    sections: list[str] = []
    for name in MODULES:
        module = importlib.import_module(name)
        figures: list[Figure] = module.run(quick=args.quick)
        title = (module.__doc__ or name).strip().splitlines()[0]
        lines = [f"## {title}", "", "| figure | value | goal | note |", "|---|---|---|---|"]
        lines += [figure.row() for figure in figures]
        sections.append("\n".join(lines))
        for figure in figures:
            print(f"{figure.name}: {figure.value:.3f} {figure.unit}  (goal {figure.goal or '-'})")
    mode = "quick" if args.quick else "full"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = f"# Odin benchmark report\n\nMachine: {machine()}. Date: {now}. Mode: {mode}.\n"
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(header + "\n" + "\n\n".join(sections) + "\n")
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
