"""The Amdahl fit the pool benchmark reports (pure; no benchmark runs in the test suite)."""

from __future__ import annotations

import pytest

from benchmarks.amdahl import fit_serial_fraction, speedup


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_exact_speedups_give_back_their_serial_fraction(fraction: float) -> None:
    measured = {n: speedup(fraction, n) for n in (1, 2, 4, 8)}
    assert fit_serial_fraction(measured) == pytest.approx(fraction, abs=1e-9)


def test_no_gain_from_more_workers_means_all_serial() -> None:
    assert fit_serial_fraction({1: 1.0, 2: 1.0, 4: 1.0}) == pytest.approx(1.0)


def test_a_slowdown_clamps_to_one_and_a_super_linear_speedup_to_zero() -> None:
    assert fit_serial_fraction({2: 0.7}) == 1.0
    assert fit_serial_fraction({2: 2.3}) == 0.0


def test_nothing_to_fit_without_a_point_beyond_one_worker() -> None:
    assert fit_serial_fraction({1: 1.0}) is None
    assert fit_serial_fraction({}) is None
