"""robots.txt per RFC 9309, with Protego doing the matching.

Protego parses and matches (longest match wins, Allow beats Disallow on a
tie, ``*`` and ``$``); fetching is ours, and so is what the RFC says a status
code means (section 2.3.1): 2xx = the rules; 4xx = "unavailable", crawl
anything; 5xx or no answer at all = "unreachable", crawl nothing. An
unreachable robots.txt keeps *why* (``reason``: ``http_503``, ``timeout``,
``dns_error``, ``connection_error``... and a ``detail``), so the pages it
refuses report what happened rather than a bare "disallowed". At least the
first 500 KiB are parsed (section 2.5): a longer file is cut at its last whole
line within that, never refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from protego import Protego

PARSE_LIMIT = 500 * 1024


@dataclass(frozen=True)
class RobotsRules:
    text: str = ""
    allow_all: bool = False
    disallow_all: bool = False
    reason: str = ""  # why an unreachable robots.txt disallows everything (a failure reason)
    detail: str = ""

    @classmethod
    def from_response(cls, status: int | None, body: bytes = b"", detail: str = "") -> RobotsRules:
        if status is None:
            return cls(disallow_all=True, reason="connection_error", detail=detail)
        if status >= 500:
            return cls(disallow_all=True, reason=f"http_{status}", detail=detail or f"answered HTTP {status}")
        if status >= 400:
            return cls(allow_all=True)
        if len(body) > PARSE_LIMIT:  # cut at the last whole line: half a rule could mean another rule
            head = body[:PARSE_LIMIT]
            body = head[: head.rfind(b"\n") + 1] or head
        return cls(text=body.decode("utf-8", errors="replace"))

    @classmethod
    def unreachable(cls, reason: str, detail: str) -> RobotsRules:
        """No answer at all (``timeout``, ``dns_error``, ``connection_error``...): disallow, saying why."""
        return cls(disallow_all=True, reason=reason, detail=detail)

    def to_json(self) -> list[object]:
        return [self.text, self.allow_all, self.disallow_all, self.reason, self.detail]

    @classmethod
    def from_json(cls, raw: list[object]) -> RobotsRules:
        reason, detail = (str(raw[3]), str(raw[4])) if len(raw) >= 5 else ("", "")
        return cls(str(raw[0]), bool(raw[1]), bool(raw[2]), reason, detail)

    def allows(self, url: str, agent: str) -> bool:
        if self.allow_all:
            return True
        if self.disallow_all:
            return False
        return bool(_parsed(self.text).can_fetch(url, agent))

    def crawl_delay(self, agent: str) -> float:
        """The group's ``Crawl-delay`` for ``agent`` in seconds (0 when none): not in RFC 9309, but widely
        used, and honoured as a floor under the job's own ``--delay``."""
        if not self.text:
            return 0.0
        delay = _parsed(self.text).crawl_delay(agent)
        return max(0.0, float(delay)) if delay else 0.0


def agent_token(user_agent: str) -> str:
    """The product token robots.txt groups are matched with (RFC 9309 2.2.1): ``mybot/1.0 (+url)`` -> ``mybot``."""
    return user_agent.split("/", 1)[0].split()[0] if user_agent.strip() else "*"


_CACHE: dict[str, Protego] = {}


def _parsed(text: str) -> Protego:
    """Parsing is the costly part; one parse per distinct robots.txt per process."""
    parser = _CACHE.get(text)
    if parser is None:
        if len(_CACHE) > 256:
            _CACHE.clear()
        parser = _CACHE[text] = Protego.parse(text)
    return parser
