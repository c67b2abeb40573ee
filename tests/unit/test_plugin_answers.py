"""Reading the workers' replies to ``plugin_importable`` (``tasks.control.read_answers``)."""

from __future__ import annotations

from tasks.control import plugin_importable, read_answers


def test_each_worker_is_able_unable_with_its_reason_or_silent() -> None:
    replies = {
        "a@h": {"importable": True, "ok": "importable"},
        "b@h": {"importable": False, "error": "no op named 'x'"},
    }
    answers = read_answers("op", "x", replies, ["a@h", "b@h", "c@h"])
    assert answers.able == ("a@h",)
    assert answers.unable == {"b@h": "no op named 'x'"}
    assert answers.silent == ("c@h",)


def test_a_worker_that_does_not_know_the_command_counts_as_silent_not_as_unable() -> None:
    answers = read_answers("op", "x", {"old@h": {"error": "No such method: plugin_importable"}}, ["old@h"])
    assert answers.able == () and answers.unable == {}
    assert answers.silent == ("old@h",)


def test_the_command_answers_in_celerys_ok_error_convention() -> None:
    assert plugin_importable(None, role="op", ref="sepia") == {"importable": True, "ok": "importable"}
    refused = plugin_importable(None, role="op", ref="nope")
    assert refused["importable"] is False and "no op named 'nope'" in refused["error"]
    assert plugin_importable(None, role="stage", ref="sepia")["error"] == (
        "unknown plugin role 'stage' (known: extractor, op)"
    )
