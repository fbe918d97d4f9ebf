"""Serve the console with waitress (a production WSGI server, pure Python, threads)."""

from __future__ import annotations

import logging

from mailbot.config import Config
from mailbot.errors import ConfigError

log = logging.getLogger(__name__)
THREADS = 4  # SQLite in WAL mode: readers never wait for the daemon; a few threads are plenty


def parse_listen(text: str) -> tuple[str, int]:
    """"127.0.0.1:8080" or "[::1]:8080" -> (host, port)."""
    host, sep, port = (text or "").rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"web.listen must be HOST:PORT such as 127.0.0.1:8080, not {text!r}")
    return host, int(port)


def serve(config: Config, sessions, listen: str | None = None) -> None:
    from waitress import serve as waitress_serve

    from mailbot.web import create_app
    host, port = parse_listen(listen or config.web.listen)
    app = create_app(config, sessions)
    if host not in ("127.0.0.1", "::1", "localhost") and not config.web.https:
        log.warning("the web console listens on %s without HTTPS: put it behind nginx with TLS (deploy/README.md)",
                    host)
    log.info("web console on http://%s:%d/", host if ":" not in host else f"[{host}]", port)
    # trusted_proxy: nginx on this host sets X-Forwarded-For, so throttling sees the real address.
    waitress_serve(app, host=host, port=port, threads=THREADS, ident="mailbot", trusted_proxy="127.0.0.1",
                   trusted_proxy_headers={"x-forwarded-for", "x-forwarded-proto"}, clear_untrusted_proxy_headers=True,
                   channel_timeout=30)
