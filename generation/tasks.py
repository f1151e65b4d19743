"""django-q2 entry points for generation: the thin seam between rows and the engine.

Each queued task is only a token that says "run the next job". The task picks the job
in the database under fair share (the user served least recently goes first) and takes
it with a conditional update, so a job runs once however many tokens or workers there
are; it then goes on with the next queued jobs for a while (`run_next_job`). A job whose
worker died (kill -9) is given back to the queue by `reclaim_stale_jobs`, which runs when
a worker starts, before each job and every minute.

NSFW: once a call's pictures are made, the NSFW classifier (nsfw.py, when
IMAGINEER_NSFW_MODEL is set) scores them, and each job's images are stored with their
scores and flags in the transaction that ends the job. A classifier that fails is logged
and flags nothing; the job succeeds all the same.

Time limits: a job running longer than IMAGINEER_JOB_TIME_LIMIT is stopped at its next
step (`run_jobs`) and fails with error_type "timeout"; the engine frees its memory and the
task goes on with the next job. A step that never ends is caught by the token's own task
timeout (`token_timeout`): django-q2 raises TimeoutException in the task, the jobs fail as
timeouts and the cluster replaces the worker process.
"""

import io
import logging
import time

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django_q.brokers import get_broker
from django_q.exceptions import TimeoutException
from django_q.tasks import async_task

from albums.ingest import atomic_ingest, store_generated
from workers.leases import Heartbeat, NoLongerOurs, lease_interval, reclaim, worker_name

from .engine.metadata import png_bytes
from .engine.pipelines import Cancelled, Source, get_cache
from .limits import release_held_jobs
from .models import Job, JobTimedOut, SiteSettings, Status
from .nsfw import record_scores, score_pictures

log = logging.getLogger(__name__)

# Progress is written at most this often (seconds): each write is a database UPDATE.
PROGRESS_INTERVAL = 0.5

# A task goes on with the next queued job until it has run this long (seconds): well
# inside the cluster's task timeout, short enough for housekeeping to have its turn.
DRAIN_SECONDS = 60

# How far past a job's time limit its task may run before django-q2 stops it (seconds):
# the time to store a finished job's images.
TIMEOUT_GRACE = 60


def token_timeout():
    """The task timeout of a token (seconds), or None for the cluster's (IMAGINEER_JOB_TIMEOUT)
    when jobs have no time limit. A token drains jobs for up to DRAIN_SECONDS, and the last
    one may run its whole time limit: only a job stuck in one step for longer than the
    grace after its limit meets it."""
    limit = settings.IMAGINEER_JOB_TIME_LIMIT
    return limit + DRAIN_SECONDS + TIMEOUT_GRACE if limit else None


def enqueue_job_token():
    """Queue one "run the next job" token (call once per queued job)."""
    options = {"timeout": timeout} if (timeout := token_timeout()) else {}
    async_task("generation.tasks.run_next_job", task_name="run next job", group="generation",
               **options)


def enqueue_job_tokens(count):
    """Queue `count` tokens at once: in one transaction (the ORM broker's rows), not one
    each, which would cost a commit and a fresh database connection per token."""
    with transaction.atomic():
        for _ in range(count):
            enqueue_job_token()


def let_held_jobs_in():
    """Let held batch jobs into the queue as far as it has room (limits.release_held_jobs),
    with a token for each, queued when the transaction commits."""
    with transaction.atomic():
        released = release_held_jobs()
        if released:
            transaction.on_commit(lambda: enqueue_job_tokens(len(released)))
    return released


def ensure_job_token():
    """Queue a token when jobs are queued and no token waits in the broker."""
    if Job.objects.filter(status=Status.QUEUED).exists() and not get_broker().queue_size():
        enqueue_job_token()


def run_next_job():
    """Run the next queued job, then the next ones, for up to DRAIN_SECONDS.

    Tokens get lost: a worker killed with kill -9 takes with it the token it was running
    (its job is reclaimed with a new one) and the token its cluster had fetched ahead,
    which the broker keeps locked until `retry` (31 minutes). Because a task goes on while
    jobs are queued, any token left serves them all. Tokens to spare find no job and end
    at once.
    """
    until = time.monotonic() + DRAIN_SECONDS
    ran = []
    while True:
        reclaim_stale_jobs()
        jobs = take_next_jobs(worker_name())
        if not jobs:
            break
        run_jobs(jobs)
        ran += [job.pk for job in jobs]
        if time.monotonic() > until:
            ensure_job_token()  # the rest may have no token left: hand them one
            break
    return f"ran jobs {ran}" if ran else "no queued job"


