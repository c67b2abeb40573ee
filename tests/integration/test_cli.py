"""The `pipeline` console script as a user runs it: a real subprocess, real Redis, a real worker.

Every test runs the installed entry point (the `pipeline` script next to the
interpreter) with an explicit environment, and judges only what a user or a
script sees: the exit code, stdout and stderr.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pipeline.cluster import WorkerProcess
from pipeline.demo.server import StaticServer
from pipeline.kinds import job_document
from pipeline.ledger import Ledger
from pipeline.localredis import free_port
from tests.helpers import make_images, wait_until

# `python -m pipeline.cli.main` has no `__main__` guard, so run the console script itself.
PIPELINE = str(Path(sys.executable).parent / "pipeline")
JOB_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
DOCUMENT_KEYS = {"job_id", "kind", "state", "images", "failures", "bytes_in", "bytes_out", "elapsed_s",
                 "output_dir", "timings"}  # fmt: skip


def run_cli(*args: str, env: Mapping[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PIPELINE, *args], env=dict(env), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def stderr_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


def one_json_document(proc: subprocess.CompletedProcess[str]) -> Any:
    """stdout must be exactly one JSON document (json.loads refuses any trailing text)."""
    try:
        return json.loads(proc.stdout)
    except ValueError as exc:
        raise AssertionError(f"stdout is not one JSON document ({exc}):\n{describe(proc)}") from None


def wait_until_done(ledger: Ledger, job_id: str, at_least: int, timeout: float = 30.0) -> dict[str, Any]:
    return wait_until(
        lambda: doc if (doc := job_document(ledger, job_id))["items"]["ok"] + doc["items"]["failed"] >= at_least
        else None,
        timeout, lambda: f"{at_least} items of job {job_id} done: {job_document(ledger, job_id)}", poll=0.02,
    )  # fmt: skip


@pytest.fixture
def env(redis_url: str) -> dict[str, str]:
    """The session's Redis and PIPELINE_HOME (set by the autouse fixture), passed explicitly."""
    return {**os.environ, "PIPELINE_REDIS_URL": redis_url}


@pytest.fixture
def no_redis_env(tmp_path: Path) -> dict[str, str]:
    """No Redis configured at all: no URL and an empty PIPELINE_HOME (so no recorded private Redis)."""
    child = {k: v for k, v in os.environ.items() if k != "PIPELINE_REDIS_URL"}
    child["PIPELINE_HOME"] = str(tmp_path / "empty-home")
    return child


