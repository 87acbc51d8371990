"""Run every benchmark and write ``bench/results/REPORT.md`` (and its PNG plots).

``python -m bench --quick`` runs a short version of each, for CI, so the
benchmarks cannot rot; CI checks that the report is written, not the figures.
A benchmark that fails is reported as such and the others still run: every
engine a benchmark starts is killed when it ends, even on error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import time
import traceback
from pathlib import Path

from bench import plots
from bench.common import Figure, machine

MODULES = [
    "bench.bench_schedule",
    "bench.bench_scale",
    "bench.bench_rate",
    "bench.bench_raft",
    "bench.bench_cluster",
    "bench.bench_faults",
    "bench.bench_burst",
    "bench.bench_alerts",
    "bench.bench_apply",
    "bench.bench_overload",
]
REPORT = Path(__file__).parent / "results" / "REPORT.md"
LIMITS = Path(__file__).parent / "limits.md"
"""What limits the figures that miss their goals, from profiles; the report links to it."""
NOTICE = (
    "Numbers from a shared 2-core machine with other work running are noisy; "
    "compare systems within one report, not across reports. Lags: *dispatch* is the "
    "scheduled instant to the start of the process (the scheduler's own clock: for Odin, "
    "when it opens the start gate of the process it made a second ahead; for the others, "
    "when the spawn call returns); *start* is the instant to the first line of the job's "
    "code (the job's own clock), the figure that judges them all."
)


def _section(name: str, quick: bool, judged: list[tuple[str, Figure]]) -> str:
    began = time.monotonic()
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise
        return f"## {name}\n\n(not present in this tree)"
    title = (module.__doc__ or name).strip().splitlines()[0]
    try:
        figures: list[Figure] = module.run(quick=quick)
    except Exception:  # one broken benchmark must not hide the others' figures
        judged.append((title, Figure(f"{name} FAILED", float("nan"), "", "runs", "", False)))
        return f"## {title}\n\nFAILED:\n\n```\n{traceback.format_exc()[-3000:]}```"
    judged.extend((title, figure) for figure in figures if figure.goal)
    lines = [f"## {title}", "", "| figure | value | goal | note |", "|---|---|---|---|"]
    lines += [figure.row() for figure in figures]
    lines += ["", f"({time.monotonic() - began:.0f} s)"]
    for figure in figures:
        print(f"{figure.name}: {figure.value:.3f} {figure.unit}  (goal {figure.goal or '-'})")
    return "\n".join(lines)


def _summary(judged: list[tuple[str, Figure]]) -> str:
    """One screen first: every figure that has a goal, whether it met it, and where it is."""
    met = sum(1 for _, figure in judged if figure.met)
    lines = [
        f"## Summary: {met} of {len(judged)} goals met",
        "",
        "| figure | value | goal | met? |",
        "|---|---|---|---|",
    ]
    for _title, figure in judged:
        value = "n/a" if figure.value != figure.value else f"{figure.value:.3f} {figure.unit}"
        verdict = {True: "yes", False: "**no**", None: "-"}[figure.met]
        lines.append(f"| {figure.name} | {value} | {figure.goal} | {verdict} |")
    return "\n".join(lines)


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("apscheduler", "matplotlib", "pysyncobj"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            found.append(f"{package} (not installed)")
    return ", ".join(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run, for CI")
    parser.add_argument("--only", action="append", default=[], help="run only this module")
    args = parser.parse_args()
    names = [n for n in MODULES if not args.only or n.rsplit(".", 1)[-1] in args.only]
    began = time.monotonic()
    judged: list[tuple[str, Figure]] = []
    sections = [_section(name, args.quick, judged) for name in names]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    pictures = plots.write(REPORT.parent)
    mode = "quick" if args.quick else "full"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"# Odin benchmark report\n\nMachine: {machine()}. Date: {now}. Mode: {mode}. "
        f"Took {time.monotonic() - began:.0f} s. Versions: {_versions()}.\n\n{NOTICE}\n\n"
        + "".join(f"![{p}]({p})\n" for p in pictures if p.endswith(".png"))
    )
    REPORT.write_text(
        header
        + "\n"
        + _summary(judged)
        + "\n\n"
        + "\n\n".join(sections)
        + "\n\nWhat limits the figures, the designs measured and the history of runs: "
        + f"[bench/limits.md](../{LIMITS.name}).\n"
    )
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
