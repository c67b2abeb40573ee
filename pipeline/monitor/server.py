"""`pipeline flower`: Flower itself, on our broker, with the Cores and Jobs pages and our series.

Flower's command (``celery flower``, flower/command.py) builds its app inside
one function. Rather than patch it, we take the same steps with its helpers —
``apply_env_options``, ``apply_options`` (flowerconfig.py and flags),
``extract_settings``, ``setup_logging`` — then build the same ``Flower`` app,
add our parts (``web.install``, ``prometheus.register``, the ``JobWatch``
thread reading the ledger) and run it. So every
Flower option keeps working, given after the command as ``--name=value``.

Option precedence, lowest first: our defaults (``PIPELINE_FLOWER_ADDRESS``,
``_PORT``, ``_USER``/``_PASSWORD`` as ``--basic-auth``), Flower's ``FLOWER_*``
variables, ``flowerconfig.py``, then the flags. Basic auth is on unless the
flags replace it; with no ``PIPELINE_FLOWER_PASSWORD`` a random password is
generated and shown once (as `jupyter` does with its token), so a first run
needs no setup and is never open.
"""

from __future__ import annotations

import errno
import secrets
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from pipeline.config import Settings
from pipeline.core.errors import ConfigError, UsageError
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.monitor import prometheus, web
from pipeline.monitor.board import CoreBoard
from pipeline.monitor.jobs import JobWatch
from pipeline.monitor.jobs_web import Actions
from pipeline.producer import Producer
from tasks.factory import create_app

OPTIONS_HELP = "see https://flower.readthedocs.io/en/latest/config.html"


@dataclass(frozen=True)
class Ready:
    """What `pipeline flower` tells the user once it listens."""

    url: str | None  # None when listening on a unix socket
    unix_socket: str
    user: str | None
    generated_password: str | None  # shown once; None when configured or replaced by flags


def check_args(argv: Sequence[str]) -> None:
    """Refuse what Flower would silently drop or misread: it wants ``--name=value``."""
    from flower.command import is_flower_option

    for arg in argv:
        if not arg.startswith("--"):
            raise UsageError(f"Flower options take the form --name=value, got {arg!r} (e.g. --port=5556)")
        if not is_flower_option(arg):
            name = arg.split("=", 1)[0]
            hint = " (the broker is PIPELINE_REDIS_URL)" if name in ("--broker", "--broker-url") else ""
            raise UsageError(f"unknown Flower option {name}{hint}; {OPTIONS_HELP}")


def _defaults(options: Any, settings: Settings) -> tuple[str, str | None]:
    """Apply our defaults; returns (the credential set, the generated password or None)."""
    configured = settings.flower_password.get_secret_value() if settings.flower_password else None
    password = configured or secrets.token_urlsafe(12)
    credential = f"{settings.flower_user}:{password}"
    options.address = settings.flower_address
    options.port = settings.flower_port
    options.basic_auth = [credential]
    return credential, None if configured else password


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def run(settings: Settings, broker_url: str, argv: Sequence[str], on_ready: Callable[[Ready], None]) -> None:
    """Run Flower until Ctrl-C or SIGTERM (both a clean stop)."""
    import tornado.options
    from flower import command
    from flower.app import Flower
    from flower.options import default_options as options
    from flower.urls import settings as flower_settings

    check_args(argv)
    credential, generated = _defaults(options, settings)
    command.apply_env_options()
    try:
        command.apply_options("pipeline flower", list(argv))
    except tornado.options.Error as exc:
        raise UsageError(f"Flower option: {exc}; {OPTIONS_HELP}") from None
    command.extract_settings()
    command.setup_logging()

    board = CoreBoard()
    watch = JobWatch(Ledger(connect(broker_url)))
    actions = Actions(lambda: Producer(settings, broker_url))
    app = Flower(capp=create_app(settings, broker_url), options=options, template_loader=web.Templates(),
                 **flower_settings)  # fmt: skip
    sampler = web.install(app, board, watch, actions)
    prometheus.register(board, watch)
    port = _listen(app, options)
    watch.start()
    ours = options.basic_auth == [credential]
    on_ready(Ready(
        url=None if options.unix_socket else _url(options, port),
        unix_socket=options.unix_socket,
        user=settings.flower_user if ours else None,
        generated_password=generated if ours else None,
    ))  # fmt: skip
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        app.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sampler.stop()
        watch.stop()
        app.stop()
        actions.close()


def _listen(app: Any, options: Any) -> int | None:
    try:
        port: int | None = app.start_http_server()
    except OSError as exc:
        where = options.unix_socket or f"{options.address or '0.0.0.0'}:{options.port}"
        advice = "pass --port=N or set PIPELINE_FLOWER_PORT" if exc.errno == errno.EADDRINUSE else "check the address"
        raise ConfigError(f"Flower cannot listen on {where}: {exc.strerror or exc}; {advice}") from None
    return port


def _url(options: Any, port: int | None) -> str:
    host = options.address or "0.0.0.0"
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if options.certfile and options.keyfile else "http"
    prefix = f"/{options.url_prefix.strip('/')}" if options.url_prefix else ""
    return f"{scheme}://{host}:{port}{prefix}"
