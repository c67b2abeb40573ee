"""robots.txt per RFC 9309, with Protego doing the matching.

Protego parses and matches (longest match wins, Allow beats Disallow on a
tie, ``*`` and ``$``); fetching is ours, and so is what the RFC says a status
code means (section 2.3.1): 2xx = the rules; 4xx = "unavailable", crawl
anything; 5xx or no answer at all = "unreachable", crawl nothing. Only the
first 500 KiB are parsed.
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

    @classmethod
    def from_response(cls, status: int | None, body: bytes = b"") -> RobotsRules:
        if status is None or status >= 500:
            return cls(disallow_all=True)
        if status >= 400:
            return cls(allow_all=True)
        return cls(text=body[:PARSE_LIMIT].decode("utf-8", errors="replace"))

    def to_json(self) -> list[object]:
        return [self.text, self.allow_all, self.disallow_all]

    @classmethod
    def from_json(cls, raw: list[object]) -> RobotsRules:
        return cls(str(raw[0]), bool(raw[1]), bool(raw[2]))

    def allows(self, url: str, agent: str) -> bool:
        if self.allow_all:
            return True
        if self.disallow_all:
            return False
        return bool(_parsed(self.text).can_fetch(url, agent))


_CACHE: dict[str, Protego] = {}


def _parsed(text: str) -> Protego:
    """Parsing is the costly part; one parse per distinct robots.txt per process."""
    parser = _CACHE.get(text)
    if parser is None:
        if len(_CACHE) > 256:
            _CACHE.clear()
        parser = _CACHE[text] = Protego.parse(text)
    return parser
