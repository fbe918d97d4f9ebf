"""The one exception hierarchy of mailbot.

Outcomes are decided in exactly one place (the pipeline); everything below raises one of these.
"""


class MailbotError(Exception):
    """Base class of every error mailbot raises on purpose."""


class ConfigError(MailbotError):
    """The configuration file is missing, unreadable or has a wrong key; the message names the key
    and the fix. The CLI exits with status 2."""


class UnreadableFile(MailbotError):
    """An attachment could not be read as a table.

    `kind` says what was found (e.g. "doc", "wps", "rar", "7z", "encrypted", "image", "pdf",
    "too_large", "zip_bomb", "xml_entities", "corrupt", "empty"); `message` is plain Chinese for
    the school; `detail` is English for the operator's log.
    """

    def __init__(self, kind: str, message: str, detail: str = ""):
        super().__init__(f"{kind}: {detail or message}")
        self.kind = kind
        self.message = message
        self.detail = detail

    def __reduce__(self):
        # Crosses the process boundary from the table-reader workers.
        return (UnreadableFile, (self.kind, self.message, self.detail))


class WorkerFailure(MailbotError):
    """The isolated table reader died, ran out of memory or timed out: a `failed` outcome
    if it keeps happening (the file may simply be hostile, see the pipeline)."""


class TransportError(MailbotError):
    """A mail server could not be reached or answered unexpectedly."""


class DeadlineExceeded(TransportError):
    """A server operation did not finish within its overall deadline: a trickling or stuck peer
    (mailbot.transports.deadline). The connection has been cut."""


class TemporarySendError(TransportError):
    """The SMTP server refused for now (4xx, dropped connection): retry later with back-off."""


class PermanentSendError(TransportError):
    """The SMTP server refused for good (5xx, e.g. 163's `554 DT:SPM`): record, alert, no retry."""
