"""Per-user limits on what costs disk or CPU: the storage quota and the rate of costly
requests (uploads, imports, captioning runs, model uploads, training runs, scrape runs). Admins (and
superusers) are exempt, as for generation jobs (generation/limits.py).

    throttle(user, "uploads")            # LimitExceeded, 429 with Retry-After, if too many
    check_storage(user, new_bytes=1234)  # LimitExceeded, 413, if the quota would be passed

Both are called by the rule that does the costly thing (albums.ingest.store_uploads,
albums.archive.import_dataset, albums.tasks.start_caption_run, albums.scrape.start_scrape,
ModelVersion.from_upload and register, training.submit), so the API, the pages and the
admin meet the same limit with the same message, and nothing is written when one refuses.
The quota is checked again under the user's row lock (`lock_user`) in the transaction that
stores, so two requests at once cannot both pass it. The API's exception handler turns a
LimitExceeded into 413/429 with `{"detail": ...}`; pages show the message.

Rates are DRF throttle rates ("20/hour"), one per scope (IMAGINEER_THROTTLE_RATES, from
IMAGINEER_THROTTLE_*), counted by DRF's SimpleRateThrottle in the shared cache, so every
web process counts one history per user and scope.

The quota is in bytes: IMAGINEER_STORAGE_QUOTA_BYTES for everyone (0: none), or the
user's own `storage_quota_bytes`, which admins set on the user's page in the admin. What
counts is the size of every row the user owns in a model registered with
`@counts_toward_quota` (images, uploaded and trained LoRAs): each owner's row of bytes
that are stored once counts in full, so usage says nothing about anybody else's files.
"""

import math
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Sum
from rest_framework.throttling import SimpleRateThrottle

from core.errors import LimitExceeded

from .roles import ADMIN

# What each throttle scope counts, as its message names it.
SCOPES = {
    "uploads": "upload requests",
    "imports": "dataset imports",
    "captioning": "captioning runs",
    "model_uploads": "model registrations",
    "training": "training runs",
    "scraping": "scrape runs",
}
PERIODS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


def is_exempt(user):
    return user.is_superuser or user.groups.filter(name=ADMIN).exists()


def lock_user(user):
    """Serialise one user's costly requests (call inside transaction.atomic)."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()


class ScopeThrottle(SimpleRateThrottle):
    """DRF's rate throttle for one scope and one user, outside a view."""

    def __init__(self, scope):
        self.scope = scope
        super().__init__()

    def get_rate(self):
        return settings.IMAGINEER_THROTTLE_RATES[self.scope]

    def get_cache_key(self, request, view):
        # With the account's creation time: SQLite reuses the id of a deleted account, and
        # a new account must not inherit the old one's history.
        user = request.user
        ident = f"{user.pk}-{user.date_joined.timestamp():.6f}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


def throttle(user, scope):
    """Count one request of `scope` for `user`; LimitExceeded (429) when over the rate."""
    if user is None or is_exempt(user):
        return
    limiter = ScopeThrottle(scope)
    if limiter.allow_request(SimpleNamespace(user=user), None):
        return
    period = PERIODS[limiter.rate.split("/")[1][0]]
    raise LimitExceeded(
        f"Rate limit: at most {limiter.num_requests} {SCOPES[scope]} per {period} "
        f"({scope}). Try again in {math.ceil(limiter.wait())} seconds.",
        reason="rate_limited",
        retry_after=max(1, math.ceil(limiter.wait())),
    )


# The storage quota

_counted = []  # (model, owner field, size field)


def counts_toward_quota(owner="created_by", size="size_bytes"):
    """Class decorator: the model's rows count toward their owner's storage quota."""

    def register(model):
        _counted.append((model, owner, size))
        return model

    return register


def storage_quota(user):
    """The user's quota in bytes, or None for no quota (admins; a setting of 0)."""
    if is_exempt(user):
        return None
    quota = user.storage_quota_bytes
    if quota is None:
        quota = settings.IMAGINEER_STORAGE_QUOTA_BYTES
    return quota or None


def storage_used(user):
    """Bytes of the user's own rows (see the module docstring)."""
    return sum(
        model.objects.filter(**{owner: user}).aggregate(total=Sum(size))["total"] or 0
        for model, owner, size in _counted
    )


def check_storage(user, new_bytes=0):
    """LimitExceeded (413) if storing `new_bytes` more would pass the user's quota; with
    0, if the user is over it already (work that will store files: a training run)."""
    if user is None:
        return
    quota = storage_quota(user)
    if quota is None:
        return
    used = storage_used(user)
    if used + new_bytes > quota or (new_bytes == 0 and used >= quota):
        raise LimitExceeded(
            f"Storage quota: you store {used} bytes and this needs {new_bytes} more; "
            f"your quota is {quota} bytes. Delete images or models, or ask an admin for "
            "a larger quota.",
            reason="storage_quota",
            status=413,
        )
