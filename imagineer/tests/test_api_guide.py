"""docs/api.md keeps matching the API: every curl command in it calls an operation that the
schema describes, and the walk-through covers the whole automation session."""

import re
import shlex
from urllib.parse import urlsplit

import pytest
from django.urls import resolve

from imagineer.testing import BASE_DIR
from imagineer.tests.test_api_schema import NOT_IN_SCHEMA

GUIDE = BASE_DIR / "docs" / "api.md"


def shell_blocks(text):
    return re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)


def curl_commands(block):
    """Each curl command of a shell snippet as its list of words (in `$(...)` too)."""
    lexer = shlex.shlex(block.replace("\\\n", " "), posix=True, punctuation_chars="|&;()\n")
    lexer.whitespace = " \t"
    lexer.whitespace_split = True
    command = []
    for token in [*lexer, "\n"]:
        if token.strip("|&;()\n"):
            command.append(token)
            continue
        if command and command[0] == "curl":
            yield command
        command = []


def method_and_path(words):
    """The HTTP method and the URL path that a curl command calls."""
    method = "GET"
    if {"-d", "--data", "-F", "--form"} & set(words):
        method = "POST"
    if "-X" in words:
        method = words[words.index("-X") + 1]
    [url] = [word for word in words if word.startswith("$IMAGINEER")]
    return method.lower(), urlsplit(url.removeprefix("$IMAGINEER")).path


def schema_operation(schema, method, path):
    """The schema path whose template matches `path` (ids may be shell variables)."""
    for template, item in schema["paths"].items():
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path) and method in item:
            return template
    return None


@pytest.fixture(scope="module")
def called():
    text = GUIDE.read_text()
    return [method_and_path(words) for block in shell_blocks(text)
            for words in curl_commands(block)]


def mentioned(text):
    """Operations the prose names, like `POST /api/jobs/1/cancel/`."""
    for method, url in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/\S*?)`", text):
        yield method.lower(), urlsplit(url).path


def test_it_calls_only_operations_that_the_schema_describes(called, schema):
    named = list(mentioned(GUIDE.read_text()))
    assert len(called) >= 10 and len(named) >= 5
    for method, path in called + named:
        if path in NOT_IN_SCHEMA:
            assert resolve(path)  # the schema itself
            continue
        assert schema_operation(schema, method, path), f"docs/api.md: {method} {path}"


def test_it_walks_through_the_whole_automation_session(called, schema):
    operations = [(method, schema_operation(schema, method, path)) for method, path in called]
    session = [
        ("post", "/api/token/"),
        ("post", "/api/jobs/"),
        ("get", "/api/jobs/{id}/"),
        ("get", "/media/images/{id}/"),
        ("post", "/api/albums/"),
        ("post", "/api/albums/{id}/images/"),
        ("post", "/api/training-runs/"),
        ("get", "/api/training-runs/{id}/"),
        ("post", "/api/jobs/"),
    ]
    position = 0
    for step in session:  # in this order
        assert step in operations[position:], f"docs/api.md lacks {step} after step {position}"
        position = operations.index(step, position) + 1
