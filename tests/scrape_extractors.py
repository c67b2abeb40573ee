"""Extractors the scrape tests name by dotted path (``tests.scrape_extractors:FUNCTION``).

The test workers run from the repository root, so ``tests`` is importable there,
as a user's own package on the workers' ``PYTHONPATH`` would be.
"""

from __future__ import annotations

import re
from typing import Any


def sku_and_heading(url: str, html: str) -> list[dict[str, Any]]:
    """A product page's SKU and heading (by regular expression); refuses product 5, to fail one page."""
    if url.endswith("/item/5.html"):
        raise ValueError("product 5 is not for sale")
    sku = re.search(r'<span class="sku">([^<]+)</span>', html)
    heading = re.search(r"<h1>([^<]*)</h1>", html)
    if sku is None:
        return []
    return [{"sku": sku.group(1), "heading": heading.group(1) if heading else None, "length": len(html)}]
