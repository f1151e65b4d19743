"""Errors that a rule raises and every front end answers the same way.

A page shows the message with the status (`limit_page`); the API's exception handler
(core.api) answers `{"detail": message}` with the status and `Retry-After`, as DRF does for
`Throttled`.
"""

from django.contrib import messages
from django.shortcuts import render


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
