"""Job specs of schedules: the `submit` parser decides, paths become absolute, terminal flags are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli.schedule import schedule_spec
from pipeline.config import Settings
from pipeline.core.errors import UsageError
from pipeline.kinds.crawl import CrawlSpec
from pipeline.kinds.images import ImagesSpec
from pipeline.scheduler.definition import Schedule, check_name
from pipeline.scheduler.errors import ScheduleInvalid
from pipeline.scheduler.triggers import parse_trigger
from tests.helpers import make_images


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    make_images(tmp_path / "photos", 2)
    (tmp_path / "urls.txt").write_text("https://example.org/a.jpg\n")
    return tmp_path


def spec_of(words: list[str], cwd: Path) -> object:
    return schedule_spec(words, Settings.load(), cwd)


def test_relative_sources_become_absolute_against_the_directory_of_schedule_add(cwd: Path) -> None:
    spec = spec_of(["images", "photos", "urls.txt", "https://example.org/b.jpg", "--ops", "thumbnail:64"], cwd)
    assert spec == ImagesSpec(sources=(str(cwd / "photos"), str(cwd / "urls.txt"), "https://example.org/b.jpg"),
                              ops="thumbnail:64")  # fmt: skip


def test_globs_and_output_folders_become_absolute_in_both_option_forms(cwd: Path) -> None:
    spec = spec_of(["images", "photos/*.jpg", "--output", "out", "--format=webp"], cwd)
    assert isinstance(spec, ImagesSpec)
    assert (spec.sources, spec.output_dir, spec.format) == ((str(cwd / "photos/*.jpg"),), cwd / "out", "webp")
    other = spec_of(["images", "photos", "--output=out"], cwd)
    assert isinstance(other, ImagesSpec) and other.output_dir == cwd / "out"


def test_option_values_are_never_mistaken_for_paths(cwd: Path) -> None:
    (cwd / "webp").write_text("a file that happens to share the name")
    spec = spec_of(["images", "photos", "--format", "webp"], cwd)
    assert isinstance(spec, ImagesSpec) and spec.format == "webp"


def test_crawl_seeds_are_left_as_urls_and_options_become_fields(cwd: Path) -> None:
    spec = spec_of(["crawl", "https://docs.example.org/", "--images", "--ops", "thumbnail:128", "--max-pages", "50"],
                   cwd)  # fmt: skip
    assert spec == CrawlSpec(seeds=("https://docs.example.org/",), images=True, ops="thumbnail:128", max_pages=50)


@pytest.mark.parametrize("flag", ["--wait", "--json", "--timeout", "--timeout=5"])
def test_flags_for_a_watching_terminal_are_refused(cwd: Path, flag: str) -> None:
    with pytest.raises(UsageError, match=f"{flag.split('=')[0]} makes no sense in a schedule"):
        spec_of(["images", "photos", flag], cwd)


def test_the_submit_parser_validates_the_stored_spec(cwd: Path) -> None:
    with pytest.raises(UsageError, match="unknown op 'spin'"):
        spec_of(["images", "photos", "--ops", "spin:9"], cwd)
    with pytest.raises(UsageError, match="job spec"):
        spec_of(["pictures", "photos"], cwd)
    with pytest.raises(UsageError, match="expected KIND"):
        spec_of([], cwd)


def test_a_missing_source_is_reported_as_typed(cwd: Path) -> None:
    with pytest.raises(UsageError, match="missing-folder"):
        spec_of(["images", "missing-folder"], cwd)


@pytest.mark.parametrize("name", ["nightly-docs", "thumbs", "a", "team.photos_2"])
def test_schedule_names_may_use_letters_digits_dots_dashes_underscores(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", "has space", "a/b", "x" * 65, "name@host"])
def test_other_schedule_names_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="schedule name"):
        check_name(name)


def test_unset_policies_follow_the_scheduler_settings() -> None:
    schedule = Schedule("s", parse_trigger(None, "1m", "UTC", 0), ImagesSpec(sources=("/x",)))
    defaults = schedule.policy(Settings.load())
    assert (defaults.overlap, defaults.misfire_grace_s, defaults.coalesce) == ("skip", None, True)
    tuned = Settings.load(scheduler_overlap="queue", scheduler_misfire_grace_s=30, scheduler_coalesce=False)
    assert schedule.policy(tuned) == type(defaults)("queue", 30, False)
    own = Schedule("s", schedule.trigger, schedule.job, overlap="skip", misfire_grace_s=0, coalesce=True)
    assert own.policy(tuned) == type(defaults)("skip", None, True)  # 0 = no limit


def test_a_definition_survives_its_json_round_trip() -> None:
    schedule = Schedule("s", parse_trigger("0 3 * * *", None, "Europe/Paris", 0),
                        ImagesSpec(sources=("/x",), ops="blur:2"), overlap="queue", misfire_grace_s=60.0,
                        coalesce=False, created_at=12.5)  # fmt: skip
    assert Schedule.loads(schedule.dumps()) == schedule


def test_a_definition_stored_as_command_words_by_an_older_version_is_invalid_with_its_reason() -> None:
    older = {"name": "s", "trigger": parse_trigger(None, "1m", "UTC", 0).to_json(), "argv": ["images", "/x"]}
    with pytest.raises(ScheduleInvalid, match="older version"):
        Schedule.loads(json.dumps(older), "s")


@pytest.mark.parametrize("text", ["not json", "[]", '{"name": "s"}', '{"job": {"kind": "pictures"}}'])
def test_a_definition_that_cannot_be_read_is_invalid_not_a_crash(text: str) -> None:
    with pytest.raises(ScheduleInvalid, match="cannot be read"):
        Schedule.loads(text, "s")
