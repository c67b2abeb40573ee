"""`pipeline up` and `pipeline demo` as a user runs them: nothing configured, nothing left behind.

Both commands start their own private Redis and workers when PIPELINE_REDIS_URL
is unset; these tests run the real console script with a fresh PIPELINE_HOME
and check that other commands find that Redis, that it is locked down, and that
everything stops again.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.localredis import STATE_FILE
from tests.helpers import make_images, wait_until

PIPELINE = str(Path(sys.executable).parent / "pipeline")
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


def run_cli(*args: str, env: Mapping[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PIPELINE, *args], env=dict(env), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def fresh_env(home: Path) -> dict[str, str]:
    """The test environment with no Redis URL and its own PIPELINE_HOME."""
    env = {k: v for k, v in os.environ.items() if k != "PIPELINE_REDIS_URL"}
    env["PIPELINE_HOME"] = str(home)
    return env


def pid_gone(pid: int, timeout: float = 10.0) -> bool:
    """True once ``pid`` no longer exists (it is not our child, so we cannot reap it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if not Path(f"/proc/{pid}").exists():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def processes_under(home: Path) -> list[tuple[int, str]]:
    """Live processes tied to ``home``: by command line, environment, or working directory.

    redis-server rewrites its process title over argv and environ, so a private
    Redis is recognised by its working directory (``--dir`` is inside ``home``).
    """
    needle = str(home).encode()
    found = []
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit() or int(proc_dir.name) == os.getpid():
            continue
        try:
            cmdline = (proc_dir / "cmdline").read_bytes()
            environ = (proc_dir / "environ").read_bytes()
            cwd = os.readlink(proc_dir / "cwd").encode()
            zombie = (proc_dir / "stat").read_text().rsplit(") ", 1)[-1].startswith("Z")
        except OSError:  # gone meanwhile, or not ours
            continue
        if not zombie and (needle in cmdline or needle in environ or cwd.startswith(needle)):
            found.append((int(proc_dir.name), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return found


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass
class UpProcess:
    """A running `pipeline up`, with its stderr collected line by line on a thread."""

    process: subprocess.Popen[str]
    home: Path
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _reader: threading.Thread | None = None

    @classmethod
    def start(cls, home: Path, *args: str, sigint_ignored: bool = False) -> UpProcess:
        """``sigint_ignored``: started the way a non-interactive shell starts a background job."""
        env = fresh_env(home)
        process = subprocess.Popen(
            [PIPELINE, "up", *args], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, preexec_fn=_ignore_sigint if sigint_ignored else None,
        )  # fmt: skip
        up = cls(process, home, env)
        up._reader = threading.Thread(target=up._read, daemon=True)
        up._reader.start()
        return up

    def _read(self) -> None:
        assert self.process.stderr is not None
        with self.process.stderr:
            for line in self.process.stderr:
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float) -> str:
        """The first stderr line containing ``text``; fails with everything collected so far."""
        for line in self.lines:
            if text in line:
                return line
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(
                    f"`pipeline up` exited ({self.process.wait()}) before printing {text!r}:\n{self.output()}"
                )
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"`pipeline up` printed no {text!r} within {timeout} s:\n{self.output()}")

    def drain(self, timeout: float = 5.0) -> None:
        """Collect the rest of stderr after the process has exited."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                return
            if line is None:
                return
            self.lines.append(line)

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.home / STATE_FILE).read_text())
        return state

    def shut_down(self) -> None:
        """Best-effort cleanup: SIGTERM is a clean stop for `up`; SIGKILL only as a last resort."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._reader is not None:
            self._reader.join(10)  # the pipe closes once every holder of its write end has exited


@pytest.fixture(scope="module")
def running_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    """One `pipeline up --workers 1` shared by the tests that only use it."""
    up = UpProcess.start(tmp_path_factory.mktemp("up-home"), "--workers", "1")
    try:
        up.wait_for_line("ready", READY_TIMEOUT_S)
        yield up
    finally:
        up.shut_down()


# -- pipeline up -------------------------------------------------------------------------------------


def test_commands_without_a_redis_url_find_the_private_redis_of_up_and_run_a_job(
    running_up: UpProcess, tmp_path: Path
) -> None:
    assert "PIPELINE_REDIS_URL" not in running_up.env
    make_images(tmp_path / "in", 5, size=(320, 240))
    proc = run_cli("submit", "images", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--wait", "--json",
                   env=running_up.env)  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    doc = json.loads(proc.stdout)
    assert doc["state"] == "succeeded"
    assert doc["images"]["ok"] == 5


def test_workers_lists_exactly_the_one_worker_that_up_started(running_up: UpProcess) -> None:
    proc = run_cli("workers", "--json", env=running_up.env)
    assert proc.returncode == 0, describe(proc)
    workers = json.loads(proc.stdout)
    assert len(workers) == 1, describe(proc)
    assert f"pid {workers[0]['pid']}" in running_up.output()


def test_the_private_redis_listens_on_loopback_only_and_requires_its_password(running_up: UpProcess) -> None:
    state_file = running_up.home / STATE_FILE
    assert state_file.stat().st_mode & 0o777 == 0o600
    url = urlsplit(running_up.state()["url"])
    assert url.hostname == "127.0.0.1"
    assert url.password
    assert url.port is not None

    anonymous = redis.Redis(host="127.0.0.1", port=url.port, socket_connect_timeout=5)
    try:
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
    finally:
        anonymous.close()

    client = redis.Redis(host="127.0.0.1", port=url.port, password=url.password, decode_responses=True)
    try:
        assert client.ping()
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert client.config_get("protected-mode")["protected-mode"] == "yes"
    finally:
        client.close()


@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["foreground", "started-with-sigint-ignored"])
def test_ctrl_c_stops_up_its_workers_and_its_redis_and_removes_redis_json(tmp_path: Path, sigint_ignored: bool) -> None:
    home = tmp_path / "home"
    up = UpProcess.start(home, "--workers", "1", sigint_ignored=sigint_ignored)
    try:
        up.wait_for_line("ready", READY_TIMEOUT_S)
        redis_pid = int(up.state()["pid"])
        listed = run_cli("workers", "--json", env=up.env)
        assert listed.returncode == 0, describe(listed)
        worker_pids = [w["pid"] for w in json.loads(listed.stdout)]
        assert len(worker_pids) == 1
        running = {pid for pid, _ in processes_under(home)}
        assert {redis_pid, *worker_pids} <= running, "the leftover-process scan must see what `up` started"

        up.process.send_signal(signal.SIGINT)
        try:
            code = up.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"`pipeline up` still running {STOP_TIMEOUT_S} s after SIGINT:\n{up.output()}"
            ) from None
        up.drain()
    finally:
        up.shut_down()
    assert code == 0, up.output()
    assert any("stopped" in line for line in up.lines), up.output()
    assert "Traceback" not in up.output()
    assert not (home / STATE_FILE).exists()
    assert pid_gone(redis_pid), f"redis-server {redis_pid} still running after `up` stopped"
    for pid in worker_pids:
        assert pid_gone(pid), f"worker {pid} still running after `up` stopped"
    assert processes_under(home) == []


