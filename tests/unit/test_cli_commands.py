"""The CLI's command table: what `pipeline --help` lists without importing the commands."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
import pytest

from pipeline.cli.main import LAZY_COMMANDS, cli

HEAVY = ("aiohttp", "redis", "celery", "kombu", "pydantic", "pydantic_settings", "rich", "PIL", "lxml", "apscheduler")


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_each_listed_command_is_defined_in_its_module_with_the_listed_short_help(name: str) -> None:
    module_name, short_help = LAZY_COMMANDS[name]
    module = importlib.import_module(module_name)
    command = next(c for c in module.COMMANDS if c.name == name)
    assert command.get_short_help_str(limit=10**6) == short_help


def test_every_command_of_every_command_module_is_listed() -> None:
    for module_name in {module for module, _ in LAZY_COMMANDS.values()}:
        for command in importlib.import_module(module_name).COMMANDS:
            assert command.name in LAZY_COMMANDS, f"{command.name} of {module_name} is missing from LAZY_COMMANDS"


def test_the_group_resolves_every_listed_command() -> None:
    ctx = click.Context(cli)
    assert all(isinstance(cli.get_command(ctx, name), click.Command) for name in LAZY_COMMANDS)


def test_the_top_level_help_imports_no_heavy_library() -> None:
    """`pipeline --help` took ~0.7-0.9 s, ~0.5 s of it importing Redis, aiohttp, Celery and rich."""
    script = (
        "import sys\n"
        "from pipeline.cli.main import cli\n"
        "cli.main(['--help'], prog_name='pipeline', standalone_mode=False)\n"
        f"print('LOADED', sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert "Commands:" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "LOADED []"


def test_the_top_level_help_says_what_pipeline_runs() -> None:
    help_text = cli.get_help(click.Context(cli, info_name="pipeline"))
    assert "image, crawl and scrape jobs" in help_text
    assert "_PIPELINE_COMPLETE=bash_source" in help_text
