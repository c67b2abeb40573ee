"""`pipeline up` starts and stops cleanly whatever ends it, and a job survives a restart of it.

SIGHUP (a closed terminal, a dropped ssh) stops everything like Ctrl-C; a killed `up`
takes its children with it (Linux's parent-death signal); a private Redis that dies
is restarted and said so; one `up` per PIPELINE_HOME; `up --detach` and `down`.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import redis

from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.localredis import STATE_FILE
from tests.helpers import make_images, wait_until
from tests.integration.test_up_and_demo import (
    READY_TIMEOUT_S,
    STOP_TIMEOUT_S,
    UpProcess,
    describe,
    fresh_env,
    pid_gone,
    processes_under,
    run_cli,
)


def _children(up: UpProcess) -> list[int]:
    """The private Redis and the workers of a ready `up`."""
    client = connect(up.state()["url"])
    try:
        workers = [int(w["pid"]) for w in Ledger(client).workers()]
    finally:
        client.close()
    return [int(up.state()["pid"]), *workers]


def test_sighup_stops_up_and_everything_it_started_like_ctrl_c(tmp_path: Path) -> None:
    up = UpProcess.start(tmp_path / "home", "--workers", "1")
    try:
        up.wait_for_line("ready", READY_TIMEOUT_S)
        children = _children(up)
        up.process.send_signal(signal.SIGHUP)
        code = up.process.wait(STOP_TIMEOUT_S)
        up.drain()
    finally:
        up.shut_down()
    assert code == 0, up.output()
    assert "stopped" in up.output() and "Traceback" not in up.output()
    assert all(pid_gone(pid) for pid in children), f"left running after SIGHUP: {processes_under(up.home)}"


def test_a_killed_up_takes_its_redis_and_workers_with_it(tmp_path: Path) -> None:
    up = UpProcess.start(tmp_path / "home", "--workers", "1")
    try:
        up.wait_for_line("ready", READY_TIMEOUT_S)
        children = _children(up)
        up.process.kill()  # no handler runs: only the parent-death signal can stop the children
        up.process.wait(STOP_TIMEOUT_S)
    finally:
        up.shut_down()
    for pid in children:
        assert pid_gone(pid, timeout=30), f"{pid} outlived its `pipeline up`: {processes_under(up.home)}"


def test_a_second_up_on_the_same_home_refuses_and_names_the_first(tmp_path: Path) -> None:
    home = tmp_path / "home"
    up = UpProcess.start(home, "--workers", "1")
    try:
        up.wait_for_line("ready", READY_TIMEOUT_S)
        second = run_cli("up", "--workers", "1", env=fresh_env(home), timeout=60)
        assert second.returncode == 1, describe(second)
        assert f"pid {up.process.pid}" in second.stderr and "already running" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        assert up.process.poll() is None, "the first `up` must be untouched"
        assert len(_children(up)) == 2, "no second Redis or worker was started"
    finally:
        up.shut_down()


def test_a_private_redis_that_dies_is_restarted_and_said_so(tmp_path: Path) -> None:
    up = UpProcess.start(tmp_path / "home", "--workers", "1")
    try:
        up.wait_for_line("ready", READY_TIMEOUT_S)
        first = int(up.state()["pid"])
        os.kill(first, signal.SIGKILL)
        up.wait_for_line("redis-server exited", 15)
        up.wait_for_line("restarted", 30)
        assert int(up.state()["pid"]) != first
        listed = run_cli("workers", "--json", env=up.env)  # the new Redis answers, with the same URL
        assert listed.returncode == 0, describe(listed)
    finally:
        up.shut_down()


def test_up_detach_returns_once_ready_and_down_stops_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = fresh_env(home)
    started = run_cli("up", "--detach", "--workers", "1", env=env, timeout=120)
    assert started.returncode == 0, describe(started)
    pid = int(started.stdout.strip())
    try:
        assert os.getsid(pid) == pid, "a session of its own: no terminal's Ctrl-C or hang-up reaches it"
        listed = run_cli("workers", "--json", env=env)
        assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 1, describe(listed)
        stopped = run_cli("down", env=env, timeout=90)
        assert stopped.returncode == 0, describe(stopped)
        assert "stopped" in stopped.stderr
        assert pid_gone(pid)
        assert not (home / STATE_FILE).exists()
        wait_until(lambda: not processes_under(home), 30, lambda: f"nothing left: {processes_under(home)}")
        again = run_cli("down", env=env)
        assert again.returncode == 0 and "no `pipeline up` running" in again.stderr, describe(again)
    finally:
        if not pid_gone(pid, timeout=0):
            os.kill(pid, signal.SIGTERM)


def test_a_job_interrupted_by_ctrl_c_on_up_finishes_exactly_after_up_starts_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    images = make_images(tmp_path / "in", 2000, size=(240, 180))
    up = UpProcess.start(home, "--workers", "1", "--processes", "1")
    try:
        up.wait_for_line("ready", READY_TIMEOUT_S)
        submitted = run_cli("submit", "images", str(tmp_path / "in"), "--ops", "thumbnail:64,sharpen",
                            "--output", str(tmp_path / "out"), env=up.env)  # fmt: skip
        assert submitted.returncode == 0, describe(submitted)
        job_id = submitted.stdout.strip()
        client = connect(up.state()["url"])
        try:
            wait_until(lambda: run_status(client, job_id) >= 100, 60, "100 items done")
        finally:
            client.close()
        up.process.send_signal(signal.SIGINT)
        assert up.process.wait(STOP_TIMEOUT_S) == 0, up.output()
    finally:
        up.shut_down()
    assert processes_under(home) == []

    again = UpProcess.start(home, "--workers", "1", "--processes", "1")
    try:
        again.wait_for_line("ready", READY_TIMEOUT_S)
        status = run_cli("status", job_id, "--json", env=again.env)
        assert json.loads(status.stdout)["state"] == "running", "the job was interrupted, not finished"
        result = run_cli("result", job_id, "--wait", "--json", env=again.env, timeout=300)
        assert result.returncode == 0, describe(result)
        doc = json.loads(result.stdout)
    finally:
        again.shut_down()
    assert doc["state"] == "succeeded"
    assert doc["images"] == {"ok": len(images), "failed": 0, "total": len(images), "pending": 0}
    assert doc["ledger"]["unexpected"] == 0
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".jpg")
    assert len(outputs) == len(images)


def run_status(client: redis.Redis, job_id: str) -> int:
    return int(Ledger(client).totals(job_id).done)
