import json

import pytest
from rest_framework import serializers

from albums.tests.images import make_image
from core.api import ReadPlan
from generation.models import Job, JobLora, Status
from generation.tests.conftest import QUICK
from imagineer.testing import queries_per_page

pytestmark = pytest.mark.django_db


def post_job(client, **params):
    return client.post("/api/jobs/", {"prompt": "a lighthouse", **QUICK, **params},
                       format="json")


def test_it_queues_a_job_with_defaults_and_a_drawn_seed(api_as, viewer, demo_base):
    response = api_as(viewer).post("/api/jobs/", {"prompt": "  a lighthouse  "}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued"
    assert body["prompt"] == "a lighthouse"
    assert body["model"] == demo_base.pk
    assert body["steps"] == 25 and body["width"] == 512
    assert 0 <= body["seed"] < 2**31
    assert Job.objects.get(pk=body["id"]).seed == body["seed"]


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("prompt", "", ["prompt", "1 to 500"]),
        ("prompt", "x" * 501, ["prompt", "1 to 500"]),
        ("steps", 0, ["steps", "between 1 and 150"]),
        ("steps", 151, ["steps", "between 1 and 150"]),
        ("width", 63, ["width", "64 and 2048"]),
        ("width", 2056, ["width", "64 and 2048"]),
        ("height", 100, ["height", "multiple of 8"]),
        ("guidance_scale", 0.5, ["guidance_scale", "between 1.0 and 30.0"]),
        ("guidance_scale", 31, ["guidance_scale", "between 1.0 and 30.0"]),
        ("seed", -1, ["seed", "between 0 and 2147483647"]),
        ("seed", 2**31, ["seed", "between 0 and 2147483647"]),
        ("num_images", 9, ["num_images", "between 1 and 8"]),
        ("steps", 2.5, ["steps"]),
        ("scheduler", "warp", ["scheduler"]),
    ],
)
def test_it_refuses_out_of_range_fields_naming_the_rule(api_as, viewer, demo_base, field,
                                                        value, words):
    response = post_job(api_as(viewer), **{field: value})
    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == [field]
    message = " ".join(errors[field])
    for word in words[1:]:
        assert word in message, message
    assert Job.objects.count() == 0


def test_it_refuses_unknown_fields(api_as, viewer, demo_base):
    response = post_job(api_as(viewer), step=20)
    assert response.status_code == 400
    assert "Unknown field" in response.json()["step"][0]


def test_it_checks_lora_weights_count_activity_and_family(api_as, viewer, make_lora):
    client = api_as(viewer)
    lora = make_lora(0)
    response = post_job(client, loras=[{"id": lora.pk, "weight": 2.5}])
    assert response.status_code == 400 and "loras" in response.json()
    many = [make_lora(i % 3, name=f"l{i}") for i in range(6)]
    response = post_job(client, loras=[{"id": m.pk, "weight": 1} for m in many])
    assert response.status_code == 400 and "at most 5" in str(response.json()["loras"])
    lora.is_active = False
    lora.save()
    response = post_job(client, loras=[{"id": lora.pk, "weight": 1}])
    # A retired LoRA is as unknown as a missing one: its name is not told (issue 13).
    assert f"an active LoRA your role may use (its usable_by); {lora.pk} is not" in str(
        response.json()["loras"])
    assert lora.name not in str(response.json())
    other = make_lora(1, name="xl")
    other.family = "sdxl"
    other.save()
    response = post_job(client, loras=[{"id": other.pk, "weight": 1}])
    assert "sdxl" in str(response.json()["loras"])
    assert Job.objects.count() == 0


def test_it_shows_viewers_their_own_jobs_and_editors_all(api_as, viewer, other_viewer,
                                                        editor, demo_base):
    mine = post_job(api_as(viewer)).json()["id"]
    theirs = post_job(api_as(other_viewer)).json()["id"]
    ids = [job["id"] for job in api_as(viewer).get("/api/jobs/").json()["results"]]
    assert ids == [mine]
    assert api_as(viewer).get(f"/api/jobs/{theirs}/").status_code == 404
    assert api_as(viewer).post(f"/api/jobs/{theirs}/cancel/").status_code == 404
    assert Job.objects.get(pk=theirs).status == Status.QUEUED
    ids = {job["id"] for job in api_as(editor).get("/api/jobs/").json()["results"]}
    assert ids == {mine, theirs}
    filtered = api_as(editor).get(f"/api/jobs/?owner={other_viewer.pk}").json()["results"]
    assert [job["id"] for job in filtered] == [theirs]


