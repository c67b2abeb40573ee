"""A real browser on our Flower pages: headless Debian chromium, driven by selenium through chromium-driver.

The browser logs in with basic auth (credentials in the URL) and watches jobs
run: the Cores page must show a row and a chart line for every core of both
workers and a headline that counts each item once; the Jobs page a job's
progress going up and then "succeeded"; a job's page must cancel a running
job. Everything on these pages is drawn by their own scripts from our JSON
endpoints and server-drawn SVG. Screenshots go to ``test-artifacts/``
(git-ignored; the folder is printed at the end of the run). `make test`
installs chromium and chromium-driver when it can; where it cannot, these
tests skip and say why.
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
from pipeline.core.document import FINAL_STATES
from pipeline.kinds import job_document
from pipeline.kinds.images import ImagesSpec
from pipeline.ledger.keys import job_key
from pipeline.producer import Producer
from tests.flower_cluster import MonitoredCluster, monitored_cluster
from tests.helpers import make_images, wait_for_job

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# What works here as root in a container: no sandbox, no GPU, nothing phoning home.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1440,1600")  # fmt: skip
IMAGES = 72  # big enough to keep four pool processes busy for a few seconds on a small machine

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="chromium and chromium-driver are not installed; `make test` installs them with apt-get when run as "
    "root (Debian: apt-get install chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[MonitoredCluster]:
    with monitored_cluster(tmp_path_factory.mktemp("browser-cluster"), dict(os.environ)) as started:
        yield started
    shots = sorted(ARTIFACTS.glob("flower-*.png"))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if shots and capture is not None:
        with capture.global_and_fixture_disabled():  # past pytest's capture, so it shows in a passing run
            print(f"\nFlower screenshots ({len(shots)}) in {ARTIFACTS}/: " + ", ".join(p.name for p in shots))


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of large images for every job here; each job uses other ops, so none is a cache hit."""
    folder = tmp_path_factory.mktemp("browser-images")
    make_images(folder, IMAGES, size=(1600, 1200))
    return folder


@pytest.fixture
def producer(cluster: MonitoredCluster) -> Iterator[Producer]:
    producer = Producer(Settings.load(redis_url=cluster.redis_url), cluster.redis_url)
    yield producer
    producer.close()


def _driver(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile / 'profile'}"):
        options.add_argument(flag)
    # An explicit driver path: selenium then never runs Selenium Manager (which would download one).
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(profile / "chromedriver.log"))
    return webdriver.Chrome(service=service, options=options)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One browser for the module (starting chromium costs seconds); each test opens its own page."""
    driver = _driver(tmp_path_factory.mktemp("chromium"))
    try:
        yield driver
    finally:
        driver.quit()


def open_page(browser: Any, cluster: MonitoredCluster, path: str) -> None:
    flower = cluster.flower
    parts = urlsplit(flower.url)
    browser.get(f"{parts.scheme}://{flower.user}:{flower.password}@{parts.netloc}{path}")


def screenshot(browser: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / f"flower-{name}.png"))


def until(browser: Any, probe: Any, timeout: float = 30) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(probe)


def core_rows(driver: Any) -> list[dict[str, str]]:
    """The page's per-core rows as the browser rendered them."""
    rows: list[dict[str, str]] = driver.execute_script(
        "return Array.from(document.querySelectorAll('tr.core-row')).map(function (tr) {"
        "  return {worker: tr.dataset.worker, core: tr.dataset.core, rate: tr.dataset.itemsPerS,"
        "          text: tr.innerText}; });"
    )
    return rows


