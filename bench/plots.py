"""The PNG plots of the report: lag distributions and lag versus launch rate.

Benchmarks hand their series over with ``add_distribution`` and ``add_rate_point``
while they run; ``python -m bench`` calls ``write`` once at the end. Without
matplotlib the plots are skipped (the report says so) and nothing else breaks.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

_distributions: dict[str, dict[str, list[float]]] = defaultdict(dict)
_rates: dict[str, list[tuple[float, float, float]]] = defaultdict(list)


def add_distribution(title: str, system: str, lags_s: list[float]) -> None:
    """Start lags (seconds) of one system in one scenario, for a CDF plot."""
    _distributions[title][system] = sorted(lags_s)


def add_rate_point(system: str, rate: float, p50_s: float, p99_s: float) -> None:
    _rates[system].append((rate, p50_s, p99_s))


def write(directory: Path) -> list[str]:
    """Write every plot into ``directory``; returns the file names (or a reason)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ["(plots skipped: matplotlib is not installed)"]
    written: list[str] = []
    if _distributions:
        count = len(_distributions)
        fig, axes = plt.subplots(1, count, figsize=(5 * count, 4), squeeze=False)
        for axis, (title, series) in zip(axes[0], sorted(_distributions.items()), strict=True):
            for system, lags in sorted(series.items()):
                ys = [(i + 1) / len(lags) for i in range(len(lags))]
                axis.step([v * 1e3 for v in lags], ys, where="post", label=system)
            axis.set(title=title, xlabel="start lag (ms)", ylabel="fraction of runs")
            axis.grid(alpha=0.3)
            axis.legend()
        fig.tight_layout()
        fig.savefig(directory / "lag_distribution.png", dpi=100)
        plt.close(fig)
        written.append("lag_distribution.png")
    if _rates:
        fig, axis = plt.subplots(figsize=(7, 4.5))
        for system, points in sorted(_rates.items()):
            points.sort()
            rates = [p[0] for p in points]
            line = axis.plot(rates, [p[1] * 1e3 for p in points], marker="o", label=f"{system} p50")
            axis.plot(
                rates,
                [p[2] * 1e3 for p in points],
                marker="x",
                linestyle="--",
                color=line[0].get_color(),
                label=f"{system} p99",
            )
        axis.set(xlabel="launches per second", ylabel="start lag (ms)", yscale="log")
        axis.set_title("Start lag versus launch rate")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(directory / "lag_vs_rate.png", dpi=100)
        plt.close(fig)
        written.append("lag_vs_rate.png")
    return written
