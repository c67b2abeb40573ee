"""Amdahl's law: how much of a stage stays serial, estimated from measured speedups.

With a serial fraction ``f`` a stage run on ``n`` workers speeds up by
``S(n) = 1 / (f + (1 - f) / n)``. Rearranged, ``1/S - 1/n = f * (1 - 1/n)``
is linear in ``f`` through the origin, so the least-squares fit over the
measured points has a closed form. A stage that gains nothing from more
workers (the GIL, or a saturated core) fits ``f`` near 1; an embarrassingly
parallel one near 0. On a 2-core machine points with ``n > 2`` processes
measure contention, not the law, and are left out of the fit by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping


def speedup(serial_fraction: float, workers: float) -> float:
    """The speedup Amdahl's law predicts for ``workers`` with ``serial_fraction`` serial work."""
    return 1.0 / (serial_fraction + (1.0 - serial_fraction) / workers)


def fit_serial_fraction(speedups: Mapping[int, float]) -> float | None:
    """Least-squares serial fraction for ``{workers: speedup}``, clamped to [0, 1].

    None when there is nothing to fit (no point with more than one worker).
    A speedup above ``n`` (super-linear, e.g. cache effects) clamps to 0.
    """
    xs_ys = [(1.0 - 1.0 / n, 1.0 / s - 1.0 / n) for n, s in speedups.items() if n > 1 and s > 0]
    denominator = sum(x * x for x, _ in xs_ys)
    if not xs_ys or denominator == 0:
        return None
    fraction = sum(x * y for x, y in xs_ys) / denominator
    return min(1.0, max(0.0, fraction))
