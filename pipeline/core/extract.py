"""A scrape's fields: selectors, processors, and the items they extract from a parsed page.

A field is ``NAME=SELECTOR`` (one value: the first match) or ``NAME[]=SELECTOR``
(every match, a list). SELECTOR is ``css:EXPR`` or ``xpath:EXPR`` evaluated by
**parsel** (Scrapy's selector library, so ``::text``, ``::attr(name)`` and XPath
functions mean what they mean in a Scrapy spider). Values are strings with
surrounding whitespace stripped; ``::attr(href)``/``::attr(src)`` (``/@href``,
``/@src``) values are made absolute against the page (its ``<base href>`` first).

Processors follow the selector on the command line (``|re:PATTERN``, ``|join``,
``|join:SEP``, ``|int``, ``|float``, ``|number``, ``|default:VALUE``,
``|required``) or are keys of the field's table in a spec file. They run in a
fixed order whatever order they are written in: re (per value: the first
group, or the whole match; a value that does not match is dropped), then the
number parsing (per value: a value that does not parse is dropped), then join
(a list becomes one string), then default (for a missing value). ``required``
makes an item without the field *incomplete*: not emitted, counted by field.

Everything here is pure and checked once at submit (``Extraction.parse``
refuses a bad selector, pattern or processor with one line naming the field);
the pool children run ``Extraction.items`` on each page's tree.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin

import lxml.etree
from parsel import Selector
from parsel.csstranslator import css2xpath

from pipeline.core.errors import UsageError

PREFIXES = ("css", "xpath")
PROCESSORS = ("re", "join", "int", "float", "number", "default", "required")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
# A processor starts at "|name" followed by ":" (re, join, default) or the end / the next "|".
_PROC_SPLIT = re.compile(
    r"\|(?=(?:re:|join(?::|$|\|)|int(?:$|\|)|float(?:$|\|)|number(?:$|\|)|default:|required(?:$|\|)))"
)
_ABSOLUTE_CSS = re.compile(r"::attr\(\s*(href|src)\s*\)\s*$")
_ABSOLUTE_XPATH = re.compile(r"/@(href|src)\s*$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
# The prefixes parsel's selectors know (EXSLT regular expressions and sets: re:test(), set:difference()).
_NAMESPACES = {"re": "http://exslt.org/regular-expressions", "set": "http://exslt.org/sets"}
_PREFIXED = re.compile(r"\b(re|set):")
_PROBE = lxml.etree.fromstring("<html><body><p>probe</p></body></html>", lxml.etree.HTMLParser())


@dataclass(frozen=True)
class Select:
    """A parsel selector: ``css:EXPR`` or ``xpath:EXPR``."""

    prefix: str
    expr: str

    @classmethod
    def parse(cls, text: str, where: str) -> Select:
        prefix, sep, expr = text.strip().partition(":")
        if not sep or prefix not in PREFIXES:
            raise UsageError(f"{where}: selector {text!r} must start with css: or xpath: (e.g. css:h1::text)")
        if not expr.strip():
            raise UsageError(f"{where}: empty {prefix} selector")
        select = cls(prefix, expr.strip())
        try:
            select.apply(Selector(root=_PROBE, type="html"))
            select.values(_PROBE)
        except Exception as exc:  # cssselect's SelectorError, parsel's ValueError("XPath error: ...")
            kind = "CSS" if prefix == "css" else "XPath"
            raise UsageError(f"{where}: invalid {kind} selector {select.expr!r}: {exc}") from None
        return select

    def apply(self, node: Selector) -> Any:
        return node.css(self.expr) if self.prefix == "css" else node.xpath(self.expr)

    def values(self, node: Any) -> list[str]:
        """What parsel's ``node.css(expr).getall()`` gives, on an lxml element, with the XPath compiled once.

        parsel translates the CSS (its own translator: ``::text``, ``::attr()``) and
        compiles the XPath on every call; a scrape evaluates the same few
        expressions on every page, so each thread keeps them compiled
        (``_compiled``) and the values are built as parsel builds them.
        """
        found = _compiled(self.text())(node)
        if not isinstance(found, list):
            found = [found]
        return [_serialized(value) for value in found]

    def nodes(self, node: Any) -> list[Any]:
        """The matches themselves (elements, or strings): an item's roots."""
        found = _compiled(self.text())(node)
        return found if isinstance(found, list) else [found]

    @property
    def absolute(self) -> bool:
        """Whether the values are link targets (href/src attributes), made absolute."""
        pattern = _ABSOLUTE_CSS if self.prefix == "css" else _ABSOLUTE_XPATH
        return bool(pattern.search(self.expr))

    def text(self) -> str:
        return f"{self.prefix}:{self.expr}"


