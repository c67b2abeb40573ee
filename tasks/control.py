"""The workers' answer to "can you import this plugin?", as a Celery inspect command.

The submit side (``pipeline.producer``) broadcasts ``plugin_importable`` with a
role and a name, never code; each live worker answers from its own environment
with ``pipeline.plugins.importable``: ``{"importable": true, "ok": "importable"}``
or ``{"importable": false, "error": "<the reason>"}`` (``ok``/``error`` are Celery's
reply convention, so ``celery inspect`` shows them; ``importable`` tells this
answer from a worker's "no such command"). The pool children are forked from a server with the same
interpreter and ``sys.path``, so what imports here imports there.

The command is registered wherever this module is imported: by workers
(``create_app``'s ``include``) and by ``tasks.app``, so ``celery -A tasks.app
inspect plugin_importable op NAME`` asks the same question by hand (Celery's
remote control: ``celery.worker.control.inspect_command``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from celery import Celery
from celery.app.control import flatten_reply
from celery.worker.control import inspect_command

from pipeline.plugins import GROUPS, importable

COMMAND = "plugin_importable"


@inspect_command(
    name=COMMAND,
    args=[("role", str), ("ref", str)],
    signature="<role> <ref>",
    default_timeout=2.0,
)
def plugin_importable(state: Any, role: str = "", ref: str = "", **_: Any) -> dict[str, Any]:
    """Whether this worker can import plugin REF for ROLE (extractor, op)."""
    if role not in GROUPS:
        return {"importable": False, "error": f"unknown plugin role {role!r} (known: {', '.join(GROUPS)})"}
    reason = importable(role, ref)
    return {"importable": True, "ok": "importable"} if reason is None else {"importable": False, "error": reason}


ASK_TIMEOUT_S = 5.0  # the longest a submit waits for the workers' answers (all answered: at once)


@dataclass(frozen=True)
class Answers:
    """What the live workers said about one plugin: who can import it, who cannot (and why), who was silent."""

    role: str
    ref: str
    able: tuple[str, ...]
    unable: dict[str, str]  # worker -> its reason
    silent: tuple[str, ...]


def ask_importable(app: Celery, role: str, ref: str, workers: Sequence[str], timeout: float = ASK_TIMEOUT_S) -> Answers:
    """Broadcast the question to every worker; wait for ``workers`` (the live ones) to answer, or ``timeout``.

    A worker of an older version does not know the command and answers with an
    error but no ``importable``: counted as silent (it can say nothing), like one
    that does not answer.
    """
    replies = flatten_reply(
        app.control.broadcast(
            COMMAND, arguments={"role": role, "ref": ref}, reply=True, timeout=timeout, limit=len(workers) or None
        )
        or []
    )
    return read_answers(role, ref, replies, workers)


def read_answers(role: str, ref: str, replies: Mapping[str, Any], workers: Sequence[str]) -> Answers:
    """The workers' replies (node -> reply) sorted into able, unable (with reasons) and silent."""
    able: list[str] = []
    unable: dict[str, str] = {}
    for node, reply in sorted(replies.items()):
        if isinstance(reply, dict) and reply.get("importable") is True:
            able.append(node)
        elif isinstance(reply, dict) and reply.get("importable") is False:
            unable[node] = str(reply.get("error", "no reason given"))
    answered = {*able, *unable}
    silent = tuple(name for name in dict.fromkeys([*workers, *sorted(replies)]) if name not in answered)
    return Answers(role, ref, tuple(able), unable, silent)
