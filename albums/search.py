"""Search over images' prompts and captions: the one search function, `search(images, text)`,
on PostgreSQL's full-text search and on SQLite's FTS5.

Each image's words (its prompt, and its caption: the newest caption label) are kept in an
index by the database itself, so that rows written any way (the ORM, bulk_create, raw SQL,
imports) are found:

- PostgreSQL: a `search_document` tsvector column on albums_image (the prompt weighted A,
  the caption B) with a GIN index, set by triggers on albums_image and albums_label.
- SQLite: an FTS5 table, albums_image_fts (rowid = the image id; prompt, caption), kept by
  triggers on the same two tables.

Both split words the same way (letters and digits; case ignored; no stemming, so results
match across the two databases). Every word of the search is required; a word is a whole
word, but the last word, and a word ending in `*`, is the start of one: a search box sends
what is typed so far ("lighthouse dus" finds "a lighthouse at dusk", "cir" finds
"circle"). The indexes serve the prefixes: PostgreSQL's GIN index answers a tsquery
prefix (`dus:*`), and the FTS5 table keeps prefix indexes of 2, 3 and 4 characters (the
short prefixes, which start the most words; a longer one starts few). The words are
never put in SQL text: they are reduced to letters and digits and passed as parameters.

Candidates are the newest `WINDOW` matches among the images the caller passed (all of them
when there are fewer): the caller's filters, the visibility rule first, apply inside the
query that picks them, so a viewer always reaches their own matches, however many newer
ones strangers have. A common word costs no more than a rare one; type more words to
narrow a search past that. On SQLite they are read from the FTS5 table newest first, each
tested against the caller's filters; on PostgreSQL a rare query reads its matches from the
GIN index, a common one (`is_common`) the newest rows by pk, testing each row's tsvector.
They are then ranked by relevance, then recency. Relevance is the same on both databases,
worked out from the row: 2 when every word is in the prompt, plus 1 when every word is in
the caption. (The engines' own ranks, ts_rank and bm25, were
tried: bm25 needs a MATCH per ranked row, which cost 35 s for a common word on SQLite,
and the two would order results differently.)

The migration (0008_search) creates the index and fills it for existing rows
(`rebuild`, which may be run again); a later migration that makes SQLite rebuild the
albums_image table drops its triggers: tests/test_search.py would catch it.
"""

import operator
import re
from functools import reduce

from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Expression,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    Value,
    When,
)
from django.db.models.expressions import RawSQL

WINDOW = 1000
"""How many of the newest matches are ranked and listed."""

MAX_WORDS = 16


def words(text):
    """The words of a search, lowercased, at most MAX_WORDS: runs of letters and digits, each
    with the `*` that may follow it (a prefix)."""
    return re.findall(r"[^\W_]+\*?", text.lower())[:MAX_WORDS]


class Matches(Expression):
    """PostgreSQL: true where the image's tsvector matches `query` (the engine's syntax,
    made by `search` from the words): a condition on the row of the queryset it filters,
    so it sits in the same WHERE as the caller's filters."""

    output_field = BooleanField()

    def __init__(self, query, *, common=False):
        super().__init__()
        self.query, self.common = query, common
        self.pk = F("pk")

    def get_source_expressions(self):
        return [self.pk]

    def set_source_expressions(self, exprs):
        (self.pk,) = exprs

    def as_sql(self, compiler, connection):
        table = compiler.quote_name_unless_alias(self.pk.alias)  # relabelled in subqueries
        # A common query as a plain function call, which no index serves: the plan reads
        # the newest rows by pk until the window is full.
        condition = "ts_match_vq({}, {})" if self.common else "{} @@ {}"
        return (condition.format(f"{table}.search_document", "to_tsquery('simple', %s)"),
                [self.query])