def parse_number(value: Any, kind: str) -> int | float | None:
    """``value`` as a number (``int``, ``float``, or ``number``: an int when it is one); None if it is not.

    Thousands separators (``1,234``) and surrounding spaces are allowed; units are not
    (``|re:[\\d.]+`` takes a price out of ``$12.50``).
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number: float | int = value
    else:
        text = str(value).strip().replace(",", "").replace("_", "")
        if not _NUMBER.match(text):
            return None
        number = int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    if kind == "int":
        return int(number) if float(number).is_integer() else None
    if kind == "float":
        return float(number)
    return number


@dataclass(frozen=True)
class FieldSpec:
    """One field: its selector, whether it is a list, and its processors."""

    name: str
    select: Select
    many: bool = False
    pattern: str | None = None
    number: str | None = None  # "int", "float" or "number"
    join: str | None = None
    default: Any = None
    required: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "select": self.select.text(), "many": self.many, "re": self.pattern,
                "number": self.number, "join": self.join, "default": self.default,
                "required": self.required}  # fmt: skip

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FieldSpec:
        prefix, _, expr = str(raw["select"]).partition(":")
        return cls(str(raw["name"]), Select(prefix, expr), bool(raw.get("many")), raw.get("re"), raw.get("number"),
                   raw.get("join"), raw.get("default"), bool(raw.get("required")))  # fmt: skip

    def value(self, node: Any, base: str) -> Any:
        """The field's value in ``node`` (an lxml element): None (missing), a string/number, or a list."""
        matches = self.select.values(node)
        raw = [text.strip() for text in (matches if self.many else matches[:1])]
        if self.select.absolute:
            raw = [urljoin(base, text) if text else text for text in raw]
        values: list[Any] = raw
        if self.pattern is not None:
            values = [found for text in raw if (found := _first_match(self.pattern, text)) is not None]
        if self.number is not None:
            values = [n for text in values if (n := parse_number(text, self.number)) is not None]
        result: Any = values if self.many else (values[0] if values else None)
        if self.join is not None and isinstance(result, list):
            result = self.join.join(str(v) for v in result)
        if result is None or result == "" or result == []:
            return self.default if self.default is not None else ([] if self.many and self.join is None else None)
        return result


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_local = threading.local()  # lxml's compiled XPath objects must not be shared between threads


def _compiled(selector: str) -> Any:
    table: dict[str, Any] | None = getattr(_local, "xpaths", None)
    if table is None:
        table = _local.xpaths = {}
    compiled = table.get(selector)
    if compiled is None:
        prefix, _, expr = selector.partition(":")
        xpath = css2xpath(expr) if prefix == "css" else expr
        if _PREFIXED.search(xpath):
            # A compiled XPath given namespaces leaks memory on every call (measured: ~0.2 MB per page
            # of 1,000 items); the element's own evaluator, as parsel calls it, does not.
            compiled = functools.partial(_evaluate, xpath)
        else:
            compiled = lxml.etree.XPath(xpath, smart_strings=False)
        table[selector] = compiled
    return compiled


def _evaluate(xpath: str, node: Any) -> Any:
    return node.xpath(xpath, namespaces=_NAMESPACES, smart_strings=False)


def _serialized(value: Any) -> str:
    """A match as parsel's ``Selector.get`` writes it: an element's HTML, a string as is, a boolean 1/0."""
    if isinstance(value, str):
        return str(value)
    if value is True or value is False:
        return "1" if value else "0"
    try:
        return str(lxml.etree.tostring(value, method="html", encoding="unicode", with_tail=False))
    except TypeError:
        return str(value)


def _first_match(pattern: str, text: str) -> str | None:
    match = _regex(pattern).search(text)
    if match is None:
        return None
    return match.group(1) if match.groups() else match.group(0)


