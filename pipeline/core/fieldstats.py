"""Aggregated results per field of a scrape, in bounded memory whatever the number of items.

For each field: how many items have it (fill rate), how many distinct values,
the 10 most common values, and min/max/mean/sum when every value is a number
(or a string that parses as one). A list field counts each of its elements.

Memory is bounded by two caps per field, chosen so a million-item scrape keeps
the reducer flat:

* **distinct**: an exact set of 64-bit value hashes up to ``DISTINCT_CAP``
  (~8 MB per field at the cap); beyond it the count is reported as *at least*
  the cap (``distinct_exact: false``). A sketch (HyperLogLog) would estimate
  further, but an estimate that looks exact misleads more than "≥ 100000".
* **top values**: exact counts while under ``TOP_CAP`` distinct values; past it
  the counter is pruned to its heaviest half whenever it fills (space-saving /
  Misra-Gries style), so the reported top 10 are the heavy hitters with counts
  that are lower bounds (``top_exact: false``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

DISTINCT_CAP = 100_000
TOP_CAP = 10_000
TOP_N = 10


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip().replace(",", ""))
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


_JSON_MARK = "\x00"  # keys of non-string values (numbers, dicts): their JSON after this mark


def _key(value: Any) -> str:
    return value if isinstance(value, str) else _JSON_MARK + json.dumps(value, sort_keys=True, ensure_ascii=False)


def _value(key: str) -> Any:
    return json.loads(key[1:]) if key.startswith(_JSON_MARK) else key


class FieldStats:
    """The running statistics of one field (``add`` each item's value, ``to_json`` at the end)."""

    def __init__(self) -> None:
        self.items = 0
        self.filled = 0
        self.hashes: set[int] = set()
        self.distinct_exact = True
        self.top: Counter[str] = Counter()
        self.top_exact = True
        self.numeric = True
        self.count = 0
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf

    def add(self, value: Any) -> None:
        self.items += 1
        if value is None or value == "" or value == []:
            return
        self.filled += 1
        for element in value if isinstance(value, list) else (value,):
            self._value(element)

    def _value(self, value: Any) -> None:
        key = _key(value)
        if self.distinct_exact:
            digest = int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest())
            self.hashes.add(digest)
            if len(self.hashes) > DISTINCT_CAP:
                self.distinct_exact = False
                self.hashes = set(list(self.hashes)[:DISTINCT_CAP])
        self.top[key] += 1
        if len(self.top) > TOP_CAP:
            self.top_exact = False
            self.top = Counter(dict(self.top.most_common(TOP_CAP // 2)))
        if self.numeric:
            number = _numeric(value)
            if number is None:
                self.numeric = False
            else:
                self.count += 1
                self.total += number
                self.low, self.high = min(self.low, number), max(self.high, number)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "filled": self.filled,
            "fill_rate": round(self.filled / self.items, 4) if self.items else 0.0,
            "distinct": len(self.hashes),
            "distinct_exact": self.distinct_exact,
            "top": [[_value(key), count] for key, count in self.top.most_common(TOP_N)],
            "top_exact": self.top_exact,
        }
        if self.numeric and self.count:
            mean = round(self.total / self.count, 6)
            out["numeric"] = {"min": _plain(self.low), "max": _plain(self.high), "mean": mean,
                              "sum": _plain(round(self.total, 6))}  # fmt: skip
        return out


def _plain(number: float) -> int | float:
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


class ItemStats:
    """Statistics of every field over a stream of items (fields in the order they were first seen)."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.fields: dict[str, FieldStats] = {name: FieldStats() for name in names}
        self.items = 0

    def add(self, item: Mapping[str, Any]) -> None:
        self.items += 1
        for name in item:
            if name not in self.fields and name != "url":  # a key only some items have (an extractor's)
                stats = self.fields[name] = FieldStats()
                stats.items = self.items - 1  # absent from the items before this one
        for name, stats in self.fields.items():
            stats.add(item.get(name))

    def to_json(self) -> dict[str, Any]:
        return {name: stats.to_json() for name, stats in self.fields.items()}
