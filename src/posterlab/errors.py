"""One exception tree for posterlab.

Library code raises these; the edges translate them: Celery tasks into retry or a
``failed`` poster, the CLI into ``click.ClickException`` with exit code 1.
Every message is written for a person who has to act on it, and never contains a
secret (API keys, passwords in URLs).
"""

from __future__ import annotations


class PosterlabError(Exception):
    """Base class of every error posterlab raises on purpose.

    ``retryable`` tells the pipeline whether trying the same work again later can
    succeed (a timeout, a 503) or not (a corrupt image, a 400 from the API).
    ``code`` is a short, stable, machine-readable reason used to group failures.
    """

    retryable: bool = False
    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def reason(self) -> str:
        """``code: message``, the text stored with a failed poster."""
        return f"{self.code}: {self}"


class ConfigError(PosterlabError):
    """A setting (env var or flag) is missing or malformed."""

    code = "config"


class CheckFailed(PosterlabError):
    """A check before work starts failed: nothing was started (the CLI exits 2)."""

    code = "check"


class InputError(PosterlabError):
    """A manifest row or a poster reference cannot be used as given."""

    code = "input"


class FetchError(PosterlabError):
    """The poster bytes could not be obtained (missing file, HTTP error, refused URL)."""

    # posterlab.fetch always names a specific code; this default is for other raisers. It
    # is not "fetch": that string is the stage's name, and stage names have one home.
    code = "fetch-failed"


class TransientFetchError(FetchError):
    """Fetching failed in a way that may succeed later (timeout, 5xx, connection reset)."""

    retryable = True
    code = "fetch-transient"


class ImageError(PosterlabError):
    """The bytes are not an image posterlab can analyse (empty, truncated, too big, too small)."""

    code = "image"


class FaceApiError(PosterlabError):
    """The face-detection API failed."""

    code = "face-api"


class FaceApiInputError(FaceApiError):
    """The API refused this image (400-class): retrying the same bytes cannot help."""

    code = "face-api-input"


class FaceApiAuthError(FaceApiError):
    """The API refused the key (401/403). Fix the key; retrying cannot help."""

    code = "face-api-auth"


class FaceApiUnavailable(FaceApiError):
    """5xx, timeout, connection error or an unreadable answer: worth retrying."""

    retryable = True
    code = "face-api-unavailable"


class RateLimited(FaceApiError):
    """The API (or posterlab's own global limiter) says: not now, try after ``retry_after`` s."""

    retryable = True
    code = "rate-limited"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageError(PosterlabError):
    """The database or the blob store failed or is not in the expected state."""

    code = "storage"


class SchemaOutOfDate(StorageError):
    """The database schema is older (or newer) than this version of posterlab expects."""

    code = "schema"
