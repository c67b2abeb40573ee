"""Reading docker-compose.yml and deploy/Dockerfile the way docker compose does, without a Docker engine.

``load_project`` parses the compose file with PyYAML (anchors and ``<<`` merge
keys included), interpolates every string from a dotenv file exactly as
compose does (``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
``${VAR:?error}``, ``${VAR?error}``, ``${VAR:+alt}``, ``${VAR+alt}``, ``$$``),
and reads from the Dockerfile what a container of a built service inherits:
ENV, ENTRYPOINT, and which files COPY put where. ``tests/compose/stack.py``
turns the result into local processes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import dockerfile
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_REFERENCE = re.compile(rf"\$(?:(\$)|({_NAME})|\{{({_NAME})(?:(:?[-?+])((?:[^{{}}]|\{{[^{{}}]*\}})*))?\}})")


class InterpolationError(ValueError):
    """A ``${VAR:?message}`` whose variable is missing: compose refuses to start."""


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and ``#`` comments ignored, quotes removed, ``export`` allowed."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            raise ValueError(f"{path}: not KEY=VALUE: {raw!r}")
        value = value.strip()
        if len(value) > 1 and value[0] in "'\"" and value.endswith(value[0]):
            value = value[1:-1]
        else:
            value = re.sub(r"\s+#.*$", "", value)
        values[key.strip()] = value
    return values


def variables_in(text: str) -> set[str]:
    """Names of the variables a string refers to (defaults included)."""
    names: set[str] = set()
    for match in _REFERENCE.finditer(text):
        if match.group(1):
            continue
        names.add(match.group(2) or match.group(3))
        if match.group(5):
            names |= variables_in(match.group(5))
    return names


def interpolate(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return "$"
        name = match.group(2) or match.group(3)
        operator, argument = match.group(4), interpolate(match.group(5) or "", env)
        value = env.get(name)
        present = value is not None and (value != "" or not (operator or "").startswith(":"))
        if operator in (":-", "-"):
            return value if present and value is not None else argument
        if operator in (":?", "?"):
            if not present or value is None:
                raise InterpolationError(f"required variable {name} is missing a value: {argument}")
            return value
        if operator in (":+", "+"):
            return argument if present else ""
        return value or ""

    return _REFERENCE.sub(replace, text)


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


def _raw_strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [s for item in node for s in _raw_strings(item)]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _raw_strings(value)]
    return []


@dataclass(frozen=True)
class Image:
    """What a container built from the Dockerfile starts with."""

    env: dict[str, str]
    entrypoint: list[str]
    command: list[str]
    files: dict[str, Path]  # container path -> the repository file COPY put there
    user: str | None
    healthcheck: list[str] | None
    instructions: list[Any]


def read_image(path: Path, context: Path) -> Image:
    instructions = list(dockerfile.parse_file(str(path)))
    env: dict[str, str] = {}
    entrypoint: list[str] = []
    command: list[str] = []
    files: dict[str, Path] = {}
    user: str | None = None
    healthcheck: list[str] | None = None
    workdir = PurePosixPath("/")
    for step in instructions:
        if step.cmd == "ENV":
            env.update(zip(step.value[::2], step.value[1::2], strict=True))
        elif step.cmd == "WORKDIR":
            workdir = workdir / step.value[0]
        elif step.cmd == "COPY" and not any(flag.startswith("--from") for flag in step.flags):
            *sources, target = step.value
            destination = workdir / target
            for source in sources:
                if len(sources) > 1 or target.endswith("/"):
                    files[str(destination / PurePosixPath(source).name)] = context / source
                else:
                    files[str(destination)] = context / source
        elif step.cmd == "USER":
            user = step.value[0]
        elif step.cmd in ("ENTRYPOINT", "CMD"):
            words = list(step.value) if step.json else ["/bin/sh", "-c", step.value[0]]
            if step.cmd == "ENTRYPOINT":
                entrypoint = words
            else:
                command = words
        elif step.cmd == "HEALTHCHECK":
            healthcheck = list(step.value)
    return Image(env, entrypoint, command, files, user, healthcheck, instructions)


@dataclass
class Project:
    """docker-compose.yml after interpolation, plus the image its built services share."""

    path: Path
    raw: dict[str, Any]
    config: dict[str, Any]
    variables: dict[str, str]
    image: Image
    services: dict[str, dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.services = self.config["services"]

    def referenced_variables(self) -> set[str]:
        return {name for text in _raw_strings(self.raw) for name in variables_in(text)}

    def is_built(self, service: str) -> bool:
        return "build" in self.services[service]

    def command(self, service: str) -> list[str]:
        """Entrypoint + command, as the container would run them (the image's when compose gives none)."""
        spec = self.services[service]
        built = self.is_built(service)
        entrypoint = (
            _words(spec.get("entrypoint")) if "entrypoint" in spec else (self.image.entrypoint if built else [])
        )
        command = _words(spec.get("command")) if "command" in spec else (self.image.command if built else [])
        return [*entrypoint, *command]

    def environment(self, service: str) -> dict[str, str]:
        spec = self.services[service]
        env = dict(self.image.env) if self.is_built(service) else {}
        declared = spec.get("environment") or {}
        if isinstance(declared, list):
            declared = dict(item.partition("=")[::2] for item in declared)
        env.update({key: _scalar(value) for key, value in declared.items() if value is not None})
        return env

    def replicas(self, service: str) -> int:
        return int((self.services[service].get("deploy") or {}).get("replicas", 1))

    def listening_ports(self, service: str) -> list[int]:
        """Container ports the service listens on: ``expose`` and the targets of ``ports``."""
        spec = self.services[service]
        ports = [int(str(port).split("/")[0]) for port in spec.get("expose", [])]
        for mapping in spec.get("ports", []):
            target = mapping["target"] if isinstance(mapping, dict) else str(mapping).rsplit(":", 1)[-1]
            ports.append(int(str(target).split("/")[0]))
        return sorted(set(ports))

    def dependencies(self, service: str) -> dict[str, str]:
        """Service -> condition (``service_started`` for the short list form)."""
        declared = self.services[service].get("depends_on") or {}
        if isinstance(declared, list):
            return dict.fromkeys(declared, "service_started")
        return {name: (spec or {}).get("condition", "service_started") for name, spec in declared.items()}

    def active(self, profiles: set[str]) -> list[str]:
        """Services ``up`` starts with these profiles, dependencies first."""
        wanted = [name for name, spec in self.services.items() if not set(spec.get("profiles", [])) - profiles]
        ordered: list[str] = []

        def visit(name: str, trail: tuple[str, ...]) -> None:
            if name in ordered:
                return
            if name in trail:
                raise ValueError(f"depends_on cycle: {' -> '.join((*trail, name))}")
            for dependency in self.dependencies(name):
                visit(dependency, (*trail, name))
            ordered.append(name)

        for name in wanted:
            visit(name, ())
        return ordered


def _words(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return ["/bin/sh", "-c", value]
    return [_scalar(word) for word in value]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load_project(
    compose_file: Path = COMPOSE_FILE, env_file: Path = ENV_EXAMPLE, overrides: Mapping[str, str] | None = None
) -> Project:
    """The compose file with ``env_file``'s values (like a copied .env), ``overrides`` winning like shell variables."""
    raw = yaml.safe_load(compose_file.read_text())
    variables = {**read_dotenv(env_file), **(overrides or {})}
    config = _interpolate_tree(raw, variables)
    image_root: Path = compose_file.parent
    built = next((spec["build"] for spec in config["services"].values() if "build" in spec), None)
    if built is None:
        raise ValueError(f"{compose_file}: no service is built from a Dockerfile")
    context = (image_root / built.get("context", ".")).resolve()
    image = read_image(context / built.get("dockerfile", "Dockerfile"), context)
    return Project(compose_file, raw, config, variables, image)