def test_a_worker_that_dies_under_up_is_restarted_under_a_name_no_live_worker_has(tmp_path: Path) -> None:
    up = UpProcess.start(tmp_path / "home", "--workers", "2", "--processes", "1")
    try:
        up.wait_for_line("ready", READY_TIMEOUT_S)
        client = connect(up.state()["url"])
        try:
            before = {w["name"]: w["pid"] for w in Ledger(client).workers()}
            assert len(before) == 2, before
            victim = min(before)
            survivor = max(before)
            os.kill(before[victim], signal.SIGKILL)
            up.wait_for_line("restarting", READY_TIMEOUT_S)
            fresh = wait_until(lambda: [w for w in Ledger(client).workers() if w["pid"] not in before.values()],
                               READY_TIMEOUT_S, lambda: f"a restarted worker:\n{up.output()}", poll=0.1)  # fmt: skip
        finally:
            client.close()
    finally:
        up.shut_down()
    # Two Celery nodes with one name overwrite each other's heartbeat record, so
    # `pipeline workers` shows one worker whose pid flips between two processes.
    assert fresh[0]["name"] != survivor, (
        f"the restarted worker (pid {fresh[0]['pid']}) took the name {survivor!r} of a live worker"
    )


# -- pipeline demo -----------------------------------------------------------------------------------


