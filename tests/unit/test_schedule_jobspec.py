"""Job specs of schedules: the `submit` parser decides, paths become absolute, terminal flags are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.core.errors import UsageError
from pipeline.producer import ImageJobRequest
from pipeline.scheduler.definition import Schedule, check_name
from pipeline.scheduler.jobspec import normalize, parse
from pipeline.scheduler.triggers import parse_trigger
from tests.helpers import make_images


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    make_images(tmp_path / "photos", 2)
    (tmp_path / "urls.txt").write_text("https://example.org/a.jpg\n")
    return tmp_path


def test_relative_sources_become_absolute_against_the_directory_of_schedule_add(cwd: Path) -> None:
    argv = normalize(["images", "photos", "urls.txt", "https://example.org/b.jpg", "--ops", "thumbnail:64"], cwd)
    assert argv == ("images", str(cwd / "photos"), str(cwd / "urls.txt"), "https://example.org/b.jpg",
                    "--ops", "thumbnail:64")  # fmt: skip


def test_globs_and_output_folders_become_absolute_in_both_option_forms(cwd: Path) -> None:
    argv = normalize(["images", "photos/*.jpg", "--output", "out", "--format=webp"], cwd)
    assert argv == ("images", str(cwd / "photos/*.jpg"), "--output", str(cwd / "out"), "--format=webp")
    assert normalize(["images", "photos", "--output=out"], cwd)[-1] == f"--output={cwd / 'out'}"


def test_option_values_are_never_mistaken_for_paths(cwd: Path) -> None:
    (cwd / "webp").write_text("a file that happens to share the name")
    assert normalize(["images", "photos", "--format", "webp"], cwd)[-2:] == ("--format", "webp")


def test_crawl_seeds_are_left_as_urls(cwd: Path) -> None:
    argv = ("crawl", "https://docs.example.org/", "--images", "--ops", "thumbnail:128", "--max-pages", "50")
    assert normalize(argv, cwd) == argv


@pytest.mark.parametrize("flag", ["--wait", "--json", "--timeout", "--timeout=5"])
def test_flags_for_a_watching_terminal_are_refused(cwd: Path, flag: str) -> None:
    with pytest.raises(UsageError, match=f"{flag.split('=')[0]} makes no sense in a schedule"):
        normalize(["images", "photos", flag], cwd)


def test_the_submit_parser_validates_the_stored_spec(cwd: Path) -> None:
    settings = Settings.load()
    request = parse(normalize(["images", "photos", "--ops", "thumbnail:64"], cwd), settings)
    assert isinstance(request, ImageJobRequest)
    assert request.sources == (str(cwd / "photos"),)
    with pytest.raises(UsageError, match="unknown op 'spin'"):
        parse(normalize(["images", "photos", "--ops", "spin:9"], cwd), settings)
    with pytest.raises(UsageError, match="job spec"):
        parse(normalize(["pictures", "photos"], cwd), settings)
    with pytest.raises(UsageError, match="expected KIND"):
        normalize([], cwd)


def test_a_missing_source_is_reported_as_typed(cwd: Path) -> None:
    with pytest.raises(UsageError, match="missing-folder"):
        parse(normalize(["images", "missing-folder"], cwd), Settings.load())


@pytest.mark.parametrize("name", ["nightly-docs", "thumbs", "a", "team.photos_2"])
def test_schedule_names_may_use_letters_digits_dots_dashes_underscores(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", "has space", "a/b", "x" * 65, "name@host"])
def test_other_schedule_names_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="schedule name"):
        check_name(name)


def test_unset_policies_follow_the_scheduler_settings() -> None:
    schedule = Schedule("s", parse_trigger(None, "1m", "UTC", 0), ("images", "/x"))
    defaults = schedule.policy(Settings.load())
    assert (defaults.overlap, defaults.misfire_grace_s, defaults.coalesce) == ("skip", None, True)
    tuned = Settings.load(scheduler_overlap="queue", scheduler_misfire_grace_s=30, scheduler_coalesce=False)
    assert schedule.policy(tuned) == type(defaults)("queue", 30, False)
    own = Schedule("s", schedule.trigger, schedule.argv, overlap="skip", misfire_grace_s=0, coalesce=True)
    assert own.policy(tuned) == type(defaults)("skip", None, True)  # 0 = no limit


def test_a_definition_survives_its_json_round_trip() -> None:
    schedule = Schedule("s", parse_trigger("0 3 * * *", None, "Europe/Paris", 0), ("images", "/x", "--ops", "blur:2"),
                        overlap="queue", misfire_grace_s=60.0, coalesce=False, created_at=12.5)  # fmt: skip
    assert Schedule.loads(schedule.dumps()) == schedule
