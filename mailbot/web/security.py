"""Security headers and the session secret.

No page runs a script: the Content-Security-Policy allows none (no inline ones either), styles
only from this site, and nothing may frame the console. The summary preview and an email's HTML,
which carry inline styles of their own, get a stricter sandboxed policy of their own (`SANDBOXED`).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from mailbot.config import Config
from mailbot.errors import ConfigError

CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
# For documents we show but did not write for the browser (the summary email, an email as sent):
# inline styles only, no scripts, no requests, and a unique origin (sandbox).
SANDBOXED = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; frame-ancestors 'self'"
SECRET_NAME = "web-session-secret"


def add_headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    if "sandbox" in response.headers["Content-Security-Policy"]:
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
    else:
        response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def session_secret(config: Config) -> bytes:
    """[web] session_secret_file when set (a systemd credential name first, else a path); else a
    secret generated once into the state directory, readable by the service user only."""
    configured = config.web.session_secret_file
    if configured:
        path = Path(configured)
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        if not path.is_absolute():
            if creds and (Path(creds) / path).is_file():
                path = Path(creds) / path
            elif config.path is not None:
                path = config.path.parent / path
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"web.session_secret_file {path} cannot be read: {exc.strerror}") from exc
        if len(secret) < 32:
            raise ConfigError(f"web.session_secret_file {path} holds fewer than 32 bytes; "
                              "make one with: head -c 32 /dev/urandom | base64")
        return secret
    path = config.state_dir / SECRET_NAME
    config.state_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_bytes().strip()