@pytest.fixture
def unreachable_env(tmp_path: Path) -> dict[str, str]:
    child = {**os.environ, "PIPELINE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    child["PIPELINE_HOME"] = str(tmp_path / "home")
    return child


@pytest.fixture(scope="module")
def finished_job(worker: WorkerProcess, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One job run through the CLI: four good images and one file that is not an image."""
    folder = tmp_path_factory.mktemp("mixed")
    make_images(folder, 4, size=(200, 150))
    (folder / "x.jpg").write_bytes(b"not an image")
    env = {**os.environ, "PIPELINE_REDIS_URL": redis_url}
    out = tmp_path_factory.mktemp("mixed-out")
    proc = run_cli("submit", "images", str(folder), "--output", str(out), "--wait", "--json", env=env)
    assert proc.returncode == 0, describe(proc)
    doc = one_json_document(proc)
    assert doc["images"]["ok"] == 4
    assert doc["images"]["failed"] == 1
    return doc


# -- submitting and reading results ------------------------------------------------------------------


@pytest.mark.usefixtures("worker")
def test_submit_with_wait_and_json_prints_exactly_one_document_with_the_documented_keys(
    env: dict[str, str], tmp_path: Path
) -> None:
    make_images(tmp_path / "in", 6, size=(320, 240))
    out = tmp_path / "out"
    proc = run_cli("submit", "images", str(tmp_path / "in"), "--output", str(out), "--wait", "--json", env=env)
    assert proc.returncode == 0, describe(proc)
    doc = one_json_document(proc)
    assert doc.keys() >= DOCUMENT_KEYS
    assert JOB_ID.match(doc["job_id"])
    assert doc["kind"] == "images"
    assert doc["state"] == "succeeded"
    assert doc["images"]["ok"] == 6
    assert doc["images"]["failed"] == 0
    assert doc["failures"] == {}
    assert doc["bytes_in"] > 0
    assert doc["bytes_out"] > 0
    assert doc["elapsed_s"] > 0
    assert doc["output_dir"] == str(out.resolve())
    assert isinstance(doc["timings"], dict)
    assert doc["timings"]["transform_s"] > 0


@pytest.mark.usefixtures("worker")
def test_submit_without_wait_prints_only_the_job_id_and_result_wait_gives_the_document(
    env: dict[str, str], tmp_path: Path
) -> None:
    make_images(tmp_path / "in", 3, size=(200, 150))
    submitted = run_cli("submit", "images", str(tmp_path / "in"), "--output", str(tmp_path / "out"), env=env)
    assert submitted.returncode == 0, describe(submitted)
    lines = submitted.stdout.splitlines()
    assert len(lines) == 1, describe(submitted)
    job_id = lines[0]
    assert JOB_ID.match(job_id), describe(submitted)

    result = run_cli("result", job_id, "--wait", "--json", env=env)
    assert result.returncode == 0, describe(result)
    doc = one_json_document(result)
    assert doc["job_id"] == job_id
    assert doc["state"] == "succeeded"
    assert doc["images"]["ok"] == 3


def test_status_json_reports_the_finished_job(env: dict[str, str], finished_job: dict[str, Any]) -> None:
    proc = run_cli("status", finished_job["job_id"], "--json", env=env)
    assert proc.returncode == 0, describe(proc)
    doc = one_json_document(proc)
    assert doc["job_id"] == finished_job["job_id"]
    assert doc["state"] == "succeeded"
    assert doc["images"] == finished_job["images"]


def test_jobs_json_lists_the_job(env: dict[str, str], finished_job: dict[str, Any]) -> None:
    proc = run_cli("jobs", "--json", "--limit", "1000", env=env)
    assert proc.returncode == 0, describe(proc)
    docs = one_json_document(proc)
    assert isinstance(docs, list)
    assert finished_job["job_id"] in [doc["job_id"] for doc in docs]


def test_workers_json_lists_the_session_worker_with_its_pool_and_slots(
    env: dict[str, str], worker: WorkerProcess
) -> None:
    proc = run_cli("workers", "--json", env=env)
    assert proc.returncode == 0, describe(proc)
    found = {w["name"]: w for w in one_json_document(proc)}
    assert worker.name in found, describe(proc)
    record = found[worker.name]
    assert record["pid"] == worker.pid
    assert record["processes"] == 2
    assert "pipeline.transform" in record["queues"]
    assert len(record["slots"]) == 2
    assert all(isinstance(slot["pid"], int) and slot["pid"] > 0 for slot in record["slots"])


def test_result_failed_json_lists_every_failed_item_with_its_reason(
    env: dict[str, str], finished_job: dict[str, Any]
) -> None:
    proc = run_cli("result", finished_job["job_id"], "--failed", "--json", env=env)
    assert proc.returncode == 0, describe(proc)
    doc = one_json_document(proc)
    failed = doc["failed_items"]
    assert len(failed) == 1
    assert failed[0]["source"].endswith("x.jpg")
    assert failed[0]["reason"] == "not_an_image"
    assert doc["failures"] == {"not_an_image": 1}


# -- cancel ------------------------------------------------------------------------------------------


def test_cancel_on_a_finished_job_exits_1_and_says_it_had_already_ended(
    env: dict[str, str], finished_job: dict[str, Any]
) -> None:
    proc = run_cli("cancel", finished_job["job_id"], env=env)
    assert proc.returncode == 1, describe(proc)
    assert "had already ended" in proc.stderr
    assert "succeeded" in proc.stderr


@pytest.mark.usefixtures("worker")
def test_cancel_on_a_running_job_stops_it_and_the_result_is_cancelled_with_exit_1(
    env: dict[str, str], ledger: Ledger, tmp_path: Path
) -> None:
    make_images(tmp_path / "site", 40, size=(64, 48))
    with StaticServer(tmp_path / "site") as server:
        urls_file = tmp_path / "urls.txt"
        urls_file.write_text("".join(server.url_for(f"slow/1.0/img-{i:03d}.jpg") + "\n" for i in range(40)))
        submitted = run_cli("submit", "images", str(urls_file), "--batch-size", "1",
                            "--output", str(tmp_path / "out"), env=env)  # fmt: skip
        assert submitted.returncode == 0, describe(submitted)
        job_id = submitted.stdout.strip()
        wait_until_done(ledger, job_id, at_least=1)

        cancelled = run_cli("cancel", job_id, env=env)
        assert cancelled.returncode == 0, describe(cancelled)
        assert "cancelled" in cancelled.stderr

        result = run_cli("result", job_id, "--wait", "--json", "--timeout", "30", env=env)
    assert result.returncode == 1, describe(result)
    doc = one_json_document(result)
    assert doc["state"] == "cancelled"
    assert doc["images"]["ok"] + doc["images"]["failed"] < 40


# -- usage errors: exit 2, one line, before any Redis lookup -------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--bogus"], "--bogus"),
        (["--ops", "blur:abc"], "blur"),
        (["--ops", "nope"], "unknown op 'nope'"),
        (["--quality", "0"], "--quality"),
    ],
    ids=["unknown-flag", "bad-op-argument", "unknown-op", "quality-zero"],
)
def test_a_usage_error_exits_2_with_one_error_line_and_no_redis_needed(
    no_redis_env: dict[str, str], tmp_path: Path, extra: list[str], expected: str
) -> None:
    make_images(tmp_path / "in", 1, size=(32, 32))
    proc = run_cli("submit", "images", str(tmp_path / "in"), *extra, env=no_redis_env)
    assert proc.returncode == 2, describe(proc)
    lines = stderr_lines(proc)
    assert len(lines) == 1, describe(proc)
    assert lines[0].startswith("error:")
    assert expected in lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout == ""


def test_an_unknown_op_error_lists_the_valid_ops(no_redis_env: dict[str, str], tmp_path: Path) -> None:
    make_images(tmp_path / "in", 1, size=(32, 32))
    proc = run_cli("submit", "images", str(tmp_path / "in"), "--ops", "nope", env=no_redis_env)
    assert proc.returncode == 2, describe(proc)
    for op in ("thumbnail", "resize", "crop", "grayscale", "blur", "sharpen", "rotate"):
        assert op in proc.stderr, describe(proc)


def test_a_missing_source_exits_2_with_one_error_line_and_no_redis_needed(
    no_redis_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "does-not-exist"
    proc = run_cli("submit", "images", str(missing), env=no_redis_env)
    assert proc.returncode == 2, describe(proc)
    lines = stderr_lines(proc)
    assert len(lines) == 1, describe(proc)
    assert lines[0].startswith("error:")
    assert str(missing) in lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr


def test_a_directory_without_images_exits_2_before_any_redis_lookup(
    no_redis_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    proc = run_cli("submit", "images", str(tmp_path / "empty"), env=no_redis_env)
    # ImagesKind.resolve peeks at each source's first item but ignores that none has any;
    # "no images found" is only raised in Producer.submit_images, after the Redis URL is resolved.
    assert proc.returncode == 2, describe(proc)
    lines = stderr_lines(proc)
    assert len(lines) == 1, describe(proc)
    assert "no images found" in lines[0]


# -- Redis missing or unreachable: exit 3 --------------------------------------------------------------


@pytest.mark.parametrize("args", [["submit", "images", "IN"], ["status", "someid"]], ids=["submit", "status"])
def test_an_unreachable_redis_exits_3_with_one_broker_unreachable_line(
    unreachable_env: dict[str, str], tmp_path: Path, args: list[str]
) -> None:
    make_images(tmp_path / "in", 1, size=(32, 32))
    args = [str(tmp_path / "in") if a == "IN" else a for a in args]
    proc = run_cli(*args, env=unreachable_env, timeout=30)
    assert proc.returncode == 3, describe(proc)
    lines = stderr_lines(proc)
    assert len(lines) == 1, describe(proc)
    assert lines[0].startswith("error:")
    assert "broker unreachable" in lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr


def test_no_redis_configured_exits_3_and_says_to_run_up_or_set_the_url(
    no_redis_env: dict[str, str], tmp_path: Path
) -> None:
    make_images(tmp_path / "in", 1, size=(32, 32))
    proc = run_cli("submit", "images", str(tmp_path / "in"), env=no_redis_env)
    assert proc.returncode == 3, describe(proc)
    lines = stderr_lines(proc)
    assert len(lines) == 1, describe(proc)
    assert "pipeline up" in lines[0]
    assert "PIPELINE_REDIS_URL" in lines[0]
    assert "Traceback" not in proc.stderr


def test_a_wrong_redis_password_exits_3_and_says_the_password_was_refused(env: dict[str, str], redis_url: str) -> None:
    password = urlsplit(redis_url).password
    assert password
    wrong = {**env, "PIPELINE_REDIS_URL": redis_url.replace(f":{password}@", ":not-the-password@")}
    proc = run_cli("status", "someid", env=wrong)
    assert proc.returncode == 3, describe(proc)
    lines = stderr_lines(proc)
    assert len(lines) == 1, describe(proc)
    assert "not-the-password" not in proc.stderr
    # redisconn.reachable has a branch for exactly this message, but redis.AuthenticationError
    # subclasses redis.ConnectionError, so the "broker unreachable" branch above it always wins.
    assert "refused the password" in lines[0], describe(proc)


# -- unknown jobs: exit 4 ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["status", "result"])
def test_an_unknown_job_exits_4_with_no_job(env: dict[str, str], command: str) -> None:
    proc = run_cli(command, "20000101-000000-abcdef", env=env)
    assert proc.returncode == 4, describe(proc)
    lines = stderr_lines(proc)
    assert len(lines) == 1, describe(proc)
    assert "no job" in lines[0]


# -- help ----------------------------------------------------------------------------------------------


def test_the_group_help_exits_0_and_lists_the_exit_codes(no_redis_env: dict[str, str]) -> None:
    proc = run_cli("--help", env=no_redis_env)
    assert proc.returncode == 0, describe(proc)
    assert "exit code" in proc.stdout
    listed = {int(m) for m in re.findall(r"^\s+(\d+)\s{2,}\S", proc.stdout, re.MULTILINE)}
    assert listed == {0, 1, 2, 3, 4, 5, 70, 130}, describe(proc)


def test_running_pipeline_without_arguments_shows_the_help_as_help_not_as_a_one_line_error(
    no_redis_env: dict[str, str],
) -> None:
    proc = run_cli(env=no_redis_env)
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output
    # Click raises NoArgsIsHelpError (a UsageError) whose message is the whole help text;
    # main() flattens it into one `error: Usage: ...` line, so no section starts a line.
    assert re.search(r"^Commands:$", output, re.MULTILINE), describe(proc)
    assert not output.startswith("error:"), describe(proc)


def test_the_submit_images_help_exits_0_and_lists_the_ops(no_redis_env: dict[str, str]) -> None:
    proc = run_cli("submit", "images", "--help", env=no_redis_env)
    assert proc.returncode == 0, describe(proc)
    for op in ("thumbnail:W[xH]", "resize:WxH", "crop:WxH", "grayscale", "blur:R", "rotate:DEG"):
        assert op in proc.stdout, describe(proc)


# -- secrets -------------------------------------------------------------------------------------------


def test_no_output_ever_contains_the_redis_password(
    env: dict[str, str], redis_url: str, finished_job: dict[str, Any], tmp_path: Path
) -> None:
    password = urlsplit(redis_url).password
    assert password, "the session Redis must have a password for this test to mean anything"
    make_images(tmp_path / "in", 2, size=(64, 48))
    wrong_port = {**env, "PIPELINE_REDIS_URL": redis_url.replace(str(urlsplit(redis_url).port), str(free_port()))}
    job = finished_job["job_id"]
    runs = [
        run_cli(
            "submit", "images", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--wait", "--json", env=env
        ),
        run_cli("submit", "images", str(tmp_path / "in"), "--json", env=env),
        run_cli("status", job, "--json", env=env),
        run_cli("result", job, "--failed", "--json", env=env),
        run_cli("jobs", "--json", env=env),
        run_cli("workers", "--json", env=env),
        run_cli("status", job, env=wrong_port, timeout=30),
    ]
    for proc in runs:
        assert proc.returncode in (0, 3), describe(proc)
        assert password not in proc.stdout + proc.stderr, describe(proc)
    assert runs[-1].returncode == 3