def sqlite_candidates(images, found):
    """SQLite: the newest WINDOW matches among `images`, read from the FTS5 table in rowid
    order, each tested against the caller's filters until the window is full (an
    `id IN (every match)` would first collect every match: 5x slower for a common word).

    FTS5 reads a word's matches lazily, newest first, and so a prefix the table indexes (2
    to 4 characters); but a longer prefix (`lighthouse*`: the last word of every search)
    makes it merge every match of every word starting so into one list first: 80 ms for a
    word in every image of a million. So such a prefix is read as its first four
    characters (indexed, lazy), and each row of those is kept where a word of its prompt or
    caption starts with the whole prefix: FTS5's own `highlight` marks the words that
    matched (its tokenizer: the same word boundaries), `lower` folds them. At most SCAN
    windows of rows are read so; when fewer than WINDOW of them pass (a prefix rare among
    the words its first four characters start, or images the caller may not see), the
    query as typed picks the window instead, in the same statement. A prefix with letters
    beyond ASCII is always read as typed: `lower` folds only ASCII letters, FTS5 all."""
    query = engine_query(found, "sqlite")
    plain = [word.rstrip("*") for word in found]
    long = [n for n, word in enumerate(plain)
            if is_prefix(found, n) and len(word) > PREFIX_INDEXED and word.isascii()]
    if not long:
        return RawSQL(*window_sql(images, query))  # noqa: S611 (the words are parameters)
    short = engine_query([plain[n][:PREFIX_INDEXED] + "*" if n in long else word
                          for n, word in enumerate(found)], "sqlite")
    long = [plain[n] for n in long]
    mine, params = visible_sql(images, "candidate.id")
    starts = " AND ".join(["(instr(lower(candidate.prompt), char(1) || %s) "
                           "OR instr(lower(candidate.caption), char(1) || %s))"] * len(long))
    typed, typed_params = window_sql(images, query)
    sql = (  # the ORM's SQL and fixed text: no input
        "WITH fast AS (SELECT id FROM (SELECT rowid AS id, "  # noqa: S608
        "highlight(albums_image_fts, 0, char(1), '') AS prompt, "
        "highlight(albums_image_fts, 1, char(1), '') AS caption FROM albums_image_fts "
        "WHERE albums_image_fts MATCH %s ORDER BY rowid DESC LIMIT %s) AS candidate "
        f"WHERE {starts} AND EXISTS ({mine}) LIMIT %s) "
        "SELECT id FROM fast UNION ALL SELECT value FROM json_each((SELECT CASE WHEN "
        f"(SELECT count(*) FROM fast) < %s THEN (SELECT json_group_array(rowid) FROM ({typed})) "
        "ELSE '[]' END))")
    return RawSQL(sql, [short, SCAN * WINDOW, *[word for word in long for _ in "pc"], *params,  # noqa: S611
                        WINDOW, WINDOW, *typed_params])


def visible_sql(images, rowid):
    """The SQL of `EXISTS`'s subquery: the image `rowid` (SQL) is among `images`."""
    return (images.filter(pk=RawSQL(rowid, [])).order_by()  # noqa: S611 (fixed SQL)
            .values("pk").query.sql_with_params())


def window_sql(images, query):
    """The newest WINDOW rowids among `images` matching `query` (FTS5's syntax)."""
    mine, params = visible_sql(images, "albums_image_fts.rowid")
    sql = ("SELECT rowid FROM albums_image_fts WHERE albums_image_fts MATCH %s "  # noqa: S608
           f"AND EXISTS ({mine}) ORDER BY rowid DESC LIMIT %s")  # (the ORM's SQL)
    return sql, [query, *params, WINDOW]


PREFIX_INDEXED = 4
"""The longest prefix the FTS5 table indexes (SQLITE's `prefix`)."""

SCAN = 5
"""How many windows of rows of an indexed prefix SQLite reads for a longer one before it
reads the longer one's matches as typed."""


COMMON = 20
"""A query is common on PostgreSQL when it matches at least COMMON * WINDOW images."""


def is_common(found):
    """Whether, by PostgreSQL's statistics of the index's words (ANALYZE's most common
    lexemes and their frequencies), the words match so many images that reading the
    newest images until WINDOW of them match is cheaper than reading every match from
    the GIN index (which gives them in no order). The planner itself estimates a prefix
    (`lig:*`) at 2% of the rows whatever it starts, and would read a million matches of
    a common prefix from the GIN index, testing each one's visibility (18 s)."""
    plain = [word.rstrip("*") for word in found]
    prefixes = [is_prefix(found, n) for n in range(len(found))]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT m.lexeme, m.frequency, c.reltuples FROM pg_class c, pg_stats s, "
            "unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) "
            "AS m(lexeme, frequency) WHERE c.oid = 'albums_image'::regclass "
            "AND s.schemaname = current_schema() AND s.tablename = 'albums_image' "
            "AND s.attname = 'search_document' AND m.lexeme LIKE ANY(%s)",
            [[word + "%" if prefix else word for word, prefix in zip(plain, prefixes,
                                                                        strict=True)]])
        rows = cursor.fetchall()
    if not rows:
        return False
    shares = []
    for word, prefix in zip(plain, prefixes, strict=True):
        missing = 1.0  # the share of images without any matching lexeme
        for lexeme, frequency, _ in rows:
            if lexeme == word or (prefix and lexeme.startswith(word)):
                missing *= 1 - frequency
        shares.append(1 - missing)
    return min(shares) * rows[0][2] >= COMMON * WINDOW


