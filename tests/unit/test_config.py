"""Settings from ``PIPELINE_*`` variables, and the checks that refuse unworkable ones."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.core.errors import ConfigError
from pipeline.core.limits import DEFAULT_MAX_PIXELS


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the variables they set, never the developer's own."""
    for name in list(os.environ):
        if name.startswith("PIPELINE_"):
            monkeypatch.delenv(name)


def config_error(**overrides: object) -> str:
    with pytest.raises(ConfigError) as caught:
        Settings.load(**overrides).check_delivery_timeouts()
    return caught.value.message


def test_defaults_load_and_pass_the_delivery_checks() -> None:
    settings = Settings.load()
    settings.check_delivery_timeouts()
    assert settings.redis_url is None
    assert settings.batch_size == 20
    assert settings.max_pixels == DEFAULT_MAX_PIXELS
    assert settings.log_format == "text"


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("PIPELINE_REDIS_URL", "redis://db:6379/2", "redis_url", "redis://db:6379/2"),
        ("PIPELINE_BATCH_SIZE", "50", "batch_size", 50),
        ("PIPELINE_PROCESSES", "3", "processes", 3),
        ("PIPELINE_THREADS", "16", "threads", 16),
        ("PIPELINE_FETCH_TIMEOUT_S", "12.5", "fetch_timeout_s", 12.5),
        ("PIPELINE_FETCH_RETRIES", "0", "fetch_retries", 0),
        ("PIPELINE_MAX_PIXELS", "1000", "max_pixels", 1000),
        ("PIPELINE_LOG_FORMAT", "json", "log_format", "json"),
        ("pipeline_batch_size", "7", "batch_size", 7),
    ],
)
def test_settings_read_pipeline_variables(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(Settings.load(), field) == expected


def test_variables_without_the_prefix_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCH_SIZE", "999")
    assert Settings.load().batch_size == 20


def test_unknown_pipeline_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_NOT_A_SETTING", "1")
    Settings.load()


def test_explicit_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_BATCH_SIZE", "50")
    assert Settings.load(batch_size=5).batch_size == 5


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PIPELINE_BATCH_SIZE", "0"),
        ("PIPELINE_BATCH_SIZE", "many"),
        ("PIPELINE_THREADS", "-1"),
        ("PIPELINE_FETCH_TIMEOUT_S", "0"),
        ("PIPELINE_FETCH_RETRIES", "11"),
        ("PIPELINE_MAX_BODY_BYTES", "10"),
        ("PIPELINE_BLOB_TTL_S", "5"),
        ("PIPELINE_LOG_FORMAT", "xml"),
        ("PIPELINE_VISIBILITY_TIMEOUT_S", "soon"),
        ("PIPELINE_REDIS_URL", "notaurl"),
        ("PIPELINE_REDIS_URL", "http://db:6379/0"),
        ("PIPELINE_REDIS_URL", "redis://db:99999/0"),
        ("PIPELINE_REDIS_URL", "redis://db:6379/zero"),
        ("PIPELINE_REDIS_URL", "redis:///0"),
        ("PIPELINE_REDIS_URL", "unix://"),
        ("PIPELINE_LOG_LEVEL", "bogus"),
        ("PIPELINE_LOG_LEVEL", "10"),
    ],
)
def test_an_invalid_value_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        Settings.load()
    assert variable in caught.value.message
    assert caught.value.exit_code == 3


def test_every_invalid_variable_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_BATCH_SIZE", "0")
    monkeypatch.setenv("PIPELINE_THREADS", "0")
    with pytest.raises(ConfigError) as caught:
        Settings.load()
    assert "PIPELINE_BATCH_SIZE" in caught.value.message
    assert "PIPELINE_THREADS" in caught.value.message


def test_a_visibility_timeout_at_1_2_times_the_deadline_is_refused() -> None:
    message = config_error(task_deadline_s=600, visibility_timeout_s=720)
    assert "PIPELINE_VISIBILITY_TIMEOUT_S=720" in message
    assert "PIPELINE_TASK_DEADLINE_S=600" in message