def pick_next_job():
    """The oldest queued job of the user served least recently (fair share); held batch
    jobs wait for room in the queue (limits.release_held_jobs)."""
    queued = Job.objects.in_queue()
    owners = set(queued.values_list("owner_id", flat=True).distinct())
    if not owners:
        return None
    last_served = dict(
        Job.objects.filter(owner_id__in=owners, started_at__isnull=False)
        .values_list("owner_id")
        .annotate(last=Max("started_at"))
    )
    # Never served first, then the longest ago; ties by user id for a stable order.
    owner = min(owners, key=lambda o: (o in last_served, last_served.get(o), o))
    return queued.filter(owner_id=owner).order_by("queued_at", "id").first()


def take_next_jobs(worker):
    """Start the next job, and the queued jobs of its batch that can share its pipeline call."""
    while True:
        job = pick_next_job()
        if job is None:
            if Job.objects.in_queue().exists():
                continue  # another worker took that user's last job meanwhile: pick again
            if let_held_jobs_in():
                continue  # the queue had room for held batch jobs
            return []
        if job.start(worker):
            break  # else another worker took it first: pick again
    jobs = [job]
    if job.batch_id:
        max_batch = SiteSettings.current().max_batch
        key = job.batch_key()
        # The next few only: a batch's jobs nearly always share the key, and a batch may
        # hold a thousand.
        siblings = (
            Job.objects.filter(batch_id=job.batch_id, status=Status.QUEUED)
            .prefetch_related("joblora_set")
            .order_by("batch_position", "id")[:4 * max_batch]
        )
        for sibling in siblings:
            if len(jobs) >= max_batch:
                break
            if sibling.batch_key() == key and sibling.start(worker):
                jobs.append(sibling)  # held or not: it shares the call, it takes no room
    let_held_jobs_in()  # the jobs taken left room in the queue
    return jobs


def job_heartbeat(jobs):
    """Renews the jobs' lease from a thread while the engine runs (loads can be long)."""
    job_ids, worker = [job.pk for job in jobs], jobs[0].worker

    def beat():
        Job.objects.filter(pk__in=job_ids).renew(worker)

    return Heartbeat(beat, lease_interval())


def run_jobs(jobs):
    """Run started jobs as one pipeline call; each ends succeeded, failed or cancelled."""
    first = jobs[0]
    cancelled = set()
    last_write = [0.0]

    def on_step(step, total):
        if any(job.past_time_limit() for job in jobs):
            raise JobTimedOut(  # out of the engine, which frees the call's memory
                f"the job ran past its time limit of {settings.IMAGINEER_JOB_TIME_LIMIT} s "
                f"(IMAGINEER_JOB_TIME_LIMIT) and was stopped at step {step} of {total}")
        now = time.monotonic()
        if step < total and now - last_write[0] < PROGRESS_INTERVAL:
            return
        last_write[0] = now
        for job in jobs:
            # The generation is most of the work; saving the images is the rest.
            if not job.set_progress(0.95 * step / total):
                cancelled.add(job.pk)

    def should_cancel():
        return bool(cancelled)

    cache = get_cache()
    cache.max_loras = settings.IMAGINEER_MAX_LOADED_LORAS
    cache.compile = settings.IMAGINEER_COMPILE
    loras = first.lora_weights()
    try:
        with job_heartbeat(jobs):
            generated = cache.generate(
                first.model.engine_source(),
                [job.generation_params() for job in jobs],
                loras=[(lora.adapter_name, lora.engine_source(), weight)
                       for lora, weight in loras],
                vae=first.model.engine_vae(),
                source=job_source(first),
                **job_upscaler(first, cache),
                on_step=on_step,
                should_cancel=should_cancel,
            )
    except Cancelled:
        # The jobs in `cancelled` were cancelled, or given to another worker: not ours to
        # change. The others shared the call: requeue them.
        for job in jobs:
            if job.pk not in cancelled and job.requeue():
                enqueue_job_token()
        log.info("jobs cancelled", extra={"jobs": sorted(cancelled)})
        _after(jobs)
        return
    except TimeoutException as exc:
        # django-q2's task timeout (token_timeout): a step that never ended. The jobs fail
        # as timeouts; re-raised, the task ends and the cluster replaces this process.
        log.error("task timeout", extra={"jobs": [job.pk for job in jobs]})
        for job in jobs:
            job.fail(JobTimedOut(f"the worker's task ran past its timeout ({exc})"))
        _after(jobs)
        raise
    except Exception as exc:
        log.exception("generation failed", extra={"jobs": [job.pk for job in jobs]})
        for job in jobs:
            job.fail(exc)
        _after(jobs)
        return
    log.info("generated", extra={"jobs": [job.pk for job in jobs],
                                 "pipeline_loads": cache.load_count})
    per_job = first.num_images
    # The NSFW classifier's scores (None: off, or failed and logged: nothing is flagged).
    scores = score_pictures(list(generated))
    for index, job in enumerate(jobs):
        try:
            with atomic_ingest():  # all of a job's images and its end, or none of them
                numbers = range(index * per_job, (index + 1) * per_job)
                saved = save_images(job, generated, numbers)
                if scores is not None:
                    record_scores(saved, [scores[number] for number in numbers])
                if not job.finish(saved):
                    raise NoLongerOurs
        except NoLongerOurs:  # cancelled, or given to another worker, meanwhile
            log.info("job no longer ours: its images are not kept", extra={"job": job.pk})
        except Exception as exc:
            log.exception("saving images failed", extra={"job": job.pk})
            job.fail(exc, context="saving images failed")
    _after(jobs)


