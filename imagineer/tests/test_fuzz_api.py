"""A short fuzz of the whole API (`make fuzz` is the long one; see imagineer/fuzzing.py).

schemathesis runs every operation of /api/schema/ against a real gunicorn on the test
database, with a viewer's token and then an admin's: the schema's examples, then a few
generated requests per operation, then short chains of calls (a created object read back,
a deleted one gone). Any 5xx, any answer that breaks its schema (an undocumented status or
media type, a body or header that does not fit), a request the schema allows refused with
400 or one it forbids served, or another failed check fails the test, with schemathesis'
report of each failing case: the check, the answer and a curl command.
"""

import pytest
import requests

from generation.tests import conftest as generation_fixtures
from imagineer.fuzzing import (
    CHECKS,
    SERVER_ENV,
    TABLE_HEADERS,
    WebServer,
    fuzz,
    seed,
    table_rows,
)
from imagineer.testing import subprocess_env

demo_model_dir = generation_fixtures.demo_model_dir
demo_base = generation_fixtures.demo_base
demo_loras = generation_fixtures.demo_loras

EXAMPLES = 5  # generated requests per operation, besides the schema's own examples
SEED = 20261126  # the same requests every run: a failure here is a bug to reproduce, not luck


@pytest.fixture(scope="session")
def captioner(tmp_path_factory):
    """A captioning model: with none configured, starting a caption run answers 503."""
    from albums.captioning import build_tiny_captioning_model

    return build_tiny_captioning_model(tmp_path_factory.mktemp("captioner"))


def test_it_answers_every_operation_within_its_schema(transactional_db, tmp_path, make_user,
                                                      demo_base, demo_loras, captioner):
    from rest_framework.authtoken.models import Token

    tokens = {role: Token.objects.create(user=make_user(f"fuzz-{role}", role)).key
              for role in ("viewer", "admin")}
    env = subprocess_env(**SERVER_ENV, IMAGINEER_CAPTION_MODEL=captioner)
    with WebServer(env, tmp_path / "web") as server:
        seed(server.url, admin_token=tokens["admin"], viewer_token=tokens["viewer"],
             lora_file=demo_loras[0])
        schema = requests.get(f"{server.url}/api/schema/", timeout=30, headers={
            "Accept": "application/vnd.oai.openapi+json"}).json()
        results = [
            fuzz(server, tokens[role], label=role, out_dir=tmp_path / "runs",
                 max_examples=EXAMPLES, phases="examples,fuzzing,stateful", seed=SEED,
                 lora_file=demo_loras[0], checks=CHECKS)
            for role in ("viewer", "admin")
        ]
    print(TABLE_HEADERS, *table_rows(results), sep="\n")

    failed = [result for result in results if not result.passed]
    assert not failed, "\n\n".join(result.report() for result in failed)
    operations = sum(method in ("get", "post", "put", "patch", "delete")
                     for item in schema["paths"].values() for method in item)
    for result in results:
        assert result.operations == operations, result.output[-3000:]
        assert result.examples >= operations and result.requests >= result.examples
