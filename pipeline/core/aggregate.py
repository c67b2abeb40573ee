"""Per-item results and the reduction that turns them into a job's aggregate.

The aggregate is a fold over a map keyed by item id where the *first* result
recorded for an id wins, so merging partial results is associative and
idempotent and re-delivered or retried items can never be counted twice. The
Redis ledger (``pipeline.ledger``) implements this fold in a Lua script; the
tests hold it equal to a reference fold written in Python (``tests/fold.py``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from typing import Any

STAGES = ("queue", "fetch", "parse", "transform", "store")
# One compact encoder for the rare parts ``to_json_text`` leaves to json: json.dumps
# with separators= builds a new encoder on every call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def _text(value: str | None) -> str:
    return "null" if value is None else encode_basestring_ascii(value)


def _number(value: object) -> str:
    """A number as json writes it; ints and finite floats without the encoder's per-call cost."""
    if type(value) is int:
        return int.__repr__(value)
    if type(value) is float and math.isfinite(value):
        return float.__repr__(value)
    return _COMPACT.encode(value)  # bools, None, NaN, infinities


@dataclass(frozen=True)
class ItemResult:
    """What happened to one item; the unit the ledger records (first write wins)."""

    id: str
    ok: bool
    source: str = ""
    reason: str | None = None
    detail: str = ""
    output: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    format: str | None = None
    width: int = 0
    height: int = 0
    timings: Mapping[str, float] = field(default_factory=dict)
    slot: int | None = None
    kind: str | None = None  # crawl jobs: "page", "image" or "other" (non-HTML)
    meta: Mapping[str, Any] = field(default_factory=dict)  # e.g. a page's title, depth, status

    @classmethod
    def failure(cls, item_id: str, source: str, reason: str, detail: str = "", **extra: Any) -> ItemResult:
        return cls(id=item_id, ok=False, source=source, reason=reason, detail=detail[:500], **extra)

    def to_json(self) -> dict[str, Any]:
        raw: dict[str, Any] = {"id": self.id, "ok": self.ok, "source": self.source}
        if self.ok:
            raw.update(output=self.output, format=self.format, width=self.width, height=self.height)
        else:
            raw.update(reason=self.reason, detail=self.detail)
        raw.update(bytes_in=self.bytes_in, bytes_out=self.bytes_out, timings=dict(self.timings))
        if self.slot is not None:
            raw["slot"] = self.slot
        if self.kind:
            raw["kind"] = self.kind
        if self.meta:
            raw["meta"] = dict(self.meta)
        return raw

    def to_json_text(self) -> str:
        """``json.dumps(self.to_json(), separators=(",", ":"))``, character for character, in half the time.

        Every result a worker records is encoded once; for tiny images the generic
        encoder (a dict built, then walked) was a tenth of the worker's main-process CPU.
        """
        if self.ok:
            middle = (f',"output":{_text(self.output)},"format":{_text(self.format)},'
                      f'"width":{_number(self.width)},"height":{_number(self.height)}')  # fmt: skip
        else:
            middle = f',"reason":{_text(self.reason)},"detail":{_text(self.detail)}'
        timings = ",".join(f"{_text(stage)}:{_number(seconds)}" for stage, seconds in self.timings.items())
        tail = "" if self.slot is None else f',"slot":{_number(self.slot)}'
        if self.kind:
            tail += f',"kind":{_text(self.kind)}'
        if self.meta:
            tail += f',"meta":{_COMPACT.encode(dict(self.meta))}'
        ok = "true" if self.ok is True else "false" if self.ok is False else _COMPACT.encode(self.ok)
        return (f'{{"id":{_text(self.id)},"ok":{ok},"source":{_text(self.source)}{middle},'
                f'"bytes_in":{_number(self.bytes_in)},"bytes_out":{_number(self.bytes_out)},'
                f'"timings":{{{timings}}}{tail}}}')  # fmt: skip

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ItemResult:
        return cls(
            id=str(raw["id"]),
            ok=bool(raw["ok"]),
            source=str(raw.get("source", "")),
            reason=raw.get("reason"),
            detail=str(raw.get("detail", "")),
            output=raw.get("output"),
            bytes_in=int(raw.get("bytes_in", 0)),
            bytes_out=int(raw.get("bytes_out", 0)),
            format=raw.get("format"),
            width=int(raw.get("width", 0)),
            height=int(raw.get("height", 0)),
            timings={k: float(v) for k, v in dict(raw.get("timings", {})).items()},
            slot=raw.get("slot"),
            kind=raw.get("kind"),
            meta=dict(raw.get("meta") or {}),
        )


@dataclass
class Totals:
    """Counters derived from a ledger; equal to the Redis ``stats`` hash of a job."""

    ok: int = 0
    failed: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    formats: Counter[str] = field(default_factory=Counter)
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    # Ledger health, only known to the Redis ledger: results for an id already
    # recorded (re-deliveries) and results for ids the job never had.
    duplicates: int = 0
    unexpected: int = 0
    # Crawl jobs: outcome counts per kind ({"page": {"ok": 3, "failed": 1}}), and
    # links not admitted because of --max-pages (capped) or --max-depth.
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    capped: int = 0
    beyond_depth: int = 0
    # Items whose output came from the result cache (``meta.cached``), not a transform.
    cache_hits: int = 0

    @classmethod
    def of(cls, ledger: Mapping[str, ItemResult]) -> Totals:
        totals = cls()
        for result in ledger.values():
            totals.add(result)
        return totals

    def add(self, result: ItemResult) -> None:
        if result.ok:
            self.ok += 1
            if result.format:
                self.formats[result.format] += 1
            if result.meta.get("cached") is True:
                self.cache_hits += 1
        else:
            self.failed += 1
            self.failures[result.reason or "error"] += 1
        if result.kind:
            outcome = "ok" if result.ok else "failed"
            counts = self.by_kind.setdefault(result.kind, {"ok": 0, "failed": 0})
            counts[outcome] += 1
        self.bytes_in += result.bytes_in
        self.bytes_out += result.bytes_out
        for stage, seconds in result.timings.items():
            self.timings[stage] = self.timings.get(stage, 0.0) + seconds

    @property
    def done(self) -> int:
        return self.ok + self.failed

    @classmethod
    def from_stats(cls, stats: Mapping[str, str]) -> Totals:
        """Read the ledger's flat Redis hash (``fail:REASON``, ``fmt:FORMAT``, ``t:STAGE``)."""
        totals = cls()
        for key, value in stats.items():
            if key.startswith("fail:"):
                totals.failures[key[5:]] = int(value)
            elif key.startswith("fmt:"):
                totals.formats[key[4:]] = int(value)
            elif key.startswith("t:"):
                totals.timings[key[2:]] = float(value)
            elif key.startswith(("ok:", "failed:")):
                outcome, kind = key.split(":", 1)
                totals.by_kind.setdefault(kind, {"ok": 0, "failed": 0})[outcome] = int(value)
            elif key in ("ok", "failed", "bytes_in", "bytes_out", "duplicates", "unexpected", "capped", "beyond_depth",
                         "cache_hits"):  # fmt: skip
                setattr(totals, key, int(value))
        return totals
