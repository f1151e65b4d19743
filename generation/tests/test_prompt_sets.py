import json

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from generation.models import Batch, Job, PromptSet, PromptSetItem, SiteSettings, Status
from generation.validation import PROMPT_MAX, fill_template
from imagineer.testing import wait_for

DECK_CSV = "rank,suit\n" + "".join(
    f"{rank},{suit}\n" for suit in ["hearts", "spades", "diamonds", "clubs"]
    for rank in ["ace", "2", "3", "4", "5", "6", "7", "8", "9", "10", "jack", "queen", "king"]
) + "joker,red\njoker,black\n"


@pytest.fixture
def deck(db, editor):
    return PromptSet.objects.create(
        name="Playing cards", base_prompt="a playing card", prompt_template="the {rank} of {suit}",
        style_suffix="art nouveau", example_theme="steampunk", width=64, height=64,
        created_by=editor)


@pytest.mark.django_db
def test_it_imports_a_54_card_deck_from_csv(deck):
    assert deck.import_csv(DECK_CSV.encode()) == 54
    item = deck.items.first()
    assert item.values == {"rank": "ace", "suit": "hearts"}
    assert deck.prompt_for(item, "steampunk") == (
        "a playing card, the ace of hearts, steampunk, art nouveau")


@pytest.mark.django_db
def test_it_refuses_a_csv_lacking_a_template_column_and_keeps_the_items(deck):
    deck.import_csv(DECK_CSV)
    with pytest.raises(Exception) as error:
        deck.import_csv("rank\nace\n")
    assert "suit" in str(error.value)
    assert deck.items.count() == 54


@pytest.mark.django_db
def test_it_refuses_a_template_naming_a_column_the_items_lack(api_as, editor, deck):
    deck.import_csv(DECK_CSV)
    response = api_as(editor).patch("/api/sets/playing-cards/",
                                    {"prompt_template": "the {rank} of {colour}"}, format="json")
    assert response.status_code == 409  # the items' columns: the state of the set
    assert "colour" in response.json()["prompt_template"][0]
    deck.refresh_from_db()
    assert deck.prompt_template == "the {rank} of {suit}"


