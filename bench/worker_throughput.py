"""Worker throughput: N queued tiny-model jobs run by a real qcluster, against the same
N pipeline calls made directly in one process.

The worker's figure is the steady state: from the first job's start to the last job's
end (the model load of a cold worker is measured by engine_cold_warm.py). Both sides
run the same parameters; the worker also saves each PNG with its thumbnail and rows.

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


def main():
    args = options()
    jobs = 10 if args.quick else args.jobs
    model_dir = demo_model()
    workdir = Path(tempfile.mkdtemp(prefix="imagineer-bench-"))
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir}/bench.sqlite3",
        "IMAGINEER_MEDIA_ROOT": str(workdir / "media"),
        "IMAGINEER_MAX_QUEUE": str(jobs + 10),
        "DJANGO_SETTINGS_MODULE": "imagineer.settings",
        "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG") or "1",  # a development run
        "IMAGINEER_MODEL_ROOTS": str(BENCH_VAR),  # the demo model is built there
        # The same CPU threads on both sides: the worker reads OMP_NUM_THREADS.
        "OMP_NUM_THREADS": str(args.threads),
    }
    os.environ.update(env)
    import django
    import torch

    torch.set_num_threads(args.threads)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from accounts.roles import ADMIN, set_role
    from generation.models import Job, ModelVersion, Status
    from generation.submit import submit_job
    from generation.validation import validate_generation

    model = ModelVersion.from_source(name="demo", kind="base", source=str(model_dir)).register()
    user = get_user_model().objects.create_user("bench", "bench@example.com", "x" * 12)
    set_role(user, ADMIN)  # exempt from the per-user rate limits
    params = {"width": args.size, "height": args.size, "steps": args.steps,
              "guidance_scale": 7.0, "scheduler": "pndm", "model": model}

    # Direct: the same calls in this process, after one warm-up.
    from generation.engine.params import GenerationParams
    from generation.engine.pipelines import PipelineCache

    cache = PipelineCache()
    source = model.engine_source()

    def direct_call(seed):
        cache.generate(source, GenerationParams(
            f"prompt {seed}", seed=seed, width=args.size, height=args.size, steps=args.steps,
            guidance_scale=7.0, scheduler="pndm"))

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
        while Job.objects.get(pk=warm.pk).status != Status.SUCCEEDED:
            time.sleep(0.2)
        ids = [submit_job(user, validate_generation(
            {**params, "prompt": f"prompt {seed}", "seed": seed})).pk
            for seed in range(1, jobs + 1)]
        while Job.objects.filter(pk__in=ids, status__in=[Status.QUEUED, Status.RUNNING]).exists():
            time.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # its jobs are done; no need to wait for it
        worker.wait()
    done = Job.objects.filter(pk__in=ids)
    failed = done.exclude(status=Status.SUCCEEDED).count()
    first = min(job.started_at for job in done)
    last = max(job.finished_at for job in done)
    worker_seconds = (last - first).total_seconds()

    rows = [
        ["direct pipeline calls", jobs, f"{direct_seconds:.1f}",
         f"{jobs / direct_seconds:.2f}", "1.00"],
        ["qcluster worker (ORM broker)", jobs, f"{worker_seconds:.1f}",
         f"{jobs / worker_seconds:.2f}", f"{direct_seconds / worker_seconds:.2f}"],
    ]
    print_table(
        f"Worker throughput: {jobs} jobs, {args.size}x{args.size}, {args.steps} steps"
        + (f" ({failed} failed)" if failed else ""),
        ["path", "jobs", "seconds", "jobs/s", "of direct"],
        rows,
    )
    print(f"\n{machine()}")


if __name__ == "__main__":
    main()
