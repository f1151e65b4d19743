from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from generation.models import Batch, Counter, Job, PromptSet, Status
from generation.tests.conftest import QUICK


def post_job(client, **params):
    return client.post("/api/jobs/", {"prompt": "a kite", **QUICK, **params}, format="json")


@pytest.fixture
def tarot(db, demo_base):
    prompt_set = PromptSet.objects.create(name="Tarot", prompt_template="the {card} card",
                                          width=64, height=64)
    prompt_set.import_csv("card\nFool\nMagician\n")
    return prompt_set


@pytest.mark.django_db
def test_it_limits_single_requests_per_minute_with_retry_after(api_as, viewer, demo_base,
                                                               settings):
    settings.IMAGINEER_JOBS_PER_MINUTE = 3
    client = api_as(viewer)
    for _ in range(3):
        assert post_job(client).status_code == 201
        Job.objects.update(status=Status.SUCCEEDED)  # keep the active cap out of the way
    response = post_job(client)
    assert response.status_code == 429
    assert "3 generation requests per minute" in response.json()["detail"]
    assert 1 <= int(response["Retry-After"]) <= 61
    # A minute later (the clock is outside the system) the window has room again.
    Job.objects.update(queued_at=timezone.now() - timedelta(seconds=61))
    assert post_job(client).status_code == 201


@pytest.mark.django_db
def test_it_caps_active_jobs_per_user(api_as, viewer, other_viewer, demo_base, settings):
    settings.IMAGINEER_MAX_ACTIVE_JOBS = 2
    client = api_as(viewer)
    assert post_job(client).status_code == 201
    assert post_job(client).status_code == 201
    response = post_job(client)
    assert response.status_code == 429
    assert "active jobs" in response.json()["detail"] and "limit is 2" in response.json()["detail"]
    assert post_job(api_as(other_viewer)).status_code == 201  # a cap per user
    Job.objects.filter(owner=viewer).update(status=Status.SUCCEEDED)
    assert post_job(client).status_code == 201


@pytest.mark.django_db
def test_it_counts_a_batch_once_toward_the_active_cap(api_as, editor, tarot, settings):
    settings.IMAGINEER_MAX_ACTIVE_JOBS = 2
    client = api_as(editor)
    assert client.post("/api/batches/", {"set": "tarot"}, format="json").status_code == 201
    assert Job.objects.filter(owner=editor, status=Status.QUEUED).count() == 2
    assert post_job(client).status_code == 201  # the batch's 2 jobs count as 1
    assert post_job(client).status_code == 429


@pytest.mark.django_db
def test_it_limits_batches_per_hour(api_as, editor, tarot, settings):
    settings.IMAGINEER_BATCHES_PER_HOUR = 1
    client = api_as(editor)
    assert client.post("/api/batches/", {"set": "tarot"}, format="json").status_code == 201
    Batch.objects.update(status=Status.SUCCEEDED)
    response = client.post("/api/batches/", {"set": "tarot"}, format="json")
    assert response.status_code == 429
    assert "1 batch requests per hour" in response.json()["detail"]
    assert int(response["Retry-After"]) > 60


@pytest.mark.django_db
def test_it_exempts_admins_from_rate_limits(api_as, admin_user, demo_base, settings):
    settings.IMAGINEER_JOBS_PER_MINUTE = 1
    settings.IMAGINEER_MAX_ACTIVE_JOBS = 1
    client = api_as(admin_user)
    assert all(post_job(client).status_code == 201 for _ in range(3))


@pytest.mark.django_db
def test_it_refuses_with_503_when_the_whole_queue_is_full(api_as, viewer, admin_user,
                                                          demo_base, settings):
    settings.IMAGINEER_MAX_QUEUE = 2
    client = api_as(admin_user)
    assert post_job(client).status_code == 201
    assert post_job(client).status_code == 201
    response = post_job(api_as(viewer))
    assert response.status_code == 503
    assert "queue is full" in response.json()["detail"]
    assert response["Retry-After"]