@pytest.mark.django_db
def test_it_uploads_items_as_csv_through_the_api(api_as, editor, viewer, deck):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("deck.csv", DECK_CSV.encode(), content_type="text/csv")
    response = api_as(editor).post("/api/sets/playing-cards/items/", {"file": upload},
                                   format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["imported"] == 54
    upload = SimpleUploadedFile("deck.csv", b"rank,suit\nace,hearts\n")
    assert api_as(viewer).post("/api/sets/playing-cards/items/", {"file": upload},
                               format="multipart").status_code == 403
    assert deck.items.count() == 54


@pytest.mark.django_db
def test_it_lets_editors_not_viewers_manage_sets(api_as, editor, viewer):
    body = {"name": "Zodiac", "prompt_template": "the sign of {sign}", "width": 64,
            "height": 64}
    assert api_as(viewer).post("/api/sets/", body, format="json").status_code == 403
    response = api_as(editor).post("/api/sets/", body, format="json")
    assert response.status_code == 201
    assert response.json()["slug"] == "zodiac"
    assert api_as(viewer).get("/api/sets/zodiac/").status_code == 200
    bad = api_as(editor).post("/api/sets/", {**body, "name": "Bad", "width": 100},
                              format="json")
    assert bad.status_code == 400 and "width" in bad.json()


@pytest.mark.django_db(transaction=True)
def test_it_runs_a_batch_from_a_csv_imported_set_into_an_album(worker, api_as, editor,
                                                               demo_base, settings):
    settings.IMAGINEER_MAX_QUEUE = 100
    zodiac = PromptSet.objects.create(name="Zodiac", prompt_template="the sign of {sign}",
                                      style_suffix="woodcut", width=64, height=64)
    signs = ["aries", "taurus", "gemini", "cancer", "leo", "virgo", "libra", "scorpio",
             "sagittarius", "capricorn", "aquarius", "pisces"]
    zodiac.import_csv("sign\n" + "\n".join(signs) + "\n")
    response = api_as(editor).post("/api/batches/",
                                   {"set": "zodiac", "theme": "neon", "steps": 3, "seed": 9},
                                   format="json")
    assert response.status_code == 201, response.content
    batch_id = response.json()["id"]
    batch = wait_for(lambda: (b := Batch.objects.get(pk=batch_id)).status
                     not in (Status.QUEUED, Status.RUNNING) and b, timeout=240,
                     message="the batch to end")
    assert batch.status == Status.SUCCEEDED
    assert (batch.total, batch.succeeded, batch.failed) == (12, 12, 0)
    jobs = Job.objects.filter(batch=batch).order_by("batch_position")
    assert jobs[0].prompt == "the sign of aries, neon, woodcut"
    album_images = list(batch.album.entries.order_by("position").values_list("image_id",
                                                                              flat=True))
    assert album_images == [job.images.get().pk for job in jobs]
    detail = api_as(editor).get(f"/api/batches/{batch_id}/").json()
    assert detail["progress"] == 1.0 and detail["status"] == "succeeded"
    # Items with the same size, model and LoRAs share pipeline calls, up to MAX_BATCH.
    calls = [json.loads(line)["jobs"] for line in worker.log().splitlines()
             if '"message": "generated"' in line]
    assert sum(len(jobs) for jobs in calls) == 12
    assert max(len(jobs) for jobs in calls) > 1
    assert max(len(jobs) for jobs in calls) <= settings.IMAGINEER_MAX_BATCH


@pytest.mark.django_db
def test_it_cancels_a_batch_and_its_unfinished_jobs(api_as, editor, demo_base):
    prompt_set = PromptSet.objects.create(name="Two", prompt_template="{x}", width=64,
                                          height=64)
    prompt_set.import_csv("x\none\ntwo\n")
    batch_id = api_as(editor).post("/api/batches/", {"set": "two"}, format="json").json()["id"]
    response = api_as(editor).post(f"/api/batches/{batch_id}/cancel/")
    assert response.json()["status"] == "cancelled"
    assert set(Job.objects.filter(batch_id=batch_id).values_list("status", flat=True)) == {
        Status.CANCELLED}


# Found by fuzzing the API (imagineer/tests/test_fuzz_api.py, `make fuzz`).


@pytest.mark.django_db
def test_it_gives_sets_of_the_same_name_slugs_of_their_own(api_as, editor):
    client = api_as(editor)
    slugs = [client.post("/api/sets/", {"name": "Seaside", "prompt_template": "{subject}"},
                         format="json").json()["slug"] for _ in range(3)]
    assert slugs == ["seaside", "seaside-2", "seaside-3"]


@pytest.mark.django_db
def test_it_refuses_to_delete_a_set_that_batches_came_from(api_as, editor, deck, demo_base):
    deck.import_csv(DECK_CSV)
    client = api_as(editor)
    batch = client.post("/api/batches/", {"set": deck.slug, "steps": 4}, format="json")
    assert batch.status_code == 201, batch.content
    response = client.delete(f"/api/sets/{deck.slug}/")
    assert response.status_code == 409
    assert response.json() == {"detail": "Cannot delete it: it is still used by 1 batch."}
    assert PromptSet.objects.filter(pk=deck.pk).exists()


@pytest.mark.django_db
def test_it_refuses_a_csv_holding_a_nul_and_keeps_the_items(api_as, editor, deck):
    # A 500 on PostgreSQL, which cannot store the NUL.
    deck.import_csv(DECK_CSV)
    response = api_as(editor).post(f"/api/sets/{deck.slug}/items/", {"file": SimpleUploadedFile(
        "deck.csv", b"rank,suit\nace,he\x00arts\n")}, format="multipart")
    assert response.status_code == 400
    assert "NUL" in response.json()["file"][0]
    assert deck.items.count() == 54


@pytest.mark.django_db
def test_it_answers_404_for_a_set_path_that_is_no_slug(api_as, editor, deck):
    # A 500 on PostgreSQL, which cannot compare a slug with a NUL.
    response = api_as(editor).get("/api/sets/a%00b/")
    assert response.status_code == 404


@pytest.mark.django_db
def test_it_refuses_a_batch_of_a_set_slug_holding_a_nul(api_as, editor, deck, demo_base):
    # Found by fuzzing on PostgreSQL: a 500, which cannot compare a slug with a NUL.
    response = api_as(editor).post("/api/batches/", {"set": "play\x00ing"}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["set"]


@pytest.mark.django_db
@pytest.mark.parametrize("template, shown", [
    ("the {rank:>2000000000}", "{rank:>2000000000}"),  # a 2 GB string with str.format
    ("the {rank!r}", "{rank!r}"),
    ("the {rank.__class__}", "{rank.__class__}"),
    ("the {suit[0]}", "{suit[0]}"),
    ("the {}", "{}"),
])
def test_it_refuses_templates_with_more_than_placeholders(api_as, editor, deck, template,
                                                          shown):
    response = api_as(editor).patch("/api/sets/playing-cards/", {"prompt_template": template},
                                    format="json")
    assert response.status_code == 400
    [message] = response.json()["prompt_template"]
    assert f"{shown} is not one" in message and "only {column} placeholders" in message
    # A template saved before the rule is filled by the same rule: refused, never run.
    PromptSet.objects.filter(pk=deck.pk).update(prompt_template=template)
    deck.refresh_from_db()
    with pytest.raises(ValidationError, match="only {column} placeholders"):
        deck.prompt_for(PromptSetItem(prompt_set=deck, values={"rank": "ace", "suit": "x"}))


@pytest.mark.django_db
def test_it_fills_templates_up_to_the_prompt_limit_and_no_further(api_as, editor, deck):
    long = "x" * 300
    deck.import_csv(f"rank,suit\n{long},{long}\nace,hearts\n")
    response = api_as(editor).post("/api/batches/", {"set": "playing-cards"}, format="json")
    assert response.status_code == 400
    [message] = response.json()["prompt"]
    assert message.startswith(f"item 1 (rank={long[:74]}…): prompt must be 1 to "
                              f"{PROMPT_MAX} characters; the prompt template filled with the "
                              "item rank=xxx"), message
    assert not Batch.objects.exists()
    assert fill_template("{{a}} {a} and {b}", {"a": "1", "b": "2"}) == "{a} 1 and 2"
    with pytest.raises(ValidationError):
        fill_template("{a}{a}{a}", {"a": "x" * 200})


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_batch_larger_than_the_queue_to_the_end(worker, api_as, editor,
                                                                     demo_base):
    # The worker (another process) reads the limits from the site settings' row.
    SiteSettings.objects.create(**{**SiteSettings.environment_values(), "max_queue": 2,
                                   "max_batch": 1})
    four = PromptSet.objects.create(name="Four", prompt_template="the number {n}",
                                    width=64, height=64)
    four.import_csv("n\n" + "\n".join(str(n) for n in range(4)) + "\n")
    response = api_as(editor).post("/api/batches/", {"set": "four", "steps": 2, "seed": 3},
                                   format="json")
    assert response.status_code == 201, response.content
    assert Job.objects.in_queue().count() == 2 and Job.objects.held().count() == 2
    batch = wait_for(lambda: (b := Batch.objects.get(pk=response.json()["id"])).status
                     not in (Status.QUEUED, Status.RUNNING) and b, timeout=600,
                     message="the batch to end")
    assert (batch.status, batch.succeeded) == (Status.SUCCEEDED, 4)
    assert batch.album.entries.count() == 4


@pytest.fixture
def signs(db, demo_base):
    prompt_set = PromptSet.objects.create(name="Signs", prompt_template="the sign of {sign}",
                                          width=64, height=64)
    prompt_set.import_csv("sign\nleo\nvirgo\n")
    return prompt_set


def set_loras_of(prompt_set):
    return [(link.lora_id, link.weight) for link in prompt_set.promptsetlora_set.all()]


@pytest.mark.django_db
def test_editors_set_a_prompt_sets_loras_through_the_api(api_as, editor, viewer, signs,
                                                         make_lora):
    lora, other = make_lora(0), make_lora(1)
    client = api_as(editor)
    body = {"loras": [{"id": lora.pk, "weight": 0.7}, {"id": other.pk, "weight": -0.5}]}
    response = client.patch("/api/sets/signs/", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["loras"] == body["loras"]
    assert set_loras_of(signs) == [(lora.pk, 0.7), (other.pk, -0.5)]
    # A weight out of range: 400 naming the field and the range; nothing changed.
    bad = client.patch("/api/sets/signs/", {"description": "new",
                                            "loras": [{"id": lora.pk, "weight": 0.2},
                                                      {"id": other.pk, "weight": 9}]},
                       format="json")
    assert bad.status_code == 400 and "loras" in bad.json(), bad.content
    signs.refresh_from_db()
    assert signs.description == "" and set_loras_of(signs) == [(lora.pk, 0.7), (other.pk, -0.5)]
    # The same LoRA twice is refused too; an empty list clears them.
    twice = client.patch("/api/sets/signs/", {"loras": [{"id": lora.pk}, {"id": lora.pk}]},
                         format="json")
    assert twice.status_code == 400 and "loras" in twice.json()
    assert client.patch("/api/sets/signs/", {"loras": []}, format="json").status_code == 200
    assert set_loras_of(signs) == []
    # A set created with its LoRAs; viewers may not change them.
    created = client.post("/api/sets/", {"name": "Moons", "prompt_template": "a {moon} moon",
                                         "loras": [{"id": other.pk, "weight": 0.3}]},
                          format="json")
    assert created.status_code == 201, created.content
    assert set_loras_of(PromptSet.objects.get(slug="moons")) == [(other.pk, 0.3)]
    assert api_as(viewer).patch("/api/sets/signs/", body, format="json").status_code == 403


@pytest.mark.django_db
def test_a_batch_uses_the_sets_loras(api_as, editor, signs, make_lora):
    lora = make_lora(0)
    signs.set_loras([(lora, 0.6)])
    response = api_as(editor).post("/api/batches/", {"set": "signs"}, format="json")
    assert response.status_code == 201, response.content
    assert all(job.lora_weights() == [(lora, 0.6)] for job in Job.objects.all())


@pytest.mark.django_db
def test_editors_set_a_prompt_sets_loras_on_its_page(client, editor, viewer, signs,
                                                     make_lora):
    lora = make_lora(0)
    client.force_login(editor)
    page = client.get("/sets/signs/").content.decode()
    assert 'action="/sets/signs/loras/"' in page and 'name="lora_1"' in page
    response = client.post("/sets/signs/loras/", {"lora_1": lora.pk, "weight_1": "0.4"})
    assert response.status_code == 302
    assert set_loras_of(signs) == [(lora.pk, 0.4)]
    assert f"{lora} × 0.4" in client.get("/sets/signs/").content.decode()
    bad = client.post("/sets/signs/loras/", {"lora_1": lora.pk, "weight_1": "7"})
    assert bad.status_code == 400 and "LoRA weight must be between" in bad.content.decode()
    assert set_loras_of(signs) == [(lora.pk, 0.4)]
    client.force_login(viewer)
    assert 'name="lora_1"' not in client.get("/sets/signs/").content.decode()
    assert client.post("/sets/signs/loras/", {"lora_1": lora.pk}).status_code == 403


@pytest.mark.django_db
def test_editors_set_a_prompt_sets_loras_in_the_admin(client, editor, signs, make_lora):
    lora = make_lora(0)
    client.force_login(editor)
    url = f"/admin/generation/promptset/{signs.pk}/change/"
    assert "promptsetlora_set-TOTAL_FORMS" in client.get(url).content.decode()
    form = {"name": signs.name, "slug": signs.slug, "prompt_template": signs.prompt_template,
            "width": 64, "height": 64,
            "promptsetlora_set-TOTAL_FORMS": "1", "promptsetlora_set-INITIAL_FORMS": "0",
            "promptsetlora_set-0-lora": lora.pk, "promptsetlora_set-0-weight": "3.5",
            "items-TOTAL_FORMS": "0", "items-INITIAL_FORMS": "0"}
    refused = client.post(url, form)
    assert refused.status_code == 200 and "LoRA weight must be between" in \
        refused.content.decode()
    assert set_loras_of(signs) == []
    assert client.post(url, {**form, "promptsetlora_set-0-weight": "0.8"}).status_code == 302
    assert set_loras_of(signs) == [(lora.pk, 0.8)]


@pytest.mark.django_db
def test_a_refused_batch_names_each_failing_item_and_writes_nothing(api_as, editor, deck,
                                                                   demo_base):
    from albums.models import Album
    from generation.models import Counter

    # Items 2 and 4 fill the template past the prompt limit; 1 and 3 are fine.
    long = "x" * (PROMPT_MAX // 2)
    deck.import_csv(f"rank,suit\nace,hearts\n{long},{long}\nking,spades\n{long},{long}y\n")
    response = api_as(editor).post("/api/batches/", {"set": "playing-cards"}, format="json")
    assert response.status_code == 400
    messages = response.json()["prompt"]
    assert [message.split(":")[0] for message in messages] == [
        f"item 2 (rank={long[:74]}…)", f"item 4 (rank={long[:74]}…)"]
    assert all(f"prompt must be 1 to {PROMPT_MAX} characters" in message
               for message in messages)
    assert not (Batch.objects.exists() or Job.objects.exists() or Album.objects.exists())
    assert Counter.objects.get(name="jobs_rejected", labels='{"reason": "invalid"}').value == 1

    # A rule broken by what every item shares is said once, naming no item.
    deck.import_csv("rank,suit\nace,hearts\nking,spades\n")
    shared = api_as(editor).post("/api/batches/", {"set": "playing-cards", "steps": 999},
                                 format="json")
    assert shared.status_code == 400
    [message] = shared.json()["steps"]
    assert message.startswith("steps must be") and "item" not in message


@pytest.mark.django_db
def test_a_refused_batch_names_at_most_ten_items_per_field(api_as, editor, deck, demo_base):
    long = "x" * PROMPT_MAX
    deck.import_csv("rank,suit\n" + "".join(f"{long},{n}\n" for n in range(25)))
    response = api_as(editor).post("/api/batches/", {"set": "playing-cards"}, format="json")
    assert response.status_code == 400
    messages = response.json()["prompt"]
    assert [message.split(" (")[0] for message in messages[:10]] == [
        f"item {n}" for n in range(1, 11)]
    assert messages[10:] == ["... and 15 more items."]
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_a_batch_writes_its_jobs_in_item_order_with_their_loras(api_as, editor, deck,
                                                              demo_base, make_lora):
    from generation.models import Counter, JobLora

    lora = make_lora(0)
    deck.import_csv(DECK_CSV.encode())
    deck.set_loras([(lora, 0.6)])
    response = api_as(editor).post("/api/batches/", {"set": "playing-cards", "seed": 5},
                                   format="json")
    assert response.status_code == 201, response.content
    batch = Batch.objects.get(pk=response.json()["id"])
    jobs = list(batch.jobs.order_by("batch_position"))
    items = list(deck.items.all())
    assert [job.batch_position for job in jobs] == list(range(54))
    assert [job.prompt for job in jobs] == [deck.prompt_for(item) for item in items]
    assert all(job.seed == 5 and job.owner == editor and job.owner_role == "editor"
               and job.model == demo_base for job in jobs)
    assert JobLora.objects.filter(job__batch=batch, lora=lora, weight=0.6).count() == 54
    assert Counter.objects.get(name="jobs_submitted",
                               labels='{"kind": "batch", "role": "editor"}').value == 54



def test_a_batch_with_no_base_model_registered_is_a_conflict_as_a_job_is(api_as, editor,
                                                                        deck):
    # What all items share (the model) keeps its rule's code through the batch's per-item
    # errors: the state refuses it (409), as it does a single job.
    deck.import_csv("rank,suit\nace,spades\nking,hearts\n")
    response = api_as(editor).post("/api/batches/", {"set": deck.slug}, format="json")
    job = api_as(editor).post("/api/jobs/", {"prompt": "a castle"}, format="json")
    assert (response.status_code, job.status_code) == (409, 409), response.content
    assert response.json()["model"] == job.json()["model"] == [
        "no base model is registered; run `manage.py create_demo_model`."]
    assert not Job.objects.exists() and not Batch.objects.exists()
