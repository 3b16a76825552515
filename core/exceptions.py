"""The domain exception hierarchy. Services raise these; one handler maps them to HTTP."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """Base of every error a service raises on purpose.

    `status_code` and `code` become the HTTP status and the machine code of the error envelope;
    `extra` is merged into the envelope (e.g. `resetDate` for an exhausted quota) and `headers`
    into the response (e.g. `Retry-After`).
    """

    status_code = 400
    code = "error"
    default_message = "The request could not be completed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        errors: dict[str, list[str]] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code:
            self.code = code
        self.errors = errors or {}
        self.extra = extra or {}
        self.headers = headers or {}
        super().__init__(self.message)


class InvalidInput(ApplicationError):
    status_code = 400
    code = "validation_error"
    default_message = "The request is invalid."


class AuthenticationFailed(ApplicationError):
    status_code = 401
    code = "authentication_failed"
    default_message = "Authentication failed."


class PermissionDenied(ApplicationError):
    status_code = 403
    code = "permission_denied"
    default_message = "You do not have permission to do this."


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"
    default_message = "Not found."


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"
    default_message = "The request conflicts with existing data."


class InvalidUpload(ApplicationError):
    status_code = 400
    code = "invalid_upload"
    default_message = "The uploaded file is not acceptable."


class UploadTooLarge(InvalidUpload):
    status_code = 413
    code = "file_too_large"
    default_message = "The uploaded file is too large."


class UnsupportedMediaType(InvalidUpload):
    status_code = 415
    code = "unsupported_media_type"
    default_message = "The uploaded file's type is not supported."


class FileInfected(InvalidUpload):
    """The virus scanner found a signature in the upload; nothing of it is kept."""

    status_code = 400
    code = "file_infected"
    default_message = "The uploaded file contains a virus or malware and was refused."


class ScannerUnavailable(ApplicationError):
    """Uploads must be scanned, and the virus scanner does not answer."""

    status_code = 503
    code = "scanner_unavailable"
    default_message = "Uploads cannot be checked for viruses right now. Try again later."


class QuotaExceeded(ApplicationError):
    status_code = 429
    code = "quota_exceeded"
    default_message = "Your usage quota is exhausted."


class RateLimited(ApplicationError):
    status_code = 429
    code = "rate_limited"
    default_message = "Too many requests. Slow down and try again later."


class ProviderError(ApplicationError):
    """The AI provider answered, but with an error or a malformed body."""

    status_code = 502
    code = "provider_error"
    default_message = "The AI provider returned an error."


class ProviderUnavailable(ApplicationError):
    status_code = 503
    code = "provider_unavailable"
    default_message = "The AI provider is unavailable. Try again later."


class ProviderNotConfigured(ProviderUnavailable):
    code = "provider_not_configured"
    default_message = "No AI provider is configured for this service."


class ProviderTimeout(ApplicationError):
    status_code = 504
    code = "provider_timeout"
    default_message = "The AI provider did not answer in time."


class ServiceUnavailable(ApplicationError):
    """A store the request cannot do without (database, cache, job queue) is unreachable. Clients
    retry after `Retry-After`; nothing was charged or half stored."""

    status_code = 503
    code = "service_unavailable"
    default_message = "The service is temporarily unavailable. Try again shortly."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": "5"})
        super().__init__(message, **kwargs)


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    default_message = "The database is temporarily unavailable. Try again shortly."


class CacheUnavailable(ServiceUnavailable):
    code = "cache_unavailable"
    default_message = "The cache is temporarily unavailable. Try again shortly."


class QueueUnavailable(ServiceUnavailable):
    code = "queue_unavailable"
    default_message = "The job queue is temporarily unavailable. Try again shortly."