def submit_in_parallel(user, requests=20):
    """The status codes of `requests` job submissions by `user`, 8 at a time."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    token = Token.objects.create(user=user).key

    def submit(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            return post_job(client).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(submit, range(requests)))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("max_active, per_minute, accepted", [
    (5, 100, 5),  # the active-job cap binds
    (100, 3, 3),  # the rate limit binds
], ids=["cap", "rate-limit"])
def test_it_holds_the_limits_under_concurrent_requests(viewer, demo_base, settings,
                                                       max_active, per_minute, accepted):
    settings.IMAGINEER_MAX_ACTIVE_JOBS = max_active
    settings.IMAGINEER_JOBS_PER_MINUTE = per_minute
    codes = submit_in_parallel(viewer)
    assert codes.count(201) == accepted
    assert codes.count(429) == 20 - accepted
    assert Job.objects.filter(owner=viewer).count() == accepted
    # Each refusal counted once for /metrics, however many connections counted at once.
    reason = "cap" if max_active < per_minute else "rate_limited"
    assert Counter.objects.get(name="jobs_rejected").labels == f'{{"reason": "{reason}"}}'
    assert Counter.objects.get(name="jobs_rejected").value == 20 - accepted
    assert Counter.objects.get(name="jobs_submitted").value == accepted


def make_set(name, rows):
    prompt_set = PromptSet.objects.create(name=name, prompt_template="item {n}", width=64,
                                          height=64)
    prompt_set.import_csv("n\n" + "\n".join(str(n) for n in range(rows)) + "\n",
                          max_rows=rows)
    return prompt_set


def in_queue_by_batch():
    return {batch.pk: batch.jobs.filter(status=Status.QUEUED, held=False).count()
            for batch in Batch.objects.all()}


@pytest.mark.django_db
def test_a_batch_larger_than_the_queue_runs_to_the_end_as_room_frees(api_as, editor,
                                                                     demo_base, settings):
    from generation.tasks import take_next_jobs

    settings.IMAGINEER_MAX_QUEUE, settings.IMAGINEER_MAX_BATCH = 100, 8
    make_set("Thousand", 1000)
    response = api_as(editor).post("/api/batches/", {"set": "thousand"}, format="json")
    assert response.status_code == 201, response.content
    assert Job.objects.in_queue().count() == 100 and Job.objects.held().count() == 900
    taken = []
    while jobs := take_next_jobs("worker-1"):
        # The queue never holds more than max_queue; the worker's room is refilled.
        assert Job.objects.in_queue().count() <= 100
        assert Job.objects.in_queue().count() == min(100, 1000 - len(taken) - len(jobs))
        taken += [job.batch_position for job in jobs]
    assert sorted(taken) == list(range(1000))
    Job.objects.update(status=Status.SUCCEEDED)  # what the worker would have made of them
    batch = Batch.objects.get()
    batch.refresh_status()
    assert (batch.status, batch.succeeded) == (Status.SUCCEEDED, 1000)


@pytest.mark.django_db
def test_held_batch_jobs_share_the_room_in_the_queue_between_batches(api_as, editor, viewer,
                                                                  demo_base, settings):
    from generation.limits import release_held_jobs
    from generation.tasks import take_next_jobs

    settings.IMAGINEER_MAX_QUEUE, settings.IMAGINEER_MAX_BATCH = 4, 1
    make_set("Ten", 10)
    make_set("Three", 3)
    client = api_as(editor)
    first = client.post("/api/batches/", {"set": "ten"}, format="json").json()["id"]
    # The queue is full: a batch is accepted all the same (its jobs wait), a single is not.
    second = client.post("/api/batches/", {"set": "three"}, format="json")
    assert second.status_code == 201, second.content
    second = second.json()["id"]
    assert in_queue_by_batch() == {first: 4, second: 0}
    refused = post_job(api_as(viewer))
    assert refused.status_code == 503 and "queue is full" in refused.json()["detail"]
    assert release_held_jobs() == []  # no room: nothing moves
    take_next_jobs("worker-1")
    take_next_jobs("worker-1")
    # Two places freed (both jobs taken from the first batch): each goes to the batch with
    # the fewest jobs in the queue, each batch's in item order.
    assert in_queue_by_batch() == {first: 2, second: 2}
    assert list(Job.objects.in_queue().filter(batch_id=second).order_by("batch_position")
                .values_list("batch_position", flat=True)) == [0, 1]
    # Cancelling a batch cancels its held jobs too; the other batch gets the room.
    Batch.objects.get(pk=first).cancel()
    assert not Job.objects.filter(batch_id=first, status=Status.QUEUED).exists()
    assert release_held_jobs() and in_queue_by_batch()[second] == 3
    assert Batch.objects.get(pk=first).status == Status.CANCELLED


@pytest.mark.django_db
def test_each_role_has_its_own_limits_from_the_site_settings(api_as, viewer, editor,
                                                             admin_user, tarot, settings):
    from generation.models import SiteSettings

    settings.IMAGINEER_JOBS_PER_MINUTE = 50
    settings.IMAGINEER_EDITOR_MAX_ACTIVE_JOBS = None  # unset: the viewers' value
    assert SiteSettings.current().editor_max_active_jobs == settings.IMAGINEER_MAX_ACTIVE_JOBS
    response = api_as(admin_user).patch("/api/config/", {
        "max_active_jobs": 1, "editor_max_active_jobs": 3, "editor_batches_per_hour": 1,
        "editor_jobs_per_minute": 50}, format="json")
    assert response.status_code == 200, response.content
    viewer_client = api_as(viewer)
    assert post_job(viewer_client).status_code == 201
    assert post_job(viewer_client).status_code == 429  # a viewer: 1 active job
    editor_client = api_as(editor)  # (the same client, signed in as the editor now)
    assert [post_job(editor_client).status_code for _ in range(4)] == [201, 201, 201, 429]
    assert "limit is 3" in post_job(editor_client).json()["detail"]
    Job.objects.filter(owner=editor).update(status=Status.SUCCEEDED)
    assert editor_client.post("/api/batches/", {"set": "tarot"}, format="json"
                              ).status_code == 201
    Batch.objects.update(status=Status.SUCCEEDED)
    refused = editor_client.post("/api/batches/", {"set": "tarot"}, format="json")
    assert refused.status_code == 429 and "1 batch requests per hour" in refused.json()["detail"]
    # A limit out of range is refused, naming the field.
    bad = api_as(admin_user).patch("/api/config/", {"editor_max_active_jobs": 0},
                                   format="json")
    assert bad.status_code == 400 and "editor_max_active_jobs" in bad.json()
