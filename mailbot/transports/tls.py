"""TLS for the IMAP and SMTP adapters: one way to trust a server, one way to say it is not trusted."""

from __future__ import annotations

import ssl

from mailbot.config import ServerConfig


def tls_context(server: ServerConfig) -> ssl.SSLContext:
    """Verify the server: with ca_file only that CA is trusted, else the system store."""
    return ssl.create_default_context(cafile=str(server.ca_file) if server.ca_file else None)


def untrusted_certificate(what: str, exc: ssl.SSLCertVerificationError) -> str:
    """The operator's message when the certificate check fails."""
    return (f"{what}: server certificate not trusted ({exc.verify_message}); "
            "set ca_file if the server uses a private CA")
