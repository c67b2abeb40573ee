"""Every module of pipeline has a place in the layers contract, so a new one cannot dodge it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_every_top_level_module_of_pipeline_is_in_a_layer() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [layers] = [c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    listed = {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}
    package = ROOT / "pipeline"
    modules = {f"pipeline.{p.stem}" for p in package.glob("*.py") if p.stem not in ("__init__", "__main__")}
    modules |= {f"pipeline.{p.name}" for p in package.iterdir() if (p / "__init__.py").exists()}
    assert modules <= listed, f"not in any layer of pyproject.toml: {sorted(modules - listed)}"