def chart_series(driver: Any, figure: str) -> list[dict[str, Any]]:
    """Every series of a chart the page put in place: its data attributes and the points its lines draw."""
    series: list[dict[str, Any]] = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' svg g.series')).map(function (g) {"
        "  var drawn = Array.from(g.querySelectorAll('polyline')).reduce(function (n, line) {"
        "    return n + line.getAttribute('points').trim().split(/\\s+/).length; }, 0);"
        "  return {kind: g.dataset.kind, worker: g.dataset.worker, core: g.dataset.core, stage: g.dataset.stage,"
        "          points: drawn}; });",
        figure,
    )
    return series


def job_row(driver: Any, job_id: str) -> dict[str, Any] | None:
    row: dict[str, Any] | None = driver.execute_script(
        "var tr = document.querySelector('tr.job-row[data-job-id=\"' + arguments[0] + '\"]');"
        "return tr && {state: tr.dataset.state, done: parseInt(tr.dataset.done, 10),"
        "              total: parseInt(tr.dataset.total, 10), text: tr.innerText,"
        "              bar: tr.querySelector('.progress').getAttribute('aria-valuenow')};",
        job_id,
    )
    return row


def test_the_cores_page_shows_every_core_busy_with_a_chart_line_each_and_a_headline_counting_items_once(
    cluster: MonitoredCluster, browser: Any, images: Path, producer: Producer, tmp_path: Path
) -> None:
    job_id = producer.submit(
        ImagesSpec(sources=[str(images)], ops="blur:2,thumbnail:400", format="webp", output_dir=tmp_path / "out")
    )
    open_page(browser, cluster, "/cores")

    def every_core_busy(driver: Any) -> list[dict[str, str]] | None:
        rows = [r for r in core_rows(driver) if r["core"] != "io"]
        busy = {(r["worker"], r["core"]) for r in rows if float(r["rate"]) > 0}
        return rows if cluster.core_names() <= busy else None

    rows = until(browser, every_core_busy)
    state = job_document(producer.ledger, job_id)["state"]

    def a_line_per_core(driver: Any) -> list[dict[str, Any]] | None:
        lines = [s for s in chart_series(driver, "#chart-cores") if s["kind"] == "core"]
        drawn = {(s["worker"], s["core"]) for s in lines if s["points"] >= 5}  # five seconds of history
        return lines if cluster.core_names() <= drawn else None

    lines = until(browser, a_line_per_core)
    until(browser, lambda d: float(d.find_element("id", "cores-rate").text) > 0)  # the headline too
    status = browser.find_element("id", "cores-refresh-status").text
    summary = browser.find_element("id", "cores-count").text
    doc = wait_for_job(producer.ledger, job_id)
    done = doc["images"]["ok"] + doc["images"]["failed"]
    # Every item of the job counted once (the cluster ran nothing else): not once per stage pass.
    until(browser, lambda d: d.find_element("id", "cores-items").text == f"{done:,}", 15)
    screenshot(browser, "cores")  # the whole job on the charts
    stages = {s["stage"] for s in chart_series(browser, "#chart-stages") if s["kind"] == "stage"}
    assert state == "running", "the page must show throughput while the job runs"
    assert doc["state"] == "succeeded"
    assert status.startswith("Live"), status
    assert summary == str(len(cluster.core_names()))
    assert {(r["worker"], r["core"]) for r in rows} >= cluster.core_names()
    assert {(s["worker"], s["core"]) for s in lines} >= cluster.core_names()
    assert {"fetch", "transform", "store"} <= stages
    assert "Cores" in browser.find_element("css selector", "nav .nav-link.active").text


def test_the_jobs_page_shows_a_running_jobs_progress_going_up_then_succeeded(
    cluster: MonitoredCluster, browser: Any, images: Path, producer: Producer, tmp_path: Path
) -> None:
    open_page(browser, cluster, "/jobs")
    until(browser, lambda d: d.find_element("id", "jobs-refresh-status").text.startswith("Live"))
    job_id = producer.submit(
        ImagesSpec(sources=[str(images)], ops="blur:3,thumbnail:300", format="webp", output_dir=tmp_path / "out")
    )

    def running_part_way(driver: Any) -> dict[str, Any] | None:
        row = job_row(driver, job_id)
        return row if row and row["state"] == "running" and 0 < row["done"] < row["total"] else None

    first = until(browser, running_part_way)
    screenshot(browser, "jobs-running")
    later = until(browser, lambda d: (row := job_row(d, job_id)) and row["done"] > first["done"] and row)
    final = until(browser, lambda d: (row := job_row(d, job_id)) and row["state"] in FINAL_STATES and row)
    screenshot(browser, "jobs-succeeded")
    doc = wait_for_job(producer.ledger, job_id)
    assert first["total"] == IMAGES
    assert first["done"] < later["done"] <= final["done"] == IMAGES
    assert final["state"] == doc["state"] == "succeeded"
    assert final["bar"] == "100.0"
    assert "succeeded" in final["text"]
    assert "Jobs" in browser.find_element("css selector", "nav .nav-link.active").text

    # The job's own page: its chart, stage timings and report, from the same watch.
    browser.find_element("link text", job_id).click()
    until(browser, lambda d: d.find_element("id", "job-page").get_attribute("data-state") == "succeeded")
    until(browser, lambda d: any(s["kind"] == "items" and s["points"] >= 2 for s in chart_series(d, "#job-chart")))
    stages = browser.execute_script(
        "return Array.from(document.querySelectorAll('#job-timings tr.stage-row')).map(r => r.dataset.stage)"
    )
    until(browser, lambda d: d.find_elements("link text", "report.json"))
    screenshot(browser, "job-succeeded")
    assert {"queue", "fetch", "transform", "store"} <= set(stages)
    assert browser.find_element("id", "job-cancel").get_attribute("disabled") is not None


def test_cancel_on_a_running_jobs_page_cancels_the_job(
    cluster: MonitoredCluster, browser: Any, images: Path, producer: Producer, tmp_path: Path
) -> None:
    # Heavy ops, so the job is still running when the button is pressed; one item per batch, so the
    # batches already running when it is cancelled (which finish) are few.
    job_id = producer.submit(
        ImagesSpec(sources=[str(images)], ops="blur:8,sharpen,rotate:7,thumbnail:900", format="webp",
                   output_dir=tmp_path / "out", batch_size=1)
    )  # fmt: skip
    open_page(browser, cluster, f"/jobs/{job_id}")
    cancel = until(browser, lambda d: (b := d.find_element("id", "job-cancel")).is_enabled() and b)
    until(browser, lambda d: not d.find_element("id", "job-done").text.startswith("0 /"))  # under way
    assert producer.ledger.client.hget(job_key(job_id), "state") == "running", "cancel must hit a running job"
    cancel.click()
    until(browser, lambda d: d.switch_to.alert).accept()  # "Cancel job ...? Results so far are kept."
    notice = until(browser, lambda d: d.find_elements("id", "job-notice"))[0].text
    until(browser, lambda d: d.find_element("id", "job-page").get_attribute("data-state") == "cancelled")
    screenshot(browser, "job-cancelled")
    doc = wait_for_job(producer.ledger, job_id)
    assert doc["state"] == "cancelled"
    assert 0 < doc["images"]["ok"] + doc["images"]["failed"] < IMAGES, "the rest of the job was not run"
    assert notice.startswith("Job cancelled")
    assert browser.find_element("id", "job-cancel").get_attribute("disabled") is not None


def test_without_credentials_the_browser_gets_401_and_no_page(cluster: MonitoredCluster, tmp_path: Path) -> None:
    anonymous = _driver(tmp_path)  # a fresh profile: no cached credentials
    try:
        anonymous.get(cluster.flower.url + "/jobs")
        source = anonymous.page_source
        status = anonymous.execute_script(
            "return performance.getEntriesByType('navigation').map(e => e.responseStatus)[0]"
        )
    finally:
        anonymous.quit()
    assert status == 401
    assert "jobs-table" not in source


def test_flowers_workers_page_still_renders_in_the_browser_and_links_our_pages(
    cluster: MonitoredCluster, browser: Any
) -> None:
    open_page(browser, cluster, "/workers")

    def listed(driver: Any) -> bool:  # Flower's script fills the table from /workers?json=1 (names split in spans)
        text: str = driver.execute_script("return document.getElementById('workers-table').innerText")
        squeezed = "".join(text.split())
        return all(worker.name in squeezed for worker in cluster.workers)

    until(browser, listed, 20)
    screenshot(browser, "workers")
    browser.find_element("link text", "Jobs").click()
    until(browser, lambda d: d.find_elements("css selector", "tr.job-row"), 20)
    browser.find_element("link text", "Cores").click()
    until(browser, lambda d: len(core_rows(d)) >= len(cluster.core_names()), 20)
