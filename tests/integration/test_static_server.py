"""The loopback test server: each misbehaving route misbehaves exactly as the fetch tests expect."""

from __future__ import annotations

import http.client
import io
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from pipeline.demo.server import StaticServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "pics").mkdir(parents=True)
    png = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(png, "PNG")
    (site / "pics" / "red.png").write_bytes(png.getvalue())
    (site / "notes.txt").write_text("plain notes\n")
    (site / "with space.txt").write_text("spaced\n")
    (tmp_path / "secret.txt").write_text("outside the root\n")
    (site / "escape.txt").symlink_to(tmp_path / "secret.txt")
    return site


@pytest.fixture
def server(root: Path) -> Iterator[StaticServer]:
    with StaticServer(root) as running:
        yield running


def get(server: StaticServer, path: str, timeout: float = 10) -> tuple[int, http.client.HTTPResponse, bytes]:
    """Send ``path`` verbatim: http.client does not normalise `..`, unlike aiohttp's client."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response, response.read()
    finally:
        conn.close()


def test_files_are_served_with_their_mimetype(server: StaticServer, root: Path) -> None:
    status, response, body = get(server, "/pics/red.png")
    assert (status, response.getheader("Content-Type")) == (200, "image/png")
    assert body == (root / "pics" / "red.png").read_bytes()
    status, response, body = get(server, "/notes.txt")
    assert (status, body) == (200, b"plain notes\n")
    assert response.getheader("Content-Type", "").startswith("text/plain")


def test_url_for_quotes_names_so_they_can_be_fetched(server: StaticServer) -> None:
    url = server.url_for("with space.txt")
    assert url == f"{server.url}/with%20space.txt"
    assert server.url.startswith("http://127.0.0.1:")
    assert get(server, url.removeprefix(server.url))[2] == b"spaced\n"


@pytest.mark.parametrize(
    "path", ["/../secret.txt", "/%2e%2e/secret.txt", "/pics/../../secret.txt", "/escape.txt", "/pics", "/missing"]
)
def test_paths_outside_the_root_or_not_files_are_not_found(server: StaticServer, path: str) -> None:
    status, _, body = get(server, path)
    assert status == 404
    assert b"outside" not in body


@pytest.mark.parametrize("code", [404, 500, 503])
def test_status_route_answers_with_the_requested_code(server: StaticServer, code: int) -> None:
    status, _, body = get(server, f"/status/{code}")
    assert status == code
    assert str(code).encode() in body


def test_flaky_route_fails_n_times_then_serves_the_file(server: StaticServer, root: Path) -> None:
    answers = [get(server, "/flaky/2/pics/red.png") for _ in range(4)]
    assert [status for status, _, _ in answers] == [503, 503, 200, 200]
    assert answers[0][1].getheader("Retry-After") == "0"
    assert answers[2][2] == (root / "pics" / "red.png").read_bytes()
    assert get(server, "/flaky/1/notes.txt")[0] == 503  # counted per path, not globally


def test_slow_route_waits_before_answering(server: StaticServer) -> None:
    started = time.monotonic()
    status, _, body = get(server, "/slow/0.3/-")
    assert time.monotonic() - started >= 0.3
    assert (status, body) == (200, b"slow but fine\n")
    assert get(server, "/slow/0/notes.txt")[2] == b"plain notes\n"


def test_slow_route_outlasts_an_impatient_client(server: StaticServer) -> None:
    with pytest.raises(TimeoutError):
        get(server, "/slow/30/-", timeout=0.2)


def test_drip_route_trickles_bytes_until_the_client_leaves(server: StaticServer) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request("GET", "/drip")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Length") is None
        assert response.read(2) == b".."
    finally:
        conn.close()


def test_stopping_is_prompt_even_with_a_drip_client_still_connected(root: Path) -> None:
    server = StaticServer(root)
    server.start()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request("GET", "/drip")
        assert conn.getresponse().read(1) == b"."
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 5
    finally:
        conn.close()


def test_big_route_streams_zeros_without_content_length(server: StaticServer) -> None:
    status, response, body = get(server, "/big/300001")
    assert status == 200
    assert response.getheader("Content-Length") is None
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert body == bytes(300001)


def test_not_image_route_sends_html_labelled_as_jpeg(server: StaticServer) -> None:
    status, response, body = get(server, "/not-image.jpg")
    assert (status, response.getheader("Content-Type")) == (200, "image/jpeg")
    assert body.startswith(b"<!doctype html>")


def test_redirect_route_sends_the_client_where_it_is_told(server: StaticServer) -> None:
    status, response, _ = get(server, "/redirect?to=http://internal.test:1/x")
    assert (status, response.getheader("Location")) == (302, "http://internal.test:1/x")
    assert get(server, "/redirect")[0] == 400


def test_hits_count_requests_per_path(server: StaticServer) -> None:
    for path in ["/notes.txt", "/notes.txt", "/status/500", "/missing"]:
        get(server, path)
    assert server.hits == {"/notes.txt": 2, "/status/500": 1, "/missing": 1}


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", ""])
def test_only_loopback_hosts_are_accepted(root: Path, host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        StaticServer(root, host=host)


def test_localhost_binds_one_ipv4_socket(root: Path) -> None:
    with StaticServer(root, host="localhost") as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert get(server, "/notes.txt")[0] == 200


def test_start_raises_when_the_port_is_taken(root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = StaticServer(root, port=taken.getsockname()[1])
        with pytest.raises(OSError):
            server.start()
        server.stop()  # a failed start leaves nothing to stop


def _server_process(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-W", "error", "-m", "pipeline.demo.server", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _first_line(process: subprocess.Popen[str], timeout: float = 20) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            pytest.fail(f"no output within {timeout}s")
    return process.stdout.readline()


def test_the_module_entry_prints_ready_serves_and_exits_on_sigterm(root: Path) -> None:
    process = _server_process(str(root))
    try:
        line = _first_line(process)
        assert line.startswith("READY http://127.0.0.1:")
        url = line.split()[1]
        port = int(url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/notes.txt")
        assert conn.getresponse().read() == b"plain notes\n"
        conn.close()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert (process.returncode, out, err) == (0, "", "")


def test_the_module_entry_refuses_a_non_loopback_host(root: Path) -> None:
    process = _server_process(str(root), "--host", "0.0.0.0")
    out, err = process.communicate(timeout=20)
    assert process.returncode == 2
    assert "loopback" in err
    assert "READY" not in out
