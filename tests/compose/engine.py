"""A private Docker engine for the compose test, and the local stand-ins for what a registry would give.

``Engine.start`` runs a containerd and a dockerd of our own: data, state and
exec roots in one temporary folder, sockets there too (``DOCKER_HOST`` points
at it), and ``--iptables=false --ip-forward=false --ip-masq=false
--bridge=none``, so the machine's firewall, forwarding and default bridge are
left alone: containers reach each other on their compose network's bridge and
the host only through ports published on loopback (docker-proxy). Any other
Docker daemon on the machine is never touched. ``Engine.stop`` removes the
containers and networks, stops both daemons by pid (and any shim they left,
found by the temporary folder in its command line), unmounts what they
mounted and deletes the folder.

No registry is reachable here, so the images the compose file names are
built locally:

- **the base images** (``standin_tarball``): Debian 12 by ``debootstrap
  --variant=minbase`` with Python 3.11 (a venv at ``/usr/local``, as in
  python:3.11-slim: ``python`` and ``pip`` on PATH) and redis-server,
  imported once per engine and tagged ``python:3.11-slim`` and
  ``redis:7.2-alpine``. The tarball is cached in ``~/.cache/pipeline-compose``
  (keyed by its recipe), so only a fresh machine pays the ~60 s debootstrap.
- **the dependencies** (``wheelhouse``): the wheels of deploy/requirements.lock,
  fetched by this machine's pip into the same cache and served on loopback to
  the image build (``PIP_EXTRA_ARGS=--no-index --find-links URL``, build
  network ``host``), so the build needs neither the machine's CA certificates
  nor its pip configuration.

Anything missing (not root, no dockerd, no docker-compose, no debootstrap, a
daemon that does not start) raises ``EngineError`` with the reason: the
compose test fails, it never skips.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import http.server
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = ROOT / "deploy" / "requirements.lock"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pipeline-compose"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Everything that makes the stand-in what it is: change it and the cached tarball is rebuilt.
STANDIN_RECIPE = (
    "bookworm minbase python3 python3-venv ca-certificates redis-server; "
    "trim docs/locales/apt cache; venv at /usr/local; v1"
)
STANDIN_TAGS = ("python:3.11-slim", "redis:7.2-alpine")
MAKE_HINT = "run `make engine` as root (it apt-installs docker.io, docker-compose and debootstrap)"


class EngineError(AssertionError):
    """The private engine cannot run here; the message says why and what to do."""


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def docker_client() -> str:
    """Debian's docker CLI (the daemon's own version) when installed, else the one on PATH."""
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise EngineError(f"no docker client found: {MAKE_HINT}")


def require_tools() -> None:
    """Fail with the reason when the compose test cannot run on this machine."""
    if os.geteuid() != 0:
        raise EngineError("the compose test starts a private dockerd, which needs root")
    missing = [tool for tool in ("dockerd", "containerd", "runc", "debootstrap") if shutil.which(tool) is None]
    if missing:
        raise EngineError(f"missing {', '.join(missing)}: {MAKE_HINT}")
    docker_client()


@dataclass
class Engine:
    root: Path
    client: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"unix://{self.root / 'docker.sock'}"

    @property
    def env(self) -> dict[str, str]:
        """What every docker and compose command gets: our socket, the classic builder."""
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0", "COMPOSE_DOCKER_CLI_BUILD": "0",
                "DOCKER_CONFIG": str(self.root / "client")}  # fmt: skip

    @classmethod
    def start(cls, root: Path, timeout: float = 60.0) -> Engine:
        engine = cls(root, docker_client())
        try:
            engine._start(timeout)
        except BaseException:
            engine.stop()
            raise
        return engine

    def _spawn(self, name: str, argv: Sequence[str]) -> None:
        with (self.root / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                                    start_new_session=True)  # fmt: skip

    def _wait(self, name: str, ready: Path | None, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            process = self.processes[name]
            if process.poll() is not None:
                raise EngineError(f"{name} exited with {process.returncode}:\n{_tail(self.root / f'{name}.log')}")
            if ready is not None and ready.exists():
                return
            if ready is None and self.docker("version", check=False, timeout=10).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise EngineError(f"{name} not ready after {timeout:g} s:\n{_tail(self.root / f'{name}.log')}")
            time.sleep(0.1)

    def _start(self, timeout: float) -> None:
        (self.root / "client").mkdir(parents=True, exist_ok=True)
        sock = self.root / "containerd.sock"
        config = self.root / "containerd.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{self.root / "containerd" / "root"}"\n'
            f'state = "{self.root / "containerd" / "state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{sock}"\n'
            f'[ttrpc]\n  address = "{sock}.ttrpc"\n'
        )
        self._spawn("containerd", ["containerd", "--config", str(config)])
        self._wait("containerd", sock, timeout)
        self._spawn("dockerd", [
            "dockerd", "--host", self.host, "--containerd", str(sock),
            "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
            "--pidfile", str(self.root / "dockerd.pid"),
            "--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none",
            "--storage-driver", "overlay2",
        ])  # fmt: skip
        self._wait("dockerd", None, timeout)

    def docker(self, *args: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.client, *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL)  # fmt: skip
        if check and result.returncode != 0:
            raise EngineError(f"docker {' '.join(args)}: exit {result.returncode}\n{result.stdout}{result.stderr}")
        return result

    def import_standins(self, tarball: Path) -> None:
        """The stand-in rootfs as every base image the stack names."""
        first, *others = STANDIN_TAGS
        self.docker("import", "--change", 'CMD ["python3"]', str(tarball), first, timeout=300)
        for tag in others:
            self.docker("tag", first, tag)

    def stop(self) -> None:
        """Remove containers and networks, stop both daemons by pid, unmount and delete the folder."""
        if "dockerd" in self.processes and self.processes["dockerd"].poll() is None:
            with contextlib.suppress(subprocess.SubprocessError, EngineError):
                ids = self.docker("ps", "-aq", timeout=30).stdout.split()
                if ids:
                    self.docker("rm", "-f", "-v", *ids, timeout=120, check=False)
                self.docker("network", "prune", "-f", timeout=60, check=False)
        for name in ("dockerd", "containerd"):
            process = self.processes.get(name)
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for pid in self._leftover_pids():  # shims of our containerd: their command lines name our folder
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for mount in self._mounts():
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def _leftover_pids(self) -> list[int]:
        marker = str(self.root).encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                with contextlib.suppress(OSError):
                    if marker in (entry / "cmdline").read_bytes():
                        pids.append(int(entry.name))
        return pids

    def _mounts(self) -> list[str]:
        prefix = str(self.root) + "/"
        points = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix):
                points.append(point)
        return sorted(points, key=len, reverse=True)


# -- the stand-in base images --------------------------------------------------------------------


@contextlib.contextmanager
def _cache_lock() -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def standin_tarball() -> Path:
    """The cached stand-in rootfs tarball; built with debootstrap when missing (~60 s)."""
    key = hashlib.sha256(STANDIN_RECIPE.encode()).hexdigest()[:12]
    tarball = CACHE / f"standin-bookworm-{key}.tar"
    if tarball.exists():
        return tarball
    with _cache_lock():
        if tarball.exists():
            return tarball
        work = Path(tempfile.mkdtemp(prefix="standin-", dir=CACHE))
        try:
            rootfs = work / "rootfs"
            packages = "python3,python3-venv,ca-certificates,redis-server"
            result = subprocess.run(["debootstrap", "--variant=minbase", f"--include={packages}", "bookworm",
                                     str(rootfs), DEBIAN_MIRROR], capture_output=True, text=True,
                                    timeout=900)  # fmt: skip
            if result.returncode != 0:
                raise EngineError(f"debootstrap failed (exit {result.returncode}):\n{result.stdout[-3000:]}"
                                  f"{result.stderr[-2000:]}")  # fmt: skip
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
                         "usr/share/locale"):  # fmt: skip
                for child in (rootfs / junk).glob("*"):
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
            # python:3.11-slim has `python` and `pip` in /usr/local/bin, and pip may install there.
            venv = subprocess.run(["chroot", str(rootfs), "/usr/bin/python3", "-m", "venv", "/usr/local"],
                                  capture_output=True, text=True, timeout=300)  # fmt: skip
            if venv.returncode != 0:
                raise EngineError(f"cannot make the stand-in's Python venv: {venv.stderr}")
            partial = tarball.with_suffix(".part")
            subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], check=True,
                           timeout=300)  # fmt: skip
            partial.rename(tarball)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return tarball


# -- the dependencies, served on loopback to the image build ------------------------------------------


def locked_pins(lock: Path = LOCK_FILE) -> list[str]:
    """``name==version`` of every lock line, markers dropped (the stand-in's Python may need them)."""
    pins = []
    for line in lock.read_text().splitlines():
        pin = line.split(";")[0].strip()
        if pin and not pin.startswith("#"):
            pins.append(pin)
    return pins


def wheelhouse(lock: Path = LOCK_FILE) -> Path:
    """A folder with a wheel for every pin of the lock, fetched (or built) by this machine's pip once."""
    folder = CACHE / "wheels"
    with _cache_lock():
        folder.mkdir(parents=True, exist_ok=True)
        present = set()
        for wheel in folder.glob("*.whl"):
            wheel_name, wheel_version, *_ = parse_wheel_filename(wheel.name)
            present.add(f"{wheel_name}=={wheel_version}")
        missing = []
        for pin in locked_pins(lock):
            name, version = pin.split("==")
            if f"{canonicalize_name(name)}=={version}" not in present:
                missing.append(pin)
        if missing:
            result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                                     "--wheel-dir", str(folder), *missing], capture_output=True, text=True,
                                    timeout=900)  # fmt: skip
            if result.returncode != 0:
                raise EngineError(f"cannot fetch the locked wheels {missing}:\n{result.stderr[-3000:]}")
    return folder


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class WheelServer:
    """The wheelhouse over HTTP on 127.0.0.1 (a build with network ``host`` reaches it)."""

    def __init__(self, folder: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="wheelhouse", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> WheelServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
