"""The one exception tree of bchooks.

Every error a user can cause is a `BchooksError` whose message is one readable sentence. The adapters map
them in one place each: HTTP statuses in `receiver.HTTP_STATUS`, exit codes in `cli.exit_code`.
"""


class BchooksError(Exception):
    """Root of every error bchooks raises on purpose."""

    #: short machine-readable reason, used in JSON error bodies and the rejections table
    code = "error"


class ConfigError(BchooksError):
    """A setting is missing or malformed."""

    code = "bad_config"


class KitRunning(BchooksError):
    """`bchooks dev` already runs in this folder."""

    code = "kit_running"


class CannotServe(BchooksError):
    """The receiver cannot listen where it was told to (a port in use, an address not on this machine)."""

    code = "cannot_serve"


class InputError(BchooksError):
    """A value the user gave (URL, event type, count...) is not acceptable; nothing was sent."""

    code = "bad_input"


class VerificationError(BchooksError):
    """The request's signature does not prove it came from the secret's holder."""

    code = "invalid_signature"


class MissingSignature(VerificationError):
    code = "missing_signature"


class InvalidSignature(VerificationError):
    code = "invalid_signature"


class RequestError(BchooksError):
    """The sender's request is malformed (after a valid signature, or before reading it)."""

    code = "bad_request"


class BodyTooLarge(RequestError):
    code = "body_too_large"


class InvalidJSON(RequestError):
    code = "invalid_json"


class InvalidEnvelope(RequestError):
    code = "invalid_envelope"


class UnstorableEvent(RequestError):
    """A verified event whose values the database cannot take; only its own request fails."""

    code = "unstorable_event"


class StoreError(BchooksError):
    """The event store cannot be opened or is of an unknown schema."""

    code = "store_error"


class MissingStore(StoreError):
    """A command that only reads was pointed at a store that does not exist (nothing is created)."""

    code = "no_store"


class StoreUnavailable(StoreError):
    """The store cannot write right now (locked, read-only, full); retrying later may work."""

    code = "store_unavailable"


class ArchiveError(BchooksError):
    """An archive cannot be written, verified or read (a file that does not match its manifest); nothing in the
    store was deleted or overwritten because of it."""

    code = "archive_error"


class HandlerError(BchooksError):
    """A built-in handler's action failed (the worker retries it)."""

    code = "handler_failed"


class NotifyError(BchooksError):
    """A notification (the digest, an alert) did not reach every place it was sent to; the message names the
    services that failed (their URLs masked) and what they said; `reached` and `failed` list the services."""

    code = "notify_failed"

    def __init__(self, message, *, reached=(), failed=()):
        super().__init__(message)
        self.reached = tuple(reached)
        self.failed = tuple(failed)


class ReportError(BchooksError):
    """A report could not be made (the digest's notebook failed, timed out, or found no kernel)."""

    code = "report_failed"


class ApiError(BchooksError):
    """A call to the Big Cartel API (or the sandbox) failed.

    `status` is the HTTP status (None for connection failures); `details` holds the API's error body.
    """

    code = "api_error"

    def __init__(self, message, *, status=None, details=None, url=None):
        super().__init__(message)
        self.status = status
        self.details = details
        self.url = url
