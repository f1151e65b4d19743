"""Rate limits and queue caps from the audit; every number is a site setting
(SiteSettings: the environment's values until an admin changes them).

Checked inside the submitting transaction with the user's row locked, so concurrent
requests of one user are counted one after another and never slip past a limit.
"""

from datetime import timedelta

from django.utils import timezone

from accounts.limits import check_storage, is_exempt
from core.errors import LimitExceeded

# Why a submission was refused, as /metrics counts it (imagineer_jobs_rejected_total):
# its parameters broke a rule (invalid), or one of the limits below (LimitExceeded.reason).
# storage_quota: the user's files fill their quota (accounts.limits.check_storage).
REJECTION_REASONS = ["invalid", "rate_limited", "cap", "queue_full", "storage_quota"]


def _retry_after(oldest, window):
    return max(1, int((oldest + window - timezone.now()).total_seconds()) + 1)


def check_submission(user, *, batch=False, new_jobs=1):
    from .models import ACTIVE, Batch, Job, SiteSettings, Status

    limits = SiteSettings.current()
    now = timezone.now()
    if not is_exempt(user):
        if batch:
            window, limit = timedelta(hours=1), limits.batches_per_hour
            recent = Batch.objects.filter(owner=user, created_at__gte=now - window)
            stamps = recent.order_by("created_at").values_list("created_at", flat=True)
            what = f"{limit} batch requests per hour"
        else:
            window, limit = timedelta(minutes=1), limits.jobs_per_minute
            recent = Job.objects.filter(owner=user, batch=None, queued_at__gte=now - window)
            stamps = recent.order_by("queued_at").values_list("queued_at", flat=True)
            what = f"{limit} generation requests per minute"
        if recent.count() >= limit:
            raise LimitExceeded(f"Rate limit: at most {what}.", reason="rate_limited",
                                retry_after=_retry_after(stamps.first(), window))
        active = (Job.objects.filter(owner=user, batch=None, status__in=ACTIVE).count()
                  + Batch.objects.filter(owner=user, status__in=ACTIVE).count())
        cap = limits.max_active_jobs
        if active >= cap:
            raise LimitExceeded(
                f"You have {active} active jobs (queued or running); the limit is {cap}. "
                "Wait for some to finish or cancel them (a batch counts once).",
                reason="cap",
                retry_after=10,
            )
    check_storage(user)  # its images would go past the quota
    queued = Job.objects.filter(status=Status.QUEUED).count()
    if queued + new_jobs > limits.max_queue:
        raise LimitExceeded(
            f"The queue is full: {queued} jobs are waiting and at most "
            f"{limits.max_queue} may. Try again later.",
            reason="queue_full",
            status=503,
            retry_after=30,
        )