def test_it_cancels_a_queued_job(api_as, viewer, demo_base):
    job_id = post_job(api_as(viewer)).json()["id"]
    response = api_as(viewer).post(f"/api/jobs/{job_id}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    job = Job.objects.get(pk=job_id)
    assert job.status == Status.CANCELLED and job.finished_at


def test_it_retries_with_the_same_seed_and_parameters(api_as, viewer, make_lora):
    lora = make_lora(0)
    first = post_job(api_as(viewer), loras=[{"id": lora.pk, "weight": 0.5}]).json()
    response = api_as(viewer).post(f"/api/jobs/{first['id']}/remix/")
    assert response.status_code == 201
    again = response.json()
    assert again["id"] != first["id"]
    for key in ("prompt", "seed", "steps", "width", "height", "guidance_scale", "model"):
        assert again[key] == first[key]
    assert again["loras"] == [{"id": lora.pk, "name": lora.name, "weight": 0.5}]
    assert again["remix_of"] == first["id"]


def test_it_needs_authentication(api_client, demo_base):
    assert api_client.post("/api/jobs/", {"prompt": "x"}, format="json").status_code == 401


@pytest.mark.parametrize("query, field", [("status=done", "status"), ("batch=x", "batch"),
                                          ("owner=1.5", "owner"),
                                          ("batch=-291937917298706314839457792", "batch")])
def test_it_refuses_a_filter_value_it_cannot_use(api_as, viewer, query, field):
    # Found by fuzzing: an unknown status was ignored (the list came back empty), and a
    # batch id past 64 bits was a 500 on SQLite.
    response = api_as(viewer).get(f"/api/jobs/?{query}")
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_the_list_reads_a_page_in_queries_that_do_not_grow_and_answers_as_drf_would(
        api_as, viewer, make_lora, monkeypatch):
    """A page of jobs, each with its images and LoRAs: as many queries for 2 jobs as for
    5, and the same bytes as DRF's own Serializer.to_representation (core.api.ReadPlan)."""
    lora = make_lora(0)
    client = api_as(viewer)
    jobs = []
    for n in range(6):
        job = Job.objects.get(pk=post_job(client, seed=n).json()["id"])
        job.images.add(make_image(2 * n + 1, created_by=viewer),
                       make_image(2 * n, created_by=viewer))
        JobLora.objects.create(job=job, lora=lora, weight=0.5)
        jobs.append(job)
    jobs[0].images.clear()  # none, on the page past the others
    counts = queries_per_page(client, "/api/jobs/", (2, 5))
    assert counts[2] == counts[5]
    answers = [client.get("/api/jobs/?page_size=5").content,
               client.get(f"/api/jobs/{jobs[1].pk}/").content]
    page = json.loads(answers[0])
    newest = page["results"][0]
    assert [image["id"] for image in newest["images"]] == sorted(
        image.pk for image in jobs[-1].images.all())
    assert newest["images"][0]["url"] == f"http://testserver/media/images/{newest['images'][0]['id']}/"
    assert newest["loras"] == [{"id": lora.pk, "name": lora.name, "weight": 0.5}]
    assert newest["model"] == jobs[-1].model_id and newest["owner"] == viewer.username
    assert client.get(page["next"]).json()["results"][0]["images"] == []
    monkeypatch.setattr(ReadPlan, "to_representation", serializers.Serializer.to_representation)
    assert [client.get("/api/jobs/?page_size=5").content,
            client.get(f"/api/jobs/{jobs[1].pk}/").content] == answers


class Probe(ReadPlan, serializers.ModelSerializer):
    """Fields of every kind that ReadPlan reads its own way or DRF's."""

    owner_name = serializers.CharField(source="owner.username")  # dotted
    shown = serializers.CharField(source="__str__")  # a method DRF calls
    page = serializers.CharField(source="get_absolute_url")
    finished = serializers.BooleanField(source="is_finished")  # a property
    missing = serializers.CharField(source="no_such_attribute", required=False)  # skipped
    defaulted = serializers.CharField(source="no_such_attribute", default="none")
    lora_ids = serializers.PrimaryKeyRelatedField(source="joblora_set", many=True,
                                                  read_only=True)
    lora_rows = serializers.ListField(source="joblora_set.all", child=serializers.CharField())
    weights = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "batch", "model", "init_image", "prompt", "queued_at", "progress",
                  "hires_scale", "status", "owner_name", "shown", "page", "finished",
                  "missing", "defaulted", "lora_ids", "lora_rows", "weights"]

    def get_weights(self, job):
        return [link.weight for link in job.joblora_set.all()]


class Plain(ReadPlan, serializers.Serializer):
    a = serializers.IntegerField()
    b = serializers.CharField(required=False)


def test_a_read_plan_answers_as_drf_does(api_as, viewer, make_lora, monkeypatch):
    lora = make_lora(0)
    client = api_as(viewer)
    jobs = [Job.objects.get(pk=post_job(client, seed=n).json()["id"]) for n in range(2)]
    JobLora.objects.create(job=jobs[1], lora=lora, weight=0.25)
    jobs[1].init_image = make_image(1, created_by=viewer)
    jobs[1].save()
    planned = [Probe(jobs, many=True).data, Probe(jobs[1]).data, Plain({"a": 1}).data]
    assert planned[1]["init_image"] == jobs[1].init_image_id and planned[0][0]["batch"] is None
    assert "missing" not in planned[1] and planned[1]["defaulted"] == "none"
    assert planned[1]["shown"] == str(jobs[1]) and planned[1]["lora_ids"] == [
        jobs[1].joblora_set.get().pk]
    monkeypatch.setattr(ReadPlan, "to_representation", serializers.Serializer.to_representation)
    assert [Probe(jobs, many=True).data, Probe(jobs[1]).data, Plain({"a": 1}).data] == planned