def is_prefix(found, n):
    """Whether word n of `found` (`words`'s) is the start of a word: the last one, and any
    ending in `*`."""
    return found[n].endswith("*") or n == len(found) - 1


def engine_query(found, vendor):
    """The words (`words`'s) in the engine's query syntax: every word required; the last,
    and any ending in `*`, a prefix."""
    terms = []
    for n, word in enumerate(found):
        prefix = is_prefix(found, n)
        word = word.rstrip("*")
        if vendor == "postgresql":
            terms.append(f"{word}:*" if prefix else word)
        else:
            terms.append(f'"{word}"*' if prefix else f'"{word}"')
    return (" & " if vendor == "postgresql" else " ").join(terms)


def search(images, text):
    """`images` (a queryset: what the caller may see, filtered) narrowed to those whose
    prompt or caption holds every word of `text` (the last one as a prefix), best match
    first, then newest; none if `text` has no words."""
    found = words(text)
    if not found:
        return images.none()
    if connection.vendor == "postgresql":
        query = engine_query(found, "postgresql")
        candidates = (images.filter(Matches(query, common=is_common(found)))
                      .order_by("-pk").values("pk")[:WINDOW])
    else:
        candidates = sqlite_candidates(images, found)
    plain = [word.rstrip("*") for word in found]
    in_prompt = reduce(operator.and_, (Q(prompt__icontains=word) for word in plain))
    in_caption = reduce(operator.and_, (Q(caption_text__icontains=word) for word in plain))
    relevance = (Case(When(in_prompt, then=Value(2)), default=Value(0))
                 + Case(When(in_caption, then=Value(1)), default=Value(0)))
    # The candidates passed the caller's filters already: not tested again (half the
    # time of a common word on PostgreSQL).
    return (images.model.objects.with_caption().filter(pk__in=candidates)
            .annotate(search_rank=ExpressionWrapper(relevance, output_field=IntegerField()))
            .order_by("-search_rank", "-created_at", "-id"))


# The index: created by the migration, kept by the triggers.

NEWEST_CAPTION = ("SELECT text FROM albums_label WHERE albums_label.image_id = {image} "
                  "AND albums_label.kind = 'caption' "
                  "ORDER BY albums_label.created_at DESC, albums_label.id DESC LIMIT 1")

POSTGRESQL = [
    "ALTER TABLE albums_image ADD COLUMN search_document tsvector",
    f"""CREATE FUNCTION albums_image_document(image bigint, prompt text) RETURNS tsvector
        LANGUAGE sql STABLE AS $$
        SELECT setweight(to_tsvector('simple', coalesce(prompt, '')), 'A')
            || setweight(to_tsvector('simple', coalesce(({NEWEST_CAPTION.format(image='$1')}),
                                                        '')), 'B')
        $$""",
    """CREATE FUNCTION albums_image_search() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.search_document := albums_image_document(NEW.id, NEW.prompt);
            RETURN NEW;
        END $$""",
    """CREATE TRIGGER albums_image_search BEFORE INSERT OR UPDATE OF prompt ON albums_image
        FOR EACH ROW EXECUTE FUNCTION albums_image_search()""",
    """CREATE FUNCTION albums_label_search() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'DELETE' AND NEW.kind = 'caption' THEN
                UPDATE albums_image SET search_document = albums_image_document(id, prompt)
                WHERE id = NEW.image_id;
            END IF;
            IF TG_OP <> 'INSERT' AND OLD.kind = 'caption' THEN
                UPDATE albums_image SET search_document = albums_image_document(id, prompt)
                WHERE id = OLD.image_id;
            END IF;
            RETURN NULL;
        END $$""",
    """CREATE TRIGGER albums_label_search AFTER INSERT OR UPDATE OR DELETE ON albums_label
        FOR EACH ROW EXECUTE FUNCTION albums_label_search()""",
    "CREATE INDEX albums_image_search ON albums_image USING gin (search_document)",
]

POSTGRESQL_REBUILD = "UPDATE albums_image SET search_document = albums_image_document(id, prompt)"

POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS albums_label_search ON albums_label",
    "DROP FUNCTION IF EXISTS albums_label_search()",
    "DROP TRIGGER IF EXISTS albums_image_search ON albums_image",
    "DROP FUNCTION IF EXISTS albums_image_search()",
    "DROP INDEX IF EXISTS albums_image_search",
    "ALTER TABLE albums_image DROP COLUMN IF EXISTS search_document",
    "DROP FUNCTION IF EXISTS albums_image_document(bigint, text)",
]


def sqlite_caption(image):
    return f"coalesce(({NEWEST_CAPTION.format(image=image)}), '')"


SQLITE = [
    "CREATE VIRTUAL TABLE albums_image_fts USING fts5(prompt, caption, "
    "tokenize = 'unicode61 remove_diacritics 0', prefix = '2 3 4')",
    """CREATE TRIGGER albums_image_fts_insert AFTER INSERT ON albums_image BEGIN
        INSERT INTO albums_image_fts (rowid, prompt, caption)
        VALUES (new.id, new.prompt, ''); END""",
    """CREATE TRIGGER albums_image_fts_prompt AFTER UPDATE OF prompt ON albums_image BEGIN
        UPDATE albums_image_fts SET prompt = new.prompt WHERE rowid = new.id; END""",
    """CREATE TRIGGER albums_image_fts_delete AFTER DELETE ON albums_image BEGIN
        DELETE FROM albums_image_fts WHERE rowid = old.id; END""",
    f"""CREATE TRIGGER albums_label_fts_insert AFTER INSERT ON albums_label
        WHEN new.kind = 'caption' BEGIN
        UPDATE albums_image_fts SET caption = {sqlite_caption('new.image_id')}
        WHERE rowid = new.image_id; END""",  # noqa: S608 (fixed SQL: no input)
    f"""CREATE TRIGGER albums_label_fts_update AFTER UPDATE ON albums_label BEGIN
        UPDATE albums_image_fts SET caption = {sqlite_caption('old.image_id')}
        WHERE rowid = old.image_id;
        UPDATE albums_image_fts SET caption = {sqlite_caption('new.image_id')}
        WHERE rowid = new.image_id; END""",  # noqa: S608 (fixed SQL: no input)
    f"""CREATE TRIGGER albums_label_fts_delete AFTER DELETE ON albums_label
        WHEN old.kind = 'caption' BEGIN
        UPDATE albums_image_fts SET caption = {sqlite_caption('old.image_id')}
        WHERE rowid = old.image_id; END""",  # noqa: S608 (fixed SQL: no input)
]

SQLITE_REBUILD = [
    "DELETE FROM albums_image_fts",
    f"""INSERT INTO albums_image_fts (rowid, prompt, caption)
        SELECT id, prompt, {sqlite_caption('albums_image.id')} FROM albums_image""",  # noqa: S608 (fixed SQL: no input)
]

SQLITE_DROP = [
    *(f"DROP TRIGGER IF EXISTS {name}" for name in (
        "albums_image_fts_insert", "albums_image_fts_prompt", "albums_image_fts_delete",
        "albums_label_fts_insert", "albums_label_fts_update", "albums_label_fts_delete")),
    "DROP TABLE IF EXISTS albums_image_fts",
]


def run(db, postgresql, sqlite):
    """Run the statements of db's vendor (migrations' SQL: here and in counts.py)."""
    with db.cursor() as cursor:
        for statement in postgresql if db.vendor == "postgresql" else sqlite:
            cursor.execute(statement)


def create_index(apps, schema_editor):
    """The migration's forward step: the index, its triggers, filled for existing rows."""
    run(schema_editor.connection, POSTGRESQL, SQLITE)
    rebuild(schema_editor.connection)


def drop_index(apps, schema_editor):
    run(schema_editor.connection, POSTGRESQL_DROP, SQLITE_DROP)


def rebuild(db=connection):
    """Index every image afresh (what the triggers keep up to date from then on)."""
    run(db, [POSTGRESQL_REBUILD], SQLITE_REBUILD)


def add_prefix_index(apps, schema_editor):
    """Migration 0009: SQLite's FTS5 table made again with its prefix indexes (SQLITE now
    has them), filled for existing rows. PostgreSQL's GIN index serves prefixes as it is."""
    run(schema_editor.connection, [], SQLITE_DROP + SQLITE)
    if schema_editor.connection.vendor == "sqlite":
        rebuild(schema_editor.connection)
