"""A real browser on the Cores page: headless Debian chromium, driven by selenium through chromium-driver.

The browser logs in with basic auth (credentials in the URL), opens the Cores
page while a job runs, and must see a row for every core of both workers with
non-zero items/s, rendered by the page's own script from ``/api/cores``. The
screenshot goes to ``test-artifacts/`` (git-ignored). `make test` installs
chromium and chromium-driver when it can; where it cannot, this test skips and
says why.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pipeline.config import Settings
from pipeline.kinds import job_document
from pipeline.kinds.images import ImagesSpec
from pipeline.producer import Producer
from tests.flower_cluster import MonitoredCluster, monitored_cluster
from tests.helpers import make_images, wait_for_job

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# What works here as root in a container: no sandbox, no GPU, nothing phoning home.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1440,1100")  # fmt: skip

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="chromium and chromium-driver are not installed; `make test` installs them with apt-get when run as "
    "root (Debian: apt-get install chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonitoredCluster]:
    with monitored_cluster(tmp_path_factory.mktemp("browser-cluster"), dict(os.environ)) as started:
        yield started


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    # An explicit driver path: selenium then never runs Selenium Manager (which would download one).
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def core_rows(driver: Any) -> list[dict[str, str]]:
    """The page's per-core rows as the browser rendered them."""
    rows: list[dict[str, str]] = driver.execute_script(
        "return Array.from(document.querySelectorAll('tr.core-row')).map(function (tr) {"
        "  return {worker: tr.dataset.worker, core: tr.dataset.core, rate: tr.dataset.itemsPerS,"
        "          text: tr.innerText}; });"
    )
    return rows


def test_the_cores_page_shows_every_core_of_every_worker_busy_while_a_job_runs(
    cluster: MonitoredCluster, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    # Big enough to keep four pool processes busy for several seconds on a small machine.
    make_images(tmp_path / "in", 72, size=(1600, 1200))
    producer = Producer(Settings.load(redis_url=cluster.redis_url), cluster.redis_url)
    try:
        job_id = producer.submit(
            ImagesSpec(
                sources=[str(tmp_path / "in")], ops="blur:2,thumbnail:400", format="webp", output_dir=tmp_path / "out"
            )
        )
        flower = cluster.flower
        parts = urlsplit(flower.url)
        browser.get(f"{parts.scheme}://{flower.user}:{flower.password}@{parts.netloc}/cores")

        def every_core_busy(driver: Any) -> list[dict[str, str]] | None:
            rows = [r for r in core_rows(driver) if r["core"] != "io"]
            busy = {(r["worker"], r["core"]) for r in rows if float(r["rate"]) > 0}
            return rows if cluster.core_names() <= busy else None

        rows = WebDriverWait(browser, 30, poll_frequency=0.2).until(every_core_busy)
        state = job_document(producer.ledger, job_id)["state"]
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "flower-cores.png"))
        status = browser.find_element("id", "cores-refresh-status").text
        summary = browser.find_element("id", "cores-count").text
        doc = wait_for_job(producer.ledger, job_id)
    finally:
        producer.close()
    assert state == "running", "the page must show throughput while the job runs"
    assert doc["state"] == "succeeded"
    assert status.startswith("Live"), status
    assert summary == str(len(cluster.core_names()))
    assert {(r["worker"], r["core"]) for r in rows} >= cluster.core_names()
    assert "Cores" in browser.find_element("css selector", "nav .nav-link.active").text


def test_flowers_workers_page_still_renders_in_the_browser_and_links_the_cores_page(
    cluster: MonitoredCluster, browser: Any
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    flower = cluster.flower
    parts = urlsplit(flower.url)
    browser.get(f"{parts.scheme}://{flower.user}:{flower.password}@{parts.netloc}/workers")

    def listed(driver: Any) -> bool:  # Flower's script fills the table from /workers?json=1 (names split in spans)
        text: str = driver.execute_script("return document.getElementById('workers-table').innerText")
        squeezed = "".join(text.split())
        return all(worker.name in squeezed for worker in cluster.workers)

    WebDriverWait(browser, 20, poll_frequency=0.2).until(listed)
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "flower-workers.png"))
    tab = browser.find_element("link text", "Cores")
    tab.click()
    WebDriverWait(browser, 20, poll_frequency=0.2).until(lambda d: len(core_rows(d)) >= len(cluster.core_names()))
