"""The demo site's docs shape: a documentation site with its screenshots, the same for the same seed.

The docs benchmark (``benchmarks/docs.py``) crawls it with images; these are
the figures it relies on: every page reachable in two hops from ``/``, ~20 KB
pages, ~3 images a page, a few shared and a few missing.
"""

from __future__ import annotations

import io
import re
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from PIL import Image

from pipeline.demo import docs
from pipeline.demo.site import DemoSite

PAGES, IMAGES = 60, 170


@pytest.fixture(scope="module")
def site() -> Iterator[DemoSite]:
    with DemoSite(pages=PAGES, shape="docs", images=IMAGES) as running:
        yield running


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get_content_type(), exc.read()


def links(body: bytes, attribute: str) -> set[str]:
    return set(re.findall(rf'{attribute}="(/[^"#]*)"', body.decode()))


def test_every_page_is_reachable_from_the_contents_within_two_hops(site: DemoSite) -> None:
    seen, frontier = {"/"}, ["/"]
    for _ in range(2):
        frontier = [link for path in frontier for link in links(fetch(site.url + path)[2], "href") if link not in seen]
        seen.update(frontier)
    assert {f"/docs/{n}.html" for n in range(PAGES)} <= seen


def test_pages_weigh_about_20_kb_and_show_about_three_images(site: DemoSite) -> None:
    sizes, shown = [], []
    for n in range(PAGES):
        status, kind, body = fetch(f"{site.url}/docs/{n}.html")
        assert (status, kind) == (200, "text/html")
        sizes.append(len(body))
        shown.append(len(links(body, "src")))
    assert 15_000 < sum(sizes) / PAGES < 25_000
    assert 2.5 < sum(shown) / PAGES < 5


def test_images_are_small_pngs_and_some_jpegs_in_their_declared_format(site: DemoSite) -> None:
    formats = []
    for k in range(0, IMAGES, 7):
        status, kind, body = fetch(site.url + docs.image_path(k))
        assert status == 200
        image = Image.open(io.BytesIO(body))
        assert kind == {"PNG": "image/png", "JPEG": "image/jpeg"}[str(image.format)]
        assert 8_000 < len(body) < 70_000
        formats.append(image.format)
    assert formats.count("PNG") > 2 * formats.count("JPEG") > 0


def test_some_images_are_shared_between_pages_and_some_are_missing() -> None:
    plan = docs.plan(700, 2000, 11)
    shown = [k for ks in plan.images for k in ks[1:]]
    assert len(shown) > len(set(shown)) > 1900  # repeats beyond the logo
    assert plan.distinct == 2000
    assert 5 < len(plan.missing) < 60


def test_a_missing_image_and_an_unknown_path_answer_404(site: DemoSite) -> None:
    assert fetch(site.url + "/static/missing/3.png")[0] == 404
    assert fetch(site.url + "/static/shots/1.jpg")[0] == 404  # image 1 is a PNG: one URL per image
    assert fetch(site.url + f"/docs/{PAGES}.html")[0] == 404


def test_the_same_seed_serves_the_same_bytes_and_another_seed_another_site() -> None:
    paths = ("/", "/docs/7.html", docs.image_path(9), docs.image_path(15))
    with (
        DemoSite(pages=PAGES, shape="docs", images=IMAGES) as a,
        DemoSite(pages=PAGES, shape="docs", images=IMAGES) as b,
    ):
        first = [fetch(a.url + path)[2] for path in paths]
        assert first == [fetch(b.url + path)[2] for path in paths]
    with DemoSite(pages=PAGES, shape="docs", images=IMAGES, seed=12) as other:
        assert [fetch(other.url + path)[2] for path in paths[1:]] != first[1:]


def test_an_unknown_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        DemoSite(shape="blog")