def test_a_visibility_timeout_below_the_deadline_is_refused() -> None:
    assert "PIPELINE_VISIBILITY_TIMEOUT_S" in config_error(task_deadline_s=600, visibility_timeout_s=300)


def test_a_visibility_timeout_just_over_1_2_times_the_deadline_passes() -> None:
    Settings.load(task_deadline_s=600, visibility_timeout_s=721).check_delivery_timeouts()


def test_a_deadline_shorter_than_the_worst_case_fetch_is_refused() -> None:
    message = config_error(fetch_timeout_s=30, fetch_retries=2, task_deadline_s=60, visibility_timeout_s=3600)
    assert "PIPELINE_TASK_DEADLINE_S=60" in message
    assert "3 attempts x 30 s + 2 back-offs of up to 10 s = 110 s" in message


def test_a_deadline_equal_to_the_worst_case_fetch_is_refused() -> None:
    assert "PIPELINE_TASK_DEADLINE_S" in config_error(fetch_timeout_s=10, fetch_retries=0, task_deadline_s=10)


def test_the_worst_case_fetch_includes_the_backoff_between_attempts() -> None:
    # 3 attempts x 30 s plus 2 sleeps of up to 10 s = 110 s > 100 s.
    config_error(fetch_timeout_s=30, fetch_retries=2, task_deadline_s=100, visibility_timeout_s=3600)


def test_the_deadline_check_comes_before_the_visibility_check() -> None:
    message = config_error(fetch_timeout_s=30, fetch_retries=2, task_deadline_s=60, visibility_timeout_s=10)
    assert message.startswith("PIPELINE_TASK_DEADLINE_S")


def test_outputs_default_to_a_folder_under_home(tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path / "state")
    assert settings.outputs == (tmp_path / "state" / "outputs").resolve()


def test_an_output_root_overrides_the_default(tmp_path: Path) -> None:
    assert Settings.load(output_root=tmp_path / "out").outputs == (tmp_path / "out").resolve()


def test_pool_sizes_default_from_the_available_cores() -> None:
    settings = Settings.load()
    assert settings.pool_processes >= 1
    assert settings.task_threads >= 8
    assert Settings.load(processes=3).task_threads == 12
    assert Settings.load(concurrency=2).task_threads == 2


def test_settings_are_immutable() -> None:
    settings = Settings.load()
    with pytest.raises(ValueError, match="frozen"):
        settings.batch_size = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "url", ["redis://db:6379/2", "redis://:secret@db/0", "rediss://user:pw@db.example.org:6380", "unix:///run/r.sock"]
)
def test_every_redis_url_redis_py_understands_is_accepted_as_written(url: str) -> None:
    assert Settings.load(redis_url=url).redis_url == url


def test_a_bad_redis_url_is_refused_without_repeating_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load(redis_url="redis://:hunter2@db:notaport/0")
    assert "hunter2" not in caught.value.message
    assert "PIPELINE_REDIS_URL" in caught.value.message


@pytest.mark.parametrize(("given", "level"), [("debug", "DEBUG"), (" Warning ", "WARNING"), ("ERROR", "ERROR")])
def test_a_log_level_is_one_of_the_logging_levels_in_any_case(given: str, level: str) -> None:
    assert Settings.load(log_level=given).log_level == level


def test_a_state_folder_is_created_under_home(tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path / "state")
    assert settings.state_path("logs") == tmp_path / "state" / "logs"
    assert (tmp_path / "state" / "logs").is_dir()


@pytest.mark.parametrize("home", ["/proc/nope", "a-file"])
def test_an_unusable_home_is_a_config_error_naming_pipeline_home(tmp_path: Path, home: str) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    settings = Settings.load(home=tmp_path / home if home == "a-file" else Path(home))
    with pytest.raises(ConfigError) as caught:
        settings.state_path("logs")
    assert caught.value.message.startswith("PIPELINE_HOME=")
    assert caught.value.exit_code == 3
