"""A scrape spec that cannot work is refused at submit: one line on stderr, exit 2, naming the culprit.

No Redis is configured: the refusal must come before anything looks for one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PIPELINE = str(Path(sys.executable).parent / "pipeline")
SEED = "http://127.0.0.1:9/"


def _submit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PIPELINE_HOME": str(cwd / "home")}
    return subprocess.run([PIPELINE, "submit", "scrape", SEED, *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def _refused(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--field", "title=jq:.title"), ("--field 'title'", "css: or xpath:")),
        (("--field", "title=css:h1[["), ("--field 'title'", "invalid CSS selector")),
        (("--field", "title=css:h1::bogus"), ("--field 'title'", "invalid CSS selector")),
        (("--field", "title=xpath://h1["), ("--field 'title'", "invalid XPath selector")),
        (("--field", "price=css:.p::text|re:([0-9]"), ("--field 'price'", "invalid regular expression")),
        (("--field", "price=css:.p::text|int|float"), ("--field 'price'", "one of |int, |float, |number")),
        (("--field", "no selector here"), ("expected NAME=SELECTOR",)),
        (("--item", "css:div[["), ("--item", "invalid CSS selector")),
        (("--follow", "xpath://a[@"), ("--follow", "invalid XPath selector")),
        (("--field", "t=css:h1::text", "-o", "out.xml"), ("--feed", ".jsonl, .json or .csv")),
        ((), ("nothing to extract",)),
        (("--field", "t=css:h1::text", "--unique", "sku"), ("unique key 'sku' is not a field",)),
    ],
)
def test_a_bad_field_selector_or_feed_is_refused_with_one_line_naming_it(
    tmp_path: Path, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    _refused(_submit(*args, cwd=tmp_path), *words)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[fields\nname = 'css:h1'", ("--spec", "not valid TOML")),
        ("[fields.price]\nre = '[0-9]+'\n", ("field 'price'", "no selector")),
        ("[fields]\nname = 'html:h1'\n", ("field 'name'", "css: or xpath:")),
        ("[fields.name]\nselector = 'css:h1'\nupper = true\n", ("field 'name'", "unknown processor 'upper'")),
        ("bogus = 1\n", ("unknown key 'bogus'",)),
    ],
)
def test_a_bad_spec_file_is_refused_with_one_line_naming_the_file_and_field(
    tmp_path: Path, text: str, words: tuple[str, ...]
) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(text, encoding="utf-8")
    _refused(_submit("--spec", str(spec), cwd=tmp_path), str(spec), *words)
