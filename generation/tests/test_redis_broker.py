import pytest
from django_q.models import OrmQ

from generation.models import Job, Status
from imagineer.testing import manage, subprocess_env, wait_for

# Backend-neutral (conftest.py): Redis as the broker, where PostgreSQL has no part; the jobs'
# rows are the same as with the ORM broker, whose tests run on both databases.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.backend_neutral]

REDIS_URL = "redis://127.0.0.1:6379/15"  # a database of its own, flushed by the test


def test_it_queues_through_redis_when_configured(start_worker, viewer, demo_base):
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    start_worker(IMAGINEER_REDIS_URL=REDIS_URL)
    code = (
        "from accounts.models import User;"
        "from generation.submit import submit_job;"
        "from generation.validation import validate_generation;"
        f"job = submit_job(User.objects.get(pk={viewer.pk}), validate_generation("
        "{'prompt': 'a red kite', 'width': 64, 'height': 64, 'steps': 3}));"
        "print(job.pk)"
    )
    result = manage("shell", "-c", code, env=subprocess_env(IMAGINEER_REDIS_URL=REDIS_URL))
    assert result.returncode == 0, result.stderr
    job_id = int(result.stdout.strip().splitlines()[-1])
    job = wait_for(lambda: (j := Job.objects.get(pk=job_id)).status
                   in (Status.SUCCEEDED, Status.FAILED) and j, timeout=120,
                   message="the job to run through Redis")
    assert job.status == Status.SUCCEEDED, job.error
    assert OrmQ.objects.count() == 0, "the database broker was not used"
