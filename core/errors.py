"""Errors that a rule raises and every front end answers the same way.

A page shows the message with the status; the API's exception handler (core.api) answers
`{"detail": message}` with the status and `Retry-After`, as DRF does for `Throttled`.
"""


class LimitExceeded(Exception):
    """A limit was hit: 429 (per user, with Retry-After) or 503 (the whole queue)."""

    def __init__(self, message, *, status=429, retry_after=None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
