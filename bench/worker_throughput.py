"""Worker throughput: N queued jobs run by a real qcluster, against the same N pipeline
calls made directly in one process.

The worker's figure is the steady state: from the first job's start to the last job's
end (the model load of a cold worker is measured by engine_cold_warm.py). Both sides
run the same parameters; the worker also saves each PNG with its thumbnail and rows.
`make gpu-check` (bench/gpu_check.py) runs the same comparison on a GPU.

    .venv/bin/python bench/worker_throughput.py [--quick] [--jobs 50] [--steps 20]
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import ROOT, demo_model, machine, print_table
from benchlib import VAR as BENCH_VAR

HEADERS = ["path", "jobs", "seconds", "jobs/s", "of direct"]


def options():
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 jobs instead of 50")
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads on both sides (1 is fastest on a loaded "
                             "2-core machine)")
    return parser.parse_args()


def compare(model_dir, *, jobs, size, steps, guidance=7.0, threads=None, workdir=None):
    """Time `jobs` direct PipelineCache calls, then the same jobs submitted through
    generation.submit and run by a real `manage.py qcluster` (SQLite, ORM broker).

    Sets up Django in this process on a fresh database under `workdir`, so call it once
    per process. threads: torch CPU threads on both sides (None: torch's default).
    Returns {"jobs", "direct_seconds", "worker_seconds", "failed"}.
    """
    workdir = Path(workdir or tempfile.mkdtemp(prefix="imagineer-bench-"))
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir}/bench.sqlite3",
        "IMAGINEER_VAR_DIR": str(workdir / "var"),
        "IMAGINEER_MEDIA_ROOT": str(workdir / "media"),
        "IMAGINEER_MAX_QUEUE": str(jobs + 10),
        "DJANGO_SETTINGS_MODULE": "imagineer.settings",
        "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG") or "1",  # a development run
        # The model may be registered from where it is (var/bench, or a --model-dir).
        "IMAGINEER_MODEL_ROOTS": f"{BENCH_VAR},{Path(model_dir).resolve()}",
    }
    if threads:
        # The same CPU threads on both sides: the worker reads OMP_NUM_THREADS.
        env["OMP_NUM_THREADS"] = str(threads)
    os.environ.update(env)
    import django
    import torch

    if threads:
        torch.set_num_threads(threads)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from accounts.roles import ADMIN, set_role
    from generation.models import Job, ModelVersion, Status
    from generation.submit import submit_job
    from generation.validation import validate_generation

    model = ModelVersion.from_source(name="bench", kind="base", source=str(model_dir)).register()
    user = get_user_model().objects.create_user("bench", "bench@example.com", "x" * 12)
    set_role(user, ADMIN)  # exempt from the per-user rate limits
    params = {"width": size, "height": size, "steps": steps, "guidance_scale": guidance,
              "scheduler": "pndm", "model": model}

    # Direct: the same calls in this process, after one warm-up.
    from generation.engine.params import GenerationParams
    from generation.engine.pipelines import PipelineCache

    cache = PipelineCache()
    source = model.engine_source()

    def direct_call(seed):
        cache.generate(source, GenerationParams(
            f"prompt {seed}", seed=seed, width=size, height=size, steps=steps,
            guidance_scale=guidance, scheduler="pndm"))

    direct_call(0)
    start = time.perf_counter()
    for seed in range(1, jobs + 1):
        direct_call(seed)
    direct_seconds = time.perf_counter() - start
    cache.release()

    # Worker: queue the jobs, then start a real qcluster and wait for them all.
    warm = submit_job(user, validate_generation({**params, "prompt": "warm-up", "seed": 0}))
    worker = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        while Job.objects.get(pk=warm.pk).status in (Status.QUEUED, Status.RUNNING):
            time.sleep(0.2)
        ids = [submit_job(user, validate_generation(
            {**params, "prompt": f"prompt {seed}", "seed": seed})).pk
            for seed in range(1, jobs + 1)]
        while Job.objects.filter(pk__in=ids, status__in=[Status.QUEUED, Status.RUNNING]).exists():
            if worker.poll() is not None:
                raise RuntimeError(f"the qcluster exited with {worker.returncode}")
            time.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # its jobs are done; no need to wait for it
        worker.wait()
    done = Job.objects.filter(pk__in=ids)
    failed = done.exclude(status=Status.SUCCEEDED).count()
    first = min(job.started_at for job in done)
    last = max(job.finished_at for job in done)
    return {"jobs": jobs, "direct_seconds": direct_seconds,
            "worker_seconds": (last - first).total_seconds(), "failed": failed}


def rows(figures):
    """The table's rows (HEADERS) for compare()'s figures."""
    jobs, direct, worker = figures["jobs"], figures["direct_seconds"], figures["worker_seconds"]
    return [
        ["direct pipeline calls", jobs, f"{direct:.1f}", f"{jobs / direct:.2f}", "1.00"],
        ["qcluster worker (ORM broker)", jobs, f"{worker:.1f}", f"{jobs / worker:.2f}",
         f"{direct / worker:.2f}"],
    ]


def main():
    args = options()
    jobs = 10 if args.quick else args.jobs
    figures = compare(demo_model(), jobs=jobs, size=args.size, steps=args.steps,
                      threads=args.threads)
    failed = figures["failed"]
    print_table(
        f"Worker throughput: {jobs} jobs, {args.size}x{args.size}, {args.steps} steps"
        + (f" ({failed} failed)" if failed else ""),
        HEADERS,
        rows(figures),
    )
    print(f"\n{machine()}")


if __name__ == "__main__":
    main()