def parse_field(text: str) -> FieldSpec:
    """``NAME=SELECTOR[|processor...]`` (``NAME[]=`` for a list), as typed after ``--field``."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    many = name.endswith("[]")
    name = name.removesuffix("[]").strip()
    where = f"--field {name or text!r}"
    if not sep or not name:
        raise UsageError(f"--field {text!r}: expected NAME=SELECTOR, e.g. title=css:h1::text")
    parts = _PROC_SPLIT.split(rest)
    procs: dict[str, Any] = {}
    for proc in parts[1:]:
        key, _, arg = proc.partition(":")
        if key in procs:
            raise UsageError(f"{where}: processor |{key} given twice")
        procs[key] = arg if key in ("re", "join", "default") else True
        if key == "join" and not arg:
            procs[key] = " "
    return build_field(name, parts[0], many, procs, where)


def build_field(name: str, selector: str, many: bool, procs: Mapping[str, Any], where: str) -> FieldSpec:
    """A field from its parts (the command line's or a spec file's), every part checked."""
    if not _NAME.match(name):
        raise UsageError(f"{where}: field name {name!r} must be letters, digits, _ . - (starting with a letter)")
    if name == "url":
        raise UsageError(f"{where}: 'url' is the page of every item, added automatically; name the field otherwise")
    unknown = sorted(set(procs) - set(PROCESSORS))
    if unknown:
        raise UsageError(f"{where}: unknown processor {unknown[0]!r} (known: {', '.join(PROCESSORS)})")
    select = Select.parse(selector, where)
    pattern = procs.get("re")
    if pattern is not None:
        try:
            compiled = re.compile(str(pattern))
        except re.error as exc:
            raise UsageError(f"{where}: invalid regular expression {pattern!r}: {exc}") from None
        pattern = compiled.pattern
    numbers = [kind for kind in ("int", "float", "number") if procs.get(kind)]
    if len(numbers) > 1:
        raise UsageError(f"{where}: choose one of |int, |float, |number")
    join = procs.get("join")
    if join is True:
        join = " "
    number = numbers[0] if numbers else None
    joined = None if join is None else str(join)
    return FieldSpec(name, select, many, pattern, number, joined, procs.get("default"), bool(procs.get("required")))


@dataclass(frozen=True)
class PageItems:
    """What a page gave: its items (each a dict with ``url`` first), and items left out by field."""

    items: list[dict[str, Any]]
    incomplete: dict[str, int] = field(default_factory=dict)
    follow: list[str] | None = None  # links from --follow (None: every link, as a crawl)


@dataclass(frozen=True)
class Extraction:
    """A scrape's extraction: its fields, item and follow selectors, unique key and extractor."""

    fields: tuple[FieldSpec, ...] = ()
    item: Select | None = None
    follow: Select | None = None
    unique: tuple[str, ...] = ()
    extractor: str | None = None

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise UsageError(f"--field {twice}: defined twice")
        missing = [key for key in self.unique if key not in names and key != "url"]
        if missing and self.extractor is None:
            raise UsageError(f"unique key {missing[0]!r} is not a field (fields: {', '.join(names) or 'none'})")

    def to_json(self) -> dict[str, Any]:
        return {"fields": [f.to_json() for f in self.fields], "item": self.item.text() if self.item else None,
                "follow": self.follow.text() if self.follow else None, "unique": list(self.unique),
                "extractor": self.extractor}  # fmt: skip

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Extraction:
        def select(text: str | None) -> Select | None:
            if not text:
                return None
            prefix, _, expr = text.partition(":")
            return Select(prefix, expr)

        return cls(tuple(FieldSpec.from_json(f) for f in raw.get("fields", [])), select(raw.get("item")),
                   select(raw.get("follow")), tuple(raw.get("unique", [])), raw.get("extractor"))  # fmt: skip

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def items(self, root: Any, url: str) -> PageItems:
        """The items of a page whose lxml tree is ``root`` (fetched from ``url``, its final URL)."""
        base_hrefs = _compiled("xpath://base/@href")(root)
        base = urljoin(url, str(base_hrefs[0]).strip()) if base_hrefs else url
        items: list[dict[str, Any]] = []
        incomplete: dict[str, int] = {}
        if self.fields:
            nodes = self.item.nodes(root) if self.item is not None else [root]
            for node in nodes:
                if isinstance(node, str) or not hasattr(node, "tag"):
                    continue  # an item selector that matched text, not elements: nothing to look inside
                item: dict[str, Any] = {"url": url}
                missing = None
                for spec in self.fields:
                    value = item[spec.name] = spec.value(node, base)
                    if spec.required and missing is None and value in (None, "", []):
                        missing = spec.name
                if missing is not None:
                    incomplete[missing] = incomplete.get(missing, 0) + 1
                else:
                    items.append(item)
        follow = None
        if self.follow is not None:  # elements give their href (as Scrapy's response.follow_all(css=...))
            follow = []
            for found in self.follow.nodes(root):
                href = (
                    str(found) if isinstance(found, str) else (found.get("href") or "") if hasattr(found, "get") else ""
                )
                if href.strip():
                    follow.append(urljoin(base, href.strip()))
        return PageItems(items, incomplete, follow)


def unique_key(item: Mapping[str, Any], keys: Sequence[str]) -> str:
    """The identity of an item under a unique key: its values of ``keys``, as JSON."""
    return json.dumps([item.get(key) for key in keys], sort_keys=True, ensure_ascii=False)
