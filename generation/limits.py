"""Rate limits and queue caps from the audit; every number is a site setting
(SiteSettings: the environment's values until an admin changes them).

Checked inside the submitting transaction with the user's row locked, so concurrent
requests of one user are counted one after another and never slip past a limit.

The queue cap (`max_queue`) protects the queue from single jobs: a single job is refused
with 503 when the queue is full. A batch is not: an accepted batch runs to the end. Its
jobs are created at once, but only as many enter the queue as it has room for; the others
are held (`Job.held`) and enter as room frees up (`release_held_jobs`, called when a
worker takes a job, when a batch is submitted and every minute by housekeeping), each
place to the batch with the fewest jobs in the queue, so a large batch does not shut a
later one out.
"""

import heapq
from datetime import timedelta

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from accounts.limits import check_storage, is_exempt
from core.errors import LimitExceeded

# Why a submission was refused, as /metrics counts it (imagineer_jobs_rejected_total):
# its parameters broke a rule (invalid), or one of the limits below (LimitExceeded.reason).
# storage_quota: the user's files fill their quota (accounts.limits.check_storage).
REJECTION_REASONS = ["invalid", "rate_limited", "cap", "queue_full", "storage_quota"]


def _retry_after(oldest, window):
    return max(1, int((oldest + window - timezone.now()).total_seconds()) + 1)


def check_submission(user, *, batch=False):
    """Refuse (LimitExceeded) a submission of `user` past a rate limit, the active-job cap
    or, for a single job, the queue cap. A batch holds what the queue has no room for."""
    from .models import ACTIVE, Batch, Job, SiteSettings

    site = SiteSettings.current()
    limits = site.limits_for(user.role)
    now = timezone.now()
    if not is_exempt(user):
        if batch:
            window, limit = timedelta(hours=1), limits["batches_per_hour"]
            recent = Batch.objects.filter(owner=user, created_at__gte=now - window)
            stamps = recent.order_by("created_at").values_list("created_at", flat=True)
            what = f"{limit} batch requests per hour"
        else:
            window, limit = timedelta(minutes=1), limits["jobs_per_minute"]
            recent = Job.objects.filter(owner=user, batch=None, queued_at__gte=now - window)
            stamps = recent.order_by("queued_at").values_list("queued_at", flat=True)
            what = f"{limit} generation requests per minute"
        if recent.count() >= limit:
            raise LimitExceeded(f"Rate limit: at most {what}.", reason="rate_limited",
                                retry_after=_retry_after(stamps.first(), window))
        active = (Job.objects.filter(owner=user, batch=None, status__in=ACTIVE).count()
                  + Batch.objects.filter(owner=user, status__in=ACTIVE).count())
        cap = limits["max_active_jobs"]
        if active >= cap:
            raise LimitExceeded(
                f"You have {active} active jobs (queued or running); the limit is {cap}. "
                "Wait for some to finish or cancel them (a batch counts once).",
                reason="cap",
                retry_after=10,
            )
    check_storage(user)  # its images would go past the quota
    if batch:
        return
    queued = Job.objects.in_queue().count()
    if queued + 1 > site.max_queue:
        raise LimitExceeded(
            f"The queue is full: {queued} jobs are waiting and at most "
            f"{site.max_queue} may. Try again later.",
            reason="queue_full",
            status=503,
            retry_after=30,
        )


def release_held_jobs():
    """Let held batch jobs into the queue, as many as it has room for (max_queue): each
    place to the batch with the fewest jobs in the queue (each batch's in item order), so
    batches share the queue evenly and a large one does not shut a later one out. Returns
    the ids of the jobs let in (the caller queues a token for each:
    tasks.let_held_jobs_in).

    The batches holding jobs are locked first, in one order, so two callers (two workers)
    count the room one after the other and never both fill it.
    """
    from .models import Batch, Job, SiteSettings

    with transaction.atomic():
        held = Job.objects.held()
        batch_ids = sorted(set(held.values_list("batch_id", flat=True).distinct()))
        if not batch_ids:
            return []
        list(Batch.objects.select_for_update().filter(pk__in=batch_ids).order_by("pk")
             .values_list("pk", flat=True))
        room = SiteSettings.current().max_queue - Job.objects.in_queue().count()
        if room <= 0:
            return []
        waiting = {batch_id: iter(held.filter(batch_id=batch_id)
                                  .order_by("batch_position", "id")
                                  .values_list("pk", flat=True)[:room])
                   for batch_id in batch_ids}
        in_queue = dict(Job.objects.in_queue().filter(batch_id__in=batch_ids)
                        .values_list("batch_id").annotate(n=Count("id")).order_by())
        turns = [(in_queue.get(batch_id, 0), batch_id) for batch_id in batch_ids]
        heapq.heapify(turns)
        released = []
        while turns and len(released) < room:
            count, batch_id = heapq.heappop(turns)
            job = next(waiting[batch_id], None)
            if job is not None:
                released.append(job)
                heapq.heappush(turns, (count + 1, batch_id))
        Job.objects.held().filter(pk__in=released).update(held=False)
    return released