@dataclass
class DemoRun:
    home: Path
    env: dict[str, str]
    proc: subprocess.CompletedProcess[str]


def image_mtimes(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def first_demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    home = tmp_path_factory.mktemp("demo-home")
    env = fresh_env(home)
    return DemoRun(home, env, run_cli("demo", "--count", "24", "--pages", "60", "--json", env=env, timeout=180))


def test_the_demo_runs_with_nothing_configured_and_reports_every_designed_failure(first_demo: DemoRun) -> None:
    proc = first_demo.proc
    assert proc.returncode == 0, describe(proc)
    outcome = json.loads(proc.stdout)
    assert outcome["state"] == "succeeded"
    doc = outcome["jobs"]["images"]
    assert doc["state"] == "succeeded"
    # 24 generated files (3 deliberately broken) plus a 404 URL and an HTML page served as image/jpeg.
    assert doc["images"] == {"ok": 21, "failed": 5, "total": 26, "pending": 0}
    assert doc["failures"] == {"decompression_bomb": 1, "http_404": 1, "not_an_image": 2, "truncated": 1}
    assert {item["reason"] for item in doc["failed_items"]} == set(doc["failures"])
    assert "Traceback" not in proc.stderr


def test_the_demo_also_crawls_the_demo_site_with_its_images(first_demo: DemoRun) -> None:
    crawl = json.loads(first_demo.proc.stdout)["jobs"]["crawl"]
    assert crawl["state"] == "succeeded"
    assert crawl["pages"]["ok"] > 50
    assert crawl["images"]["ok"] > 10
    for reason in ("http_404", "robots", "redirect_loop"):
        assert crawl["failures"].get(reason, 0) > 0


def test_the_demo_scrapes_the_shop_into_a_csv_feed_with_each_product_once(first_demo: DemoRun) -> None:
    scrape = json.loads(first_demo.proc.stdout)["jobs"]["scrape"]
    assert scrape["state"] == "succeeded", scrape
    with open(first_demo.home / "demo" / "shop.csv", newline="", encoding="utf-8") as feed:
        rows = list(csv.DictReader(feed))
    # 60 products (the shop has as many as the site has pages), 8 a listing; each later
    # listing repeats the previous one's first product as "featured": a duplicate by link.
    assert [row["link"].rsplit("/shop/", 1)[1] for row in rows] == [f"item/{i}.html" for i in range(60)]
    assert scrape["scrape"]["items"] == 60 and scrape["scrape"]["duplicates"] == 7
    assert all(float(row["price"]) > 0 and row["name"] and row["date"].startswith("2024-") for row in rows)


def test_the_demo_leaves_no_redis_or_worker_process_running(first_demo: DemoRun) -> None:
    assert first_demo.proc.returncode == 0, describe(first_demo.proc)
    wait_until(lambda: not processes_under(first_demo.home), 10,
               lambda: f"the demo's processes to end: {processes_under(first_demo.home)}")  # fmt: skip


def test_a_second_demo_run_reuses_the_generated_images_and_succeeds(first_demo: DemoRun) -> None:
    assert first_demo.proc.returncode == 0, describe(first_demo.proc)
    images = first_demo.home / "demo" / "images"
    before = image_mtimes(images)
    assert len([p for p in before if p.name != ".complete"]) == 24

    proc = run_cli("demo", "--count", "24", "--no-crawl", "--json", env=first_demo.env, timeout=180)
    assert proc.returncode == 0, describe(proc)
    assert json.loads(proc.stdout)["state"] == "succeeded"
    assert image_mtimes(images) == before
