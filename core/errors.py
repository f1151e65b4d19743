"""Errors that a rule raises and every front end answers the same way.

A page shows the message with the status (`limit_page`); the API's exception handler
(core.api) answers `{"detail": message}` with the status and `Retry-After`, as DRF does for
`Throttled`.
"""

from django.contrib import messages
from django.shortcuts import render

# The code of a validation error that an id, slug or cursor names no row (or page) the
# caller may see: the API's exception handler answers 404 when a request has no other error.
NO_SUCH_ROW = "does_not_exist"
# ... that the request is well formed but the state of what it names does not allow it (a
# run that is not failed, a retired model, a slug already taken: DRF's "unique"): 409.
CONFLICT = "conflict"
# ... that this server's settings do not allow what it asks (a model source outside
# IMAGINEER_MODEL_ROOTS, the hub while downloads are off): 403.
FORBIDDEN = "forbidden"


def as_conflict(error):
    """A ValidationError of a request that names no values of its own (a retry: the values
    are those of the original, checked again), every message a CONFLICT: what changed since
    is the state, not the request."""
    from django.core.exceptions import ValidationError

    if not hasattr(error, "error_dict"):
        return ValidationError([ValidationError(m, code=CONFLICT) for m in error.messages])
    return ValidationError({field: [ValidationError(m, code=CONFLICT) for m in messages]
                            for field, messages in error.message_dict.items()})


class LimitExceeded(Exception):
    """A limit was hit: 429 (per user, with Retry-After), 413 (the user's storage quota:
    waiting does not help, so no Retry-After) or 503 (the whole queue).
    `reason` names the limit for /metrics (imagineer_jobs_rejected_total{reason}), e.g.
    "rate_limited", "cap", "queue_full", "storage_quota"
    (generation.limits.REJECTION_REASONS)."""

    def __init__(self, message, *, reason, status=429, retry_after=None):
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after

    @property
    def headers(self):
        """Retry-After, when waiting helps (429, 503)."""
        if self.status == 413:
            return {}
        return {"Retry-After": str(self.retry_after or 60)}


def limit_page(request, exc, template, context):
    """A page's answer to a LimitExceeded: the page with the message, its status and
    Retry-After."""
    messages.error(request, str(exc))
    response = render(request, template, context, status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response
