"""What users rely on from the CLI: output that pipes, exit codes that mean one thing, refusals at submit.

Real subprocesses of the console script against real Redis servers: the session's
(with its worker) where a job must finish, and a private one no worker serves,
where a job stays queued as long as a test needs it to.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import exits
from pipeline.localredis import RedisServer, start_redis
from tests.helpers import make_images, wait_until
from tests.integration.test_cli import PIPELINE, describe, one_json_document, run_cli


@pytest.fixture
def env(redis_url: str) -> dict[str, str]:
    return {**os.environ, "PIPELINE_REDIS_URL": redis_url}


@pytest.fixture(scope="module")
def idle_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis no worker reads from: every job submitted there stays queued."""
    server = start_redis(tmp_path_factory.mktemp("idle-redis"), appendonly=False)
    yield server
    server.stop()


@pytest.fixture
def idle_env(idle_redis: RedisServer) -> dict[str, str]:
    return {**os.environ, "PIPELINE_REDIS_URL": idle_redis.url}


@pytest.fixture
def queued_job(idle_env: dict[str, str], tmp_path: Path) -> str:
    make_images(tmp_path / "in", 2)
    proc = run_cli("submit", "images", str(tmp_path / "in"), "--output", str(tmp_path / "out"), env=idle_env)
    assert proc.returncode == 0, describe(proc)
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def finished(worker: object, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("contract-in")
    make_images(folder, 3)
    (folder / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path_factory.mktemp("contract-out")
    proc = run_cli("submit", "images", str(folder), "--output", str(out), "--wait", "--json",
                   env={**os.environ, "PIPELINE_REDIS_URL": redis_url})  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    return dict(one_json_document(proc))


# -- reports and tables go to stdout -----------------------------------------------------------


def test_the_report_of_result_goes_to_stdout_so_it_can_be_redirected(
    env: dict[str, str], finished: dict[str, Any]
) -> None:
    proc = run_cli("result", finished["job_id"], env=env)
    assert proc.returncode == 0, describe(proc)
    assert finished["job_id"] in proc.stdout and "succeeded" in proc.stdout
    assert "images" in proc.stdout and "3 ok" in proc.stdout
    assert "succeeded" not in proc.stderr, "the report must not go to stderr"
    assert "list failed items" in proc.stderr, "the hint stays on stderr"


def test_result_failed_lists_the_failed_items_on_stdout(env: dict[str, str], finished: dict[str, Any]) -> None:
    proc = run_cli("result", finished["job_id"], "--failed", env=env)
    assert "broken.jpg" in proc.stdout and "not_an_image" in proc.stdout, describe(proc)


@pytest.mark.parametrize(
    ("command", "expected"),
    [(("jobs",), "job"), (("workers",), "worker"), (("cache",), "result cache"), (("top", "--once"), "cores")],
)
def test_tables_go_to_stdout(env: dict[str, str], finished: dict[str, Any], command: tuple[str, ...],
                             expected: str) -> None:  # fmt: skip
    proc = run_cli(*command, env=env)
    assert proc.returncode == 0, describe(proc)
    assert expected in proc.stdout, describe(proc)


def test_schedule_list_prints_its_table_on_stdout_and_the_hint_on_stderr(env: dict[str, str], tmp_path: Path) -> None:
    make_images(tmp_path / "photos", 1)
    added = run_cli("schedule", "add", "contract-table", "--every", "1d", "--", "images", str(tmp_path / "photos"),
                    env=env)  # fmt: skip
    assert added.returncode == 0, describe(added)
    try:
        listed = run_cli("schedule", "list", env=env)
        assert "contract-table" in listed.stdout and "scheduler" in listed.stderr, describe(listed)
    finally:
        run_cli("schedule", "remove", "contract-table", env=env)


def test_cache_json_prints_only_the_json_object(env: dict[str, str]) -> None:
    proc = run_cli("cache", "--json", env=env)
    assert proc.returncode == 0, describe(proc)
    assert set(json.loads(proc.stdout)) >= {"entries", "bytes"}
    assert proc.stderr.strip() == "", describe(proc)


# -- exit codes mean one thing each ---------------------------------------------------------------


def test_a_job_still_running_when_timeout_passes_exits_5_and_says_it_goes_on(
    idle_env: dict[str, str], queued_job: str
) -> None:
    proc = run_cli("result", queued_job, "--wait", "--timeout", "0.5", env=idle_env)
    assert proc.returncode == exits.TIMED_OUT, describe(proc)
    assert f"timed out after 0.5 s; job {queued_job} is still running" in proc.stderr
    assert f"pipeline cancel {queued_job}" in proc.stderr


def test_result_of_a_running_job_without_wait_is_not_a_timeout(idle_env: dict[str, str], queued_job: str) -> None:
    proc = run_cli("result", queued_job, env=idle_env)
    assert proc.returncode == exits.OK, describe(proc)
    assert "still queued" in proc.stderr and "--wait" in proc.stderr


@pytest.mark.parametrize("command", [("result", "J"), ("retry", "J"), ("submit", "images", "x")])
def test_timeout_without_wait_is_refused_not_ignored(idle_env: dict[str, str], command: tuple[str, ...]) -> None:
    proc = run_cli(*command, "--timeout", "5", env=idle_env)
    assert proc.returncode == exits.USAGE, describe(proc)
    assert "--timeout needs --wait" in proc.stderr


def test_cancelling_a_cancelled_job_again_is_not_an_error(idle_env: dict[str, str], queued_job: str) -> None:
    first = run_cli("cancel", queued_job, env=idle_env)
    again = run_cli("cancel", queued_job, env=idle_env)
    assert (first.returncode, again.returncode) == (exits.OK, exits.OK), describe(again)
    assert "already cancelled" in again.stderr


@pytest.mark.parametrize("inherited", [signal.SIG_DFL, signal.SIG_IGN], ids=["from-a-terminal", "sigint-ignored"])
def test_ctrl_c_while_following_a_job_says_it_goes_on_and_how_to_stop_it(
    idle_env: dict[str, str], queued_job: str, inherited: signal.Handlers
) -> None:
    """Also when started with SIGINT ignored, as a background job of a script is."""
    follower = subprocess.Popen([PIPELINE, "result", queued_job, "--wait"], env=idle_env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, inherited))  # fmt: skip
    try:
        # The follower polls the ledger; once it has started it has imported everything and is waiting.
        wait_until(lambda: follower.poll() is None and _has_connected(idle_env, follower.pid), 20, "the follower")
        follower.send_signal(signal.SIGINT)
        _, stderr = follower.communicate(timeout=20)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
    assert follower.returncode == exits.INTERRUPTED, stderr
    assert f"job {queued_job} goes on" in stderr and f"pipeline cancel {queued_job}" in stderr


def _has_connected(env: dict[str, str], pid: int) -> bool:
    """True once the process holds a TCP connection (to Redis): it is following the job."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:") for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def test_submitting_with_no_live_worker_warns_at_once(idle_env: dict[str, str], tmp_path: Path) -> None:
    make_images(tmp_path / "in", 1)
    proc = run_cli("submit", "images", str(tmp_path / "in"), "--output", str(tmp_path / "out"), env=idle_env)
    assert proc.returncode == 0, describe(proc)
    assert "no live workers" in proc.stderr and "pipeline up" in proc.stderr


def test_the_help_epilog_lists_every_exit_code_the_readme_lists(no_redis_env: dict[str, str]) -> None:
    proc = run_cli("--help", env=no_redis_env)
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for code, _ in exits.CODES:
        assert f"    {code:<4} " in proc.stdout, f"exit code {code} missing from --help"
        assert f"| {code} |" in readme, f"exit code {code} missing from the README"


@pytest.fixture
def no_redis_env(tmp_path: Path) -> dict[str, str]:
    child = {k: v for k, v in os.environ.items() if k != "PIPELINE_REDIS_URL"}
    child["PIPELINE_HOME"] = str(tmp_path / "empty-home")
    return child


# -- refused at submit, in one line, before anything is created ---------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("images", "htp://example.org/a.jpg"), "unsupported scheme 'htp'"),
        (("images", "ftp://example.org/a.jpg"), "unsupported scheme 'ftp'"),
        (("images", "http://exa mple.org/a.jpg"), "not a valid host name"),
        (("crawl", "ftp://example.org/"), "unsupported scheme 'ftp'"),
        (("crawl", "http://exa mple.org/"), "not a valid host name"),
        (("crawl", "https://example.org/", "--allow-domain", "https://cdn.example.org"), "is not a domain"),
        (("crawl", "https://example.org/", "--allow-domain", "cdn.example.org/img"), "is not a domain"),
        (("crawl", "https://example.org/", "--output", "/proc/nope"), "--output /proc/nope"),
        (("crawl", "https://example.org/", "--output", "/etc"), "system folder"),
        (("crawl", "https://example.org/", "--output", "/"), "system folder"),
    ],
)
def test_a_job_that_cannot_work_is_refused_at_submit_with_one_line(
    no_redis_env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    proc = run_cli("submit", *args, env=no_redis_env)
    assert proc.returncode == exits.USAGE, describe(proc)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], describe(proc)


def test_an_output_folder_outside_pipeline_output_root_is_refused(no_redis_env: dict[str, str], tmp_path: Path) -> None:
    make_images(tmp_path / "in", 1)
    env = {**no_redis_env, "PIPELINE_OUTPUT_ROOT": str(tmp_path / "root")}
    proc = run_cli("submit", "images", str(tmp_path / "in"), "--output", str(tmp_path / "elsewhere"), env=env)
    assert proc.returncode == exits.USAGE and "outside PIPELINE_OUTPUT_ROOT" in proc.stderr, describe(proc)


@pytest.mark.usefixtures("worker")
def test_another_jobs_output_folder_is_refused_unless_overwrite(env: dict[str, str], tmp_path: Path) -> None:
    make_images(tmp_path / "in", 2)
    out = tmp_path / "out"
    first = run_cli("submit", "images", str(tmp_path / "in"), "--output", str(out), "--wait", "--json", env=env)
    assert first.returncode == 0, describe(first)
    owner = one_json_document(first)["job_id"]
    second = run_cli("submit", "images", str(tmp_path / "in"), "--output", str(out), env=env)
    assert second.returncode == exits.USAGE, describe(second)
    assert f"job {owner} writes its outputs there" in second.stderr and "--overwrite" in second.stderr
    third = run_cli("submit", "images", str(tmp_path / "in"), "--output", str(out), "--overwrite", "--wait", env=env)
    assert third.returncode == 0, describe(third)