def job_upscaler(job, cache):
    """The engine's upscaler arguments of a job: its upscaler model, loaded in the cache
    (one at a time, released with the pipeline), and the name its PNGs give it; none for
    the plain resampler. Jobs that share a call share it (Job.batch_key)."""
    if job.upscaler_id is None:
        return {}
    return {"upscaler": cache.upscaler_model(job.upscaler.engine_source()),
            "upscaler_name": job.upscaler.name}


def job_source(job):
    """The engine's Source of a job (its picture and mask, read through the storage), or
    None for text to image. Jobs that share a call share it (Job.batch_key)."""
    if job.init_image_id is None:
        if job.mask_id or any(job.generation_params().outpaint()):
            raise ValueError("the job's init_image was deleted before it ran")
        return None
    return Source(image=open_image(job.init_image),
                  mask=open_image(job.mask) if job.mask_id else None)


def open_image(image):
    """The stored image decoded (PIL), its file read whole through default_storage."""
    from PIL import Image as PILImage

    with image.file.open("rb") as stored:
        picture = PILImage.open(io.BytesIO(stored.read()))
        picture.load()
    return picture


def save_images(job, generated, numbers):
    """Store the images `numbers` of a call's results (the engine's Generated, which knows
    each image's seed and the sampler) as PNGs with the A1111 `parameters` chunk."""
    params = job.params()
    vae = job.model.vae
    model = {"model_name": job.model.name, "model_sha256": job.model.sha256,
             "vae_name": vae.name if vae else None, "vae_sha256": vae.sha256 if vae else None,
             "loras": [(lora.name, lora.sha256) for lora, _ in job.lora_weights()]}
    saved = []
    for number, index in enumerate(numbers):
        picture = generated[index]
        stored, _ = store_generated(
            png_bytes(picture, generated.parameters_text(index, **model)), picture,
            filename=f"job-{job.pk}-{number}.png",
            created_by=job.owner,
            prompt=job.prompt,
            params={**params, "seed": generated.params[index].seed},
        )
        saved.append(stored)
    return saved


def _after(jobs):
    """Batches recount (and, once ended, gather their images: Batch.refresh_status)."""
    for batch in {job.batch for job in jobs if job.batch_id}:
        batch.refresh_status()


def reclaim_stale_jobs():
    """Give back running jobs whose worker is gone: dead on this host, or silent too long."""
    # A job failed after too many attempts ends its batch too: _after for each.
    return reclaim(Job.objects.all(), requeued=lambda job: enqueue_job_token(),
                   after=lambda job: _after([job]))


def housekeeping():
    """Every minute (a step of workers' housekeeping): reclaim stale jobs; let held batch
    jobs into the queue where it has room (a cancel frees room too); make sure queued jobs
    have a token (tokens are lost when a process dies between commit and enqueue, or with
    a killed worker)."""
    reclaim_stale_jobs()
    let_held_jobs_in()
    ensure_job_token()


def start_idle_reaper():
    """A worker process starts: unload the pipeline once it has been idle a while."""
    get_cache().start_idle_reaper(settings.IMAGINEER_IDLE_UNLOAD_SECONDS)
