"""A scrape's ``--spec FILE.toml``: fields with processors, item, follow, unique key and extractor.

The file is read on the client and its text kept in the job's spec (a
schedule fires long after, maybe elsewhere), then parsed again wherever the
spec is resolved: every part is checked by ``pipeline.core.extract``.
"""

from __future__ import annotations

import tomllib
from typing import Any

from pipeline.core.errors import UsageError
from pipeline.core.extract import FieldSpec, Select, build_field


def parse_spec_file(text: str, where: str) -> dict[str, Any]:
    """A ``--spec FILE.toml``'s extraction: {fields: [FieldSpec], item, follow, unique, extractor}.

    ``[fields]`` maps a name to a selector string, or to a table with ``selector``
    and processor keys (``re``, ``join``, ``number``/``int``/``float``, ``default``,
    ``required``, ``many``). ``where`` names the file in errors.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where}: not valid TOML: {exc}") from None
    known = {"fields", "item", "follow", "unique", "extractor"}
    if unknown := sorted(set(raw) - known):
        raise UsageError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    fields: list[FieldSpec] = []
    table = raw.get("fields", {})
    if not isinstance(table, dict):
        raise UsageError(f'{where}: [fields] must be a table of NAME = "css:..." or [fields.NAME] tables')
    for name, value in table.items():
        here = f"{where}: field {name!r}"
        if isinstance(value, str):
            fields.append(build_field(name, value, False, {}, here))
            continue
        if not isinstance(value, dict):
            raise UsageError(f"{here}: expected a selector string or a table with selector = ...")
        procs = {k: v for k, v in value.items() if k not in ("selector", "many")}
        if "selector" not in value:
            listed = ", ".join(sorted(procs)) or "nothing"
            raise UsageError(f'{here}: has {listed} but no selector (add selector = "css:...")')
        number = procs.pop("number", None)
        if isinstance(number, str):
            if number not in ("int", "float", "number"):
                raise UsageError(f'{here}: number must be "int", "float" or "number" (or true)')
            procs[number] = True
        elif number:
            procs["number"] = True
        fields.append(build_field(name, str(value["selector"]), bool(value.get("many")), procs, here))
    unique = raw.get("unique", [])
    unique = [unique] if isinstance(unique, str) else list(unique)
    out: dict[str, Any] = {"fields": fields, "unique": [str(u) for u in unique]}
    for key in ("item", "follow"):
        if key in raw:
            out[key] = Select.parse(str(raw[key]), f"{where}: {key}")
    if "extractor" in raw:
        out["extractor"] = str(raw["extractor"])
    return out
