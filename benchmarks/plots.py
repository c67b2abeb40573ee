"""PNG figures of the pool benchmark: speedup vs workers per pool, with the fitted Amdahl curve.

matplotlib is optional (the ``bench`` extra); without it ``plot_stages`` returns
no paths and the benchmark still prints its tables and writes its JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.amdahl import speedup

MARKERS = {"threads": "o", "processes": "s", "asyncio": "^"}


def plot_stages(stages: Mapping[str, Mapping[str, Any]], cores: int, folder: Path) -> list[Path]:
    """One ``pools-<stage>.png`` per stage in ``folder``; [] when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return []
    matplotlib.use("Agg")
    return [plot_stage(name, result, cores, folder / f"pools-{name}.png") for name, result in stages.items()]


def plot_stage(name: str, result: Mapping[str, Any], cores: int, path: Path) -> Path:
    import matplotlib.pyplot as plt

    rows = result["rows"]
    base = next(r["items_per_s"] for r in rows if r["pool"] == "sequential")
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    top, most = 1.0, 1
    pools = [p for p in dict.fromkeys(r["pool"] for r in rows) if p != "sequential"]
    for index, pool in enumerate(pools):
        colour = f"C{index}"
        points = sorted((r["workers"], r["speedup"]) for r in rows if r["pool"] == pool)
        ns, speedups = [n for n, _ in points], [s for _, s in points]
        top, most = max(top, *speedups), max(most, *ns)
        fraction = result["serial_fraction"].get(pool)
        label = pool + (f"  (f = {fraction:.2f})" if fraction is not None else "")
        ax.plot(ns, speedups, marker=MARKERS.get(pool, "D"), color=colour, label=label, linewidth=1.8)
        at_1 = dict(points).get(1)
        if fraction is not None and at_1 is not None and max(ns) > 1:
            dense = [1 + k * (max(ns) - 1) / 200 for k in range(201)]
            ax.plot(dense, [at_1 * speedup(fraction, n) for n in dense], linestyle="--", color=colour, alpha=0.7)
    ticks = sorted({r["workers"] for r in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlim(0.85, most * 1.15)
    ax.set_ylim(0, max(2.2, top * 1.15))
    ax.axhline(1.0, color="black", linewidth=1)
    ax.text(0.9, 1.02, f"sequential = {base:,.0f} items/s", fontsize=8, va="bottom")
    ax.axvline(cores, color="grey", linestyle=":", linewidth=1)
    ax.text(cores * 1.03, 0.05, f"{cores} cores", color="grey", fontsize=8, rotation=90, va="bottom")
    ax.set_xlabel("workers (threads, processes, or requests in flight)")
    ax.set_ylabel("speedup vs sequential")
    ax.set_title(f"{name}: {result['items']} items; dashed: Amdahl fit (f = serial fraction)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
