"""`pipeline bench` hands over to the benchmark runner of the checkout; no benchmark runs here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import bench as bench_module
from pipeline.cli.main import cli


def test_bench_help_explains_every_benchmark() -> None:
    result = CliRunner().invoke(cli, ["bench", "--help"])
    assert result.exit_code == 0
    for what in ("images", "batching", "latency", "crawl", "pools", "Amdahl"):
        assert what in result.output


def test_an_unknown_benchmark_is_refused_by_the_runner_with_its_choices() -> None:
    runner = subprocess.run([sys.executable, "-m", "pipeline", "bench", "nope"], capture_output=True, text=True)
    assert runner.returncode == 2
    assert "invalid choice: 'nope'" in runner.stderr
    assert "Traceback" not in runner.stderr


def test_without_a_checkout_it_says_where_the_benchmarks_are(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bench_module, "CHECKOUT", tmp_path)
    result = CliRunner().invoke(cli, ["bench", "pools"])
    assert result.exit_code == 2
    assert "make bench" in result.output
