"""deploy/requirements.lock agrees with pyproject.toml (regenerate with `make lock`).

The image installs the lock with ``--no-deps`` and runs ``pip check``, so a
lock missing a transitive dependency fails the image build (the compose
test); this catches the commoner mistake at once: a dependency added or
tightened in pyproject.toml and not locked.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def locked() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "deploy" / "requirements.lock").read_text().splitlines():
        line = line.split(";")[0].strip()
        if line and not line.startswith("#"):
            requirement = Requirement(line)
            [spec] = requirement.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(requirement.name)] = Version(spec.version)
    return pins


def test_every_dependency_and_the_build_backend_is_pinned_within_what_pyproject_allows() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = locked()
    wanted = [*project["project"]["dependencies"], *project["build-system"]["requires"]]
    for raw in wanted:
        requirement = Requirement(raw)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in deploy/requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"deploy/requirements.lock pins {name}=={pins[name]}, outside {raw!r}: run `make lock`"
        )
    for extra_of_celery in ("kombu", "redis"):  # celery[redis]
        assert extra_of_celery in pins
    assert "pipeline" not in pins and "pip" not in pins
