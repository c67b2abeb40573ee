"""`pipeline schedule ...` as a user runs it, against two real schedulers that keep running throughout.

The two `pipeline scheduler` processes are started once for the module and never
restarted: every change made with the CLI here (add, pause, resume, remove,
run-now) must reach them while they run. The session worker finishes the jobs.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cluster import WorkerProcess
from pipeline.demo.server import StaticServer
from pipeline.kinds import job_document
from pipeline.kinds.images import ImagesSpec
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.scheduler import keys
from pipeline.scheduler.store import ScheduleStore, now_ms
from tests.helpers import make_images, wait_for_job, wait_until
from tests.integration.schedulers import (
    SchedulerProc,
    define,
    describe,
    run_cli,
    scheduled_jobs,
    scheduler_env,
    submitted,
    wipe_schedules,
)

pytestmark = pytest.mark.slow
JOB_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


@pytest.fixture(scope="module")
def pair(redis_url: str) -> Iterator[list[SchedulerProc]]:
    client = connect(redis_url)
    wipe_schedules(client)
    schedulers = [SchedulerProc.start(f"cli-replica{i}", scheduler_env(redis_url)) for i in range(2)]
    try:
        for scheduler in schedulers:
            scheduler.wait_ready()
        yield schedulers
    finally:
        for scheduler in schedulers:
            scheduler.stop()
        wipe_schedules(client)
        client.close()


@pytest.fixture
def store(redis_url: str) -> Iterator[ScheduleStore]:
    client = connect(redis_url)
    yield ScheduleStore(client)
    client.close()


@pytest.fixture
def env(redis_url: str) -> dict[str, str]:
    return scheduler_env(redis_url)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    make_images(tmp_path / "photos", 1, size=(64, 48))
    return tmp_path


def cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = run_cli(*args, env=env, cwd=cwd)
    assert proc.returncode == 0, describe(proc)
    return proc


def error_line(*args: str, env: dict[str, str], code: int) -> str:
    """The command fails with ``code`` and exactly one line on stderr, which is returned."""
    proc = run_cli(*args, env=env)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == code and len(lines) == 1, describe(proc)
    return lines[0]


def listed(env: dict[str, str]) -> dict[str, dict[str, object]]:
    return {row["name"]: row for row in json.loads(cli("schedule", "list", "--json", env=env).stdout)}


def test_a_bad_cron_string_exits_2_with_one_line(env: dict[str, str]) -> None:
    line = error_line("schedule", "add", "bad", "--cron", "61 * * * *", "--", "images", "/tmp", env=env, code=2)
    assert line.startswith("error: --cron '61 * * * *'") and "minute hour day-of-month month day-of-week" in line


def test_unknown_schedules_exit_4_like_unknown_jobs(env: dict[str, str]) -> None:
    for action in ("pause", "run-now"):
        assert error_line("schedule", action, "ghost", env=env, code=4) == (
            "error: no schedule 'ghost' (see `pipeline schedule list`)"
        )


def test_a_job_spec_is_checked_by_the_submit_parser_and_stored_with_absolute_paths(
    env: dict[str, str], workdir: Path, store: ScheduleStore
) -> None:
    refused = run_cli("schedule", "add", "w", "--every", "1h", "--", "images", "photos", "--wait", env=env, cwd=workdir)
    assert refused.returncode == 2 and "--wait makes no sense in a schedule" in refused.stderr, describe(refused)
    added = cli("schedule", "add", "hourly", "--every", "1h", "--", "images", "photos", "--ops", "grayscale",
                env=env, cwd=workdir)  # fmt: skip
    assert "schedule hourly added: every 1h, next run" in added.stderr
    assert store.get("hourly").job == ImagesSpec(sources=(str(workdir / "photos"),), ops="grayscale")
    store.remove("hourly")


def test_pause_resume_and_remove_reach_running_schedulers_without_restart(
    pair: list[SchedulerProc], worker: WorkerProcess, store: ScheduleStore, ledger: Ledger,
    env: dict[str, str], workdir: Path,
) -> None:  # fmt: skip
    define(store, "pulse", ["images", "photos"], workdir, every="1s")
    wait_until(lambda: len(submitted(store, "pulse")) >= 1, 20, "a first job")

    cli("schedule", "pause", "pulse", env=env)
    paused_ms = now_ms()
    for scheduler in pair:
        scheduler.wait_for("paused schedule pulse")
    time.sleep(2.1)  # not a readiness wait: fire times must pass while paused
    assert [f.fire_ms for f in store.history("pulse") if f.fire_ms > paused_ms] == []

    resuming_ms = now_ms()
    cli("schedule", "resume", "pulse", env=env)
    wait_until(lambda: store.history("pulse")[-1].fire_ms > resuming_ms, 20, "a fire after resume")
    assert [f.fire_ms for f in store.history("pulse") if paused_ms < f.fire_ms <= resuming_ms] == []

    cli("schedule", "remove", "pulse", env=env)
    removed_at = time.time()
    for scheduler in pair:
        scheduler.wait_for("removed schedule pulse")
    time.sleep(1.2)  # not a readiness wait: a fire time must pass after the removal
    assert all(meta.created_at < removed_at + 1.0 for meta in scheduled_jobs(ledger, "pulse"))
    assert not store.client.exists(keys.state_key("pulse"), keys.history_key("pulse"))


def test_run_now_submits_exactly_one_job_linked_to_its_schedule(
    pair: list[SchedulerProc], worker: WorkerProcess, store: ScheduleStore, ledger: Ledger,
    env: dict[str, str], workdir: Path,
) -> None:  # fmt: skip
    define(store, "daily", ["images", "photos"], workdir, every="1d")
    job_id = cli("schedule", "run-now", "daily", env=env).stdout.strip()
    assert JOB_ID.match(job_id)
    wait_for_job(ledger, job_id)
    assert [meta.job_id for meta in scheduled_jobs(ledger, "daily")] == [job_id]
    row = listed(env)["daily"]
    assert (row["last_job"], row["last_job_state"], row["last_outcome"]) == (job_id, "succeeded", "run-now")
    assert row["next_run"] is not None
    jobs_line = next(line for line in cli("jobs", env=env).stdout.splitlines() if job_id in line)
    assert "daily" in jobs_line
    assert job_document(ledger, job_id)["schedule"] == "daily"
    store.remove("daily")


@pytest.fixture
def slow_urls(tmp_path: Path) -> Iterator[Path]:
    """A URL list whose one image takes 1.5 s to fetch, so each job outlives a 1 s tick."""
    make_images(tmp_path / "site", 1, size=(64, 48))
    with StaticServer(tmp_path / "site") as server:
        urls = tmp_path / "slow.txt"
        urls.write_text(server.url_for("slow/1.5/img-000.jpg") + "\n")
        yield urls


def jobs_never_overlap(ledger: Ledger, name: str) -> None:
    """Every job of the schedule ended before the next one was submitted."""
    metas = [wait_for_job(ledger, meta.job_id) and ledger.meta(meta.job_id) for meta in scheduled_jobs(ledger, name)]
    for earlier, later in itertools.pairwise(metas):
        assert earlier.finished_at is not None and later.created_at >= earlier.finished_at, (earlier, later)


def test_a_fire_while_the_previous_job_runs_is_skipped_by_default(
    pair: list[SchedulerProc], worker: WorkerProcess, store: ScheduleStore, ledger: Ledger, slow_urls: Path
) -> None:
    define(store, "slowskip", ["images", str(slow_urls)], slow_urls.parent, every="1s")
    wait_until(lambda: len(submitted(store, "slowskip")) >= 2, 30, "two jobs")
    fires = store.history("slowskip")
    store.remove("slowskip")
    jobs = {fire.job for fire in fires if fire.outcome == "submitted"}
    skipped = [fire.detail for fire in fires if fire.outcome == "skipped"]
    assert skipped, fires
    assert all(re.fullmatch(r"previous job (\S+) still running", d) and d.split()[2] in jobs for d in skipped)
    jobs_never_overlap(ledger, "slowskip")


def test_with_overlap_queue_a_fire_waits_for_the_previous_job_and_then_runs(
    pair: list[SchedulerProc], worker: WorkerProcess, store: ScheduleStore, ledger: Ledger, slow_urls: Path
) -> None:
    define(store, "slowqueue", ["images", str(slow_urls)], slow_urls.parent, every="1s", overlap="queue")
    wait_until(lambda: len(submitted(store, "slowqueue")) >= 2, 30, "two jobs")
    first, second = submitted(store, "slowqueue")[:2]
    store.remove("slowqueue")
    jobs_never_overlap(ledger, "slowqueue")
    assert second.fire_ms == first.fire_ms + 1000  # the very next tick was kept, not skipped ...
    assert ledger.meta(second.job or "").created_at >= (ledger.meta(first.job or "").finished_at or 0)  # ... and held
    assert any("has ended; submitting the fire at" in scheduler.log() for scheduler in pair)


def test_a_schedule_entry_that_cannot_be_read_is_listed_invalid_and_the_others_keep_firing(
    pair: list[SchedulerProc], worker: WorkerProcess, store: ScheduleStore, env: dict[str, str], workdir: Path
) -> None:
    store.client.hset(keys.DEFS, "garbled", "{not json")
    store.client.incr(keys.REV)  # as any change does: the replicas re-read the definitions
    try:
        define(store, "steady", ["images", "photos"], workdir, every="1s")
        for scheduler in pair:
            scheduler.wait_for("schedule 'garbled' cannot be read")
        wait_until(lambda: len(submitted(store, "steady")) >= 2, 20, "the valid schedule to keep firing")
        assert all(scheduler.process.poll() is None for scheduler in pair), "no replica may exit over one entry"
        rows = {row["name"]: row for row in json.loads(cli("schedule", "list", "--json", env=env).stdout)}
        assert "invalid" in rows["garbled"] and "steady" in rows
        table = cli("schedule", "list", env=env).stdout
        assert "garbled" in table and "invalid" in table
    finally:
        store.client.hdel(keys.DEFS, "garbled")
        store.remove("steady")


def test_a_job_spec_with_shell_and_option_syntax_is_data_never_a_command(
    pair: list[SchedulerProc], worker: WorkerProcess, store: ScheduleStore, ledger: Ledger,
    env: dict[str, str], workdir: Path,
) -> None:  # fmt: skip
    canary = workdir / "pwned"
    hostile = workdir / f"$(touch {canary}); --output=etc"
    make_images(hostile, 1)
    added = cli("schedule", "add", "hostile", "--every", "1d", "--", "images", str(hostile), env=env, cwd=workdir)
    assert "added" in added.stderr
    try:
        job_id = cli("schedule", "run-now", "hostile", env=env).stdout.strip()
        doc = wait_for_job(ledger, job_id)
        assert doc["state"] == "succeeded" and doc["items"]["ok"] == 1
        assert store.get("hostile").job.sources == (str(hostile),)  # type: ignore[attr-defined]
        assert not canary.exists(), "a source name was run as a command"
        assert not doc["output_dir"].startswith("/etc")
    finally:
        store.remove("hostile")
