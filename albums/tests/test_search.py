"""Search over prompts and captions (albums/search.py), through /api/images/?search=, on the
database the tests run on (SQLite's FTS5, or PostgreSQL's full-text search with
DATABASE_URL): the index follows every way rows are written, the last word and a word
ending in * are prefixes (served by the index), the best match comes first and then the
newest, and the caller's visibility applies before the window of newest matches."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from albums import search as search_module
from albums.models import Image, Label

from .images import make_image

pytestmark = pytest.mark.django_db


def found(client, words, **params):
    response = client.get("/api/images/", {"search": words, **params})
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def test_it_finds_every_word_as_a_prefix_in_prompts_and_captions(api_as, editor):
    tower = make_image(1, prompt="A Lighthouse at dusk, oil painting")
    boat = make_image(2, prompt="a boat")
    boat.set_caption("a red boat at DUSK")
    noon = make_image(3, prompt="a lighthouse at noon")
    client = api_as(editor)
    assert found(client, "lightho* dus*") == [tower.pk]  # as one types, any case
    assert found(client, "lightho boat") == []  # a whole word unless last or ending in *
    assert found(client, "lightho") == [noon.pk, tower.pk]  # the last word: as one types
    assert found(client, "dusk") == [tower.pk, boat.pk]  # the prompt ranks first
    assert found(client, "red  boat!") == [boat.pk]  # punctuation separates words
    assert found(client, "ighthouse") == []  # the start of a word, not any part
    assert found(client, "!!! ...") == []  # no words: nothing
    for text in ('"a" OR b*', "NEAR(a b)", "a:* | !b", "'; DROP TABLE x; --", "é" * 300):
        assert found(client, text) is not None  # not a syntax error in either engine


def test_it_ranks_by_relevance_then_recency(api_as, editor):
    in_prompt = make_image(1, prompt="a red lighthouse")
    in_caption = make_image(2, prompt="a boat")
    in_caption.set_caption("a red lighthouse")
    same_older = make_image(3, prompt="a green field")
    same_newer = make_image(4, prompt="a green field")
    Image.objects.filter(pk=same_older.pk).update(created_at=same_newer.created_at.replace(
        year=2020))
    client = api_as(editor)
    assert found(client, "lighthouse") == [in_prompt.pk, in_caption.pk]
    assert found(client, "green") == [same_newer.pk, same_older.pk]
    pages = [found(client, "green", page_size=1)]
    first = client.get("/api/images/", {"search": "green", "page_size": 1}).json()
    pages.append([item["id"] for item in client.get(first["next"]).json()["results"]])
    assert pages == [[same_newer.pk], [same_older.pk]]  # cursor pages keep the order


def test_the_index_follows_every_way_rows_change(api_as, editor):
    image = make_image(1, prompt="a castle")
    client = api_as(editor)
    Image.objects.filter(pk=image.pk).update(prompt="a windmill")  # no save(), no signal
    assert found(client, "windmill") == [image.pk] and found(client, "castle") == []
    image.set_caption("in the fog")
    assert found(client, "fog") == [image.pk]
    image.set_caption("in the snow")  # the newest caption counts, not the older ones
    assert found(client, "fog") == [] and found(client, "snow") == [image.pk]
    image.labels.filter(text="in the snow").delete()  # back to the one before
    assert found(client, "fog") == [image.pk] and found(client, "snow") == []
    Label.objects.filter(image=image).update(text="by the sea")
    assert found(client, "sea") == [image.pk]
    Label.objects.create(image=image, kind=Label.Kind.TAG, text="tagged")
    assert found(client, "tagged") == []  # tags are not captions
    bulk = Image.objects.bulk_create([Image(
        file="images/x.png", thumbnail="thumbnails/x.webp", width=1, height=1, size_bytes=1,
        format="PNG", sha256="bulk", source="upload", prompt="a bulk zeppelin")])
    assert found(client, "zeppelin") == [bulk[0].pk]
    image.delete()
    assert found(client, "sea") == []
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT rowid FROM albums_image_fts")
            assert [row for (row,) in cursor.fetchall()] == [bulk[0].pk]


def test_it_ranks_the_newest_matches_only(api_as, editor, monkeypatch):
    images = [make_image(n, prompt=f"a lighthouse number {n}") for n in range(4)]
    monkeypatch.setattr(search_module, "WINDOW", 2)
    assert sorted(found(api_as(editor), "lighthouse")) == sorted(i.pk for i in images[2:])


def test_it_searches_only_what_the_caller_may_see_in_constant_queries(
        api_as, viewer, other_viewer):
    mine = [make_image(n, created_by=viewer, prompt="a lighthouse") for n in range(3)]
    make_image(9, created_by=other_viewer, prompt="a lighthouse, private")
    client = api_as(viewer)
    counts = []
    for size in (1, 3):
        with CaptureQueriesContext(connection) as queries:
            assert len(found(client, "lighthouse", page_size=size)) == size
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert sorted(found(client, "lighthouse")) == sorted(i.pk for i in mine)


def test_rebuild_indexes_rows_written_before_the_index(api_as, editor):
    image = make_image(1, prompt="an old harbour")
    image.set_caption("with boats")
    if connection.vendor == "sqlite":
        drop = "DELETE FROM albums_image_fts"
    else:
        drop = "UPDATE albums_image SET search_document = NULL"
    with connection.cursor() as cursor:
        cursor.execute(drop)
    assert found(api_as(editor), "harbour") == []
    search_module.rebuild()
    assert found(api_as(editor), "harbour boats") == [image.pk]


def test_as_you_type_the_last_word_is_a_prefix_served_by_the_index(api_as, editor):
    circle = make_image(1, prompt="a red circle")
    circus = make_image(2, prompt="a circus tent")
    make_image(3, prompt="a red square")
    client = api_as(editor)
    assert found(client, "c") == [circus.pk, circle.pk]  # one letter: no prefix index
    assert found(client, "ci") == [circus.pk, circle.pk]
    assert found(client, "cir") == [circus.pk, circle.pk]
    assert found(client, "circl") == [circle.pk]
    assert found(client, "red cir") == [circle.pk]
    assert found(client, "cir red") == []  # "cir" is not last: a whole word
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'albums_image_fts'")
            assert "prefix = '2 3 4'" in cursor.fetchone()[0]
        else:
            cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: seqscan else
            cursor.execute("EXPLAIN SELECT id FROM albums_image WHERE search_document @@ "
                           "to_tsquery('simple', 'cir:*')")
            plan = " ".join(line for (line,) in cursor.fetchall())
            assert "albums_image_search" in plan  # the GIN index serves the prefix


def test_a_strangers_newer_matches_do_not_hide_the_viewers_own(
        api_as, viewer, other_viewer, monkeypatch):
    monkeypatch.setattr(search_module, "WINDOW", 3)
    mine = make_image(1, created_by=viewer, prompt="my lighthouse")
    theirs = [make_image(n, created_by=other_viewer, prompt=f"their lighthouse {n}")
              for n in range(2, 8)]  # newer, more than the window, private
    assert all(image.pk > mine.pk for image in theirs)
    assert found(api_as(viewer), "lighthouse") == [mine.pk]
    assert len(found(api_as(other_viewer), "lighthouse")) == 3  # the window: theirs only


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plan choice")
def test_a_common_query_reads_the_newest_rows_and_finds_the_same(api_as, editor, monkeypatch):
    images = [make_image(n, prompt=f"a lighthouse {n}") for n in range(6)]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE albums_image")  # the most common lexemes is_common reads
    monkeypatch.setattr(search_module, "WINDOW", 3)
    client = api_as(editor)
    rare = found(client, "lig")
    monkeypatch.setattr(search_module, "COMMON", 0.1)  # 0.3 matches: common
    assert search_module.is_common(["lig"]) and not search_module.is_common(["zeppelin"])
    with CaptureQueriesContext(connection) as queries:
        assert found(client, "lig") == rare == [image.pk for image in images[:2:-1]]
    assert any("ts_match_vq" in query["sql"] for query in queries)


def test_a_long_prefix_finds_what_the_prefix_as_typed_finds(api_as, editor, monkeypatch):
    """SQLite reads a prefix longer than its prefix indexes through its first four letters,
    testing each row's words (search.sqlite_candidates): the same answers as the prefix
    read as typed, on both databases."""
    prompts = ["a lighthouse", "LIGHTHOUSES at dusk", "a lightship", "highlighthouse",
               "a-lighthouse-keeper", "light house", "lighthous", "an ÉCLAIR", "eclairs"]
    images = {prompt: make_image(n, prompt=prompt) for n, prompt in enumerate(prompts)}
    images["a lightship"].set_caption("seen from the Lighthouse")
    client = api_as(editor)
    queries = ["lighthouse", "lighthou", "lights", "lighthouse* dus", "dusk lighthouses",
               "house lighthouse", "lighthousekeeper", "éclair", "eclair", "ÉCLA"]
    with CaptureQueriesContext(connection) as captured:
        fast = {query: found(client, query) for query in queries}
    if connection.vendor == "sqlite":
        assert any("highlight(albums_image_fts" in query["sql"] for query in captured)
    monkeypatch.setattr(search_module, "PREFIX_INDEXED", 100)  # every prefix as typed
    assert {query: found(client, query) for query in queries} == fast
    expected = ["a-lighthouse-keeper", "LIGHTHOUSES at dusk", "a lighthouse", "a lightship"]
    assert fast["lighthouse"] == [images[prompt].pk for prompt in expected]
    assert fast["lighthouse* dus"] == [images["LIGHTHOUSES at dusk"].pk]
    assert fast["éclair"] == [images["an ÉCLAIR"].pk]  # FTS5 folds the case beyond ASCII
    assert fast["eclair"] == [images["eclairs"].pk]


def test_a_long_prefix_rare_among_its_first_letters_is_read_as_typed(
        api_as, editor, monkeypatch):
    older = [make_image(n, prompt=f"a lighthouse {n}") for n in range(3)]
    for n in range(3, 9):
        make_image(n, prompt=f"a lightship {n}")  # newer: the rows read first
    monkeypatch.setattr(search_module, "WINDOW", 2)
    monkeypatch.setattr(search_module, "SCAN", 2)  # 4 rows of "ligh": none a lighthouse
    assert found(api_as(editor), "lighthouse") == [image.pk for image in older[:0:-1]]
