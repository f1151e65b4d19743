"""Fuzzing the API with schemathesis, against a real web server.

`bench/fuzz.py` (`make fuzz`, the long run) and `imagineer/tests/test_fuzz_api.py` (a short
run in `make test`) both: start gunicorn on a database of their own (`WebServer`), put a
few objects in it through the API (`seed`), and run `schemathesis run` on `/api/schema/`,
every operation, once with a viewer's token and once with an admin's (`fuzz`). The viewer
goes first: the admin may change the site settings, and the viewer's run should meet the
ones the run started with.

The server runs as in production (DEBUG off), with the per-user generation limits raised
for the fuzz run only (`SERVER_ENV`): a fuzzer sends hundreds of jobs a minute, and at the
default ten a minute nearly every one would answer 429. No worker runs, so jobs, batches,
training and caption runs stay queued.
"""

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# The schemathesis checks each response must pass, and why the others are left out.
CHECKS = [
    "not_a_server_error",  # no 5xx
    "status_code_conformance",  # every status answered is documented for the operation
    "content_type_conformance",  # ... with its media type
    "response_schema_conformance",  # ... and a body that fits its schema
    "response_headers_conformance",  # documented headers (Retry-After, Location) are sent
    "missing_required_header",  # no credentials: 401, not a 2xx or a 5xx
    "ignored_auth",  # an operation that needs a token refuses a call without one
    "unsupported_method",  # a method the operation lacks answers 405
    "allow_header_conformance",  # ... with an Allow header listing the right methods
    "use_after_free",  # a deleted object answers 404 afterwards (stateful phase)
    "ensure_resource_availability",  # a created object can be read at once (stateful phase)
    # The schema and the server agree on what is valid (docs/reliability.md):
    "positive_data_acceptance",  # a request the schema allows is not refused with 400
    "negative_data_rejection",  # one it forbids is refused (4xx), not served
]
DATA_CHECKS = ["positive_data_acceptance", "negative_data_rejection"]
# Left out: object_level_authorization: it needs two identities in one run; who may see
# and change what is checked per role by the tests (accounts/,
# albums/tests/test_permissions.py, imagineer/tests/test_isolation.py).

# The fuzz run's own settings for the web server (on top of its database and media root).
SERVER_ENV = {
    "DJANGO_DEBUG": "0",  # as in production: error pages without tracebacks, no query log
    "DJANGO_SECRET_KEY": "fuzz-only-key-not-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DJANGO_SECURE_SSL_REDIRECT": "0",  # plain HTTP on 127.0.0.1
    "IMAGINEER_LOG_LEVEL": "WARNING",
    # The per-user generation limits, as high as the site settings allow: raised for the
    # fuzz run only (admins are exempt from them anyway; the viewer is not).
    "IMAGINEER_JOBS_PER_MINUTE": "10000",
    "IMAGINEER_BATCHES_PER_HOUR": "10000",
    "IMAGINEER_MAX_ACTIVE_JOBS": "10000",
    "IMAGINEER_MAX_QUEUE": "1000000",
    # The throttles of uploads, imports, captioning, model uploads and training runs
    # (accounts/limits.py), raised alike; the storage quota off.
    "IMAGINEER_THROTTLE_UPLOADS": "1000000/hour",
    "IMAGINEER_THROTTLE_IMPORTS": "1000000/hour",
    "IMAGINEER_THROTTLE_CAPTIONING": "1000000/hour",
    "IMAGINEER_THROTTLE_MODEL_UPLOADS": "1000000/hour",
    "IMAGINEER_THROTTLE_TRAINING": "1000000/hour",
    "IMAGINEER_STORAGE_QUOTA_BYTES": "0",
    "OMP_NUM_THREADS": "1",
}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebServer:
    """gunicorn serving imagineer.wsgi on a free port of 127.0.0.1, in its own process group,
    with an access log of one line a request: its status (the tracebacks of 5xx answers are
    in web.log).

    gunicorn's own limits on the request line (4094 bytes) and on a header are lifted: a
    longer URL would get gunicorn's 414 page without reaching Django, and that is the
    fuzzer's to send to the API, not to gunicorn."""

    def __init__(self, env, log_dir, workers=2):
        self.env, self.log_dir, self.workers = env, Path(log_dir), workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.access_log = self.log_dir / "access.log"
        self.process = None

    def start(self, timeout=60):
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.access_log.write_text("")
        self.error_log = open(self.log_dir / "web.log", "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(  # noqa: S603 (gunicorn from this interpreter, fixed arguments)
            [sys.executable, "-m", "gunicorn", "imagineer.wsgi", "-b", f"127.0.0.1:{self.port}",
             "-w", str(self.workers), "--timeout", "120",
             "--limit-request-line", "0", "--limit-request-field_size", "0",
             "--access-logfile", str(self.access_log), "--access-logformat", "%(s)s"],
            cwd=BASE_DIR, env=self.env, stdout=self.error_log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        import requests

        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the web server exited: {self.log()[-3000:]}")
            try:
                # Only the database: no worker runs here, and the health check counts them.
                if requests.get(f"{self.url}/api/health/?only=database",
                                timeout=5).status_code == 200:
                    return self
            except (requests.ConnectionError, requests.Timeout):  # still starting (a loaded box)
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not answer: {self.log()[-3000:]}")
            time.sleep(0.3)

    def stop(self):
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=20)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            self.process = None
            self.error_log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log(self):
        return (self.log_dir / "web.log").read_text(errors="replace")

    def requests_since(self, offset):
        """The statuses the server answered since `offset` (a size of the access log)."""
        with open(self.access_log, "rb") as log:
            log.seek(offset)
            return [int(line) for line in log.read().split()]

    def access_log_size(self):
        return self.access_log.stat().st_size


# Objects to hit: what the schema's examples name (the "seaside" prompt set, small ids), for
# both users, so that reads, changes and actions find something and not only 404s.


def png(color):
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(out, "PNG")
    return out.getvalue()


class Api:
    """The API over HTTP with one user's token; every call must answer `expect`."""

    def __init__(self, base_url, token):
        import requests

        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def call(self, method, path, expect=201, **kwargs):
        response = self.session.request(method, self.base_url + path, timeout=60, **kwargs)
        if response.status_code != expect:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()


def seed(base_url, *, admin_token, viewer_token, lora_file):
    """An album with images for each user (the admin's public, so the viewer sees one it may
    not change), a LoRA, the "seaside" prompt set with items, a batch, jobs, a training run
    and a caption run. Returns what was made, by kind, as ids."""
    viewer, admin = Api(base_url, viewer_token), Api(base_url, admin_token)
    made = {}
    album = viewer.call("POST", "/api/albums/", json={"name": "Vera's seaside"})
    image = viewer.call("POST", "/api/images/", data={"album": album["id"]},
                        files=[("file", ("red.png", png((200, 30, 30)), "image/png"))])
    job = viewer.call("POST", "/api/jobs/", json={
        "prompt": "a red lighthouse", "width": 64, "height": 64, "steps": 4, "seed": 1})
    made["viewer"] = {"album": album["id"], "image": image[0]["id"], "job": job["id"]}

    album = admin.call("POST", "/api/albums/", json={
        "name": "Lighthouses", "visibility": "public", "is_training_set": True})
    images = admin.call("POST", "/api/images/", data={"album": album["id"]}, files=[
        ("file", (f"{n}.png", png((30 * n, 120, 200 - 30 * n)), "image/png"))
        for n in range(1, 4)])
    admin.call("PATCH", f"/api/images/{images[0]['id']}/", expect=200,
               json={"caption": "a lighthouse, blue"})
    lora = admin.call("POST", "/api/models/", data={"name": "inkwash", "kind": "lora"},
                      files=[("file", ("inkwash.safetensors", Path(lora_file).read_bytes()))])
    admin.call("POST", "/api/sets/", json={
        "name": "Seaside", "slug": "seaside", "prompt_template": "{subject} at the seaside",
        "width": 64, "height": 64})
    admin.call("POST", "/api/sets/seaside/items/", files=[
        ("file", ("items.csv", b"subject\na lighthouse\na boat\n", "text/csv"))])
    batch = admin.call("POST", "/api/batches/", json={
        "set": "seaside", "theme": "at dawn", "steps": 4, "seed": 5})
    job = admin.call("POST", "/api/jobs/", json={
        "prompt": "a lighthouse in a storm", "loras": [{"id": lora["id"], "weight": 0.8}],
        "width": 64, "height": 64, "steps": 4, "seed": 99})
    run = admin.call("POST", "/api/training-runs/", json={
        "album": album["id"], "name": "lighthouses", "resolution": 64, "steps": 4})
    caption = admin.call("POST", f"/api/albums/{album['id']}/caption/", expect=202)
    made["admin"] = {"album": album["id"], "images": [i["id"] for i in images],
                     "lora": lora["id"], "batch": batch["id"], "job": job["id"],
                     "training_run": run["id"], "caption_run": caption["id"]}
    return made


@dataclass
class Result:
    """One schemathesis run with one token: its figures and its readable output."""

    label: str
    operations: int = 0
    examples: int = 0
    requests: int = 0
    server_errors: int = 0  # 5xx answers but 503, from the server's access log
    documented_503s: int = 0  # "the queue is full" and the like: see configuration()
    schema_violations: int = 0  # unique failures of the conformance checks
    other_failures: int = 0  # unique failures of the other checks (and errors)
    failures: dict = field(default_factory=dict)  # "ST108 Response violates schema": count
    stop_reason: str = ""
    seconds: float = 0.0
    output: str = field(default="", repr=False)

    @property
    def passed(self):
        return (not self.server_errors and not self.schema_violations
                and not self.other_failures and self.stop_reason == "completed")

    def report(self):
        """The failing cases as schemathesis shows them: check, response and a curl command."""
        match = re.search(r"^=+ FAILURES =+$(.*?)^=+ (WARNINGS|SUMMARY) =+$", self.output,
                          re.M | re.S)
        details = match.group(1).strip() if match else self.output[-6000:]
        return f"--- {self.label}: {self.failures or self.stop_reason}\n{details}"


# Failure types (schemathesis' JSON report) that say a response breaks its own schema.
SCHEMA_FAILURES = {"UndefinedStatusCode", "UndefinedContentType", "MissingContentType",
                   "MalformedMediaType", "JsonSchemaError", "MalformedJson",
                   "ContentDeserializationError", "DiscriminatorMismatch", "MissingHeaders"}
SERVER_FAILURES = {"ServerError", "ContentTypeServerError"}


# Operations that schemathesis' coverage phase cannot fuzz as the schema says, with the
# phase off for them only (every check stays on, and the other phases run): it sends a
# multipart file field as a part without a file name, which is a text field to any
# multipart parser (RFC 7578), and fills the other required fields with empty text. The
# server's 400 is right; the schema declares a file and a file name (`encoding`).
NO_COVERAGE = ["POST /api/images/", "POST /api/albums/{id}/import/", "POST /api/jobs/",
               "POST /api/sets/{slug}/items/", "POST /api/models/", "PUT /api/models/{id}/",
               "PATCH /api/models/{id}/"]


def configuration(schema):
    """schemathesis' configuration, per operation:

    - a 503 is no server error where the schema documents it: a submission while the
      queue is full (the admin's run may lower `max_queue`), captioning while it is off,
      an unhealthy health check. Any other 5xx fails, and a 503 elsewhere fails as an
      undocumented status too;
    - the coverage phase is off for the operations of NO_COVERAGE."""
    blocks = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            name = f"{method.upper()} {path}"
            lines = []
            if "503" in operation.get("responses", {}):
                lines.append('checks.not_a_server_error.expected-statuses = '
                             '["2xx", "3xx", "4xx", "503"]')
            if name in NO_COVERAGE:
                lines.append("phases.coverage.enabled = false")
            if lines:
                blocks.append(f'[[operations]]\ninclude-name = "{name}"\n'
                              + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def fuzz(server, token, *, label, out_dir, max_examples, phases=None, workers=1, seed=None,
         max_time=None, checks=CHECKS, lora_file=None):
    """Run `schemathesis run` on the server's schema with one token; return its Result.
    `lora_file`: a LoRA of the demo model, the file a model upload sends
    (imagineer/fuzzing_hooks.py)."""
    import requests

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = out_dir / f"{label}.json"
    schema = requests.get(f"{server.url}/api/schema/", timeout=60,
                          headers={"Accept": "application/vnd.oai.openapi+json"}).json()
    config = out_dir / "schemathesis.toml"
    config.write_text(configuration(schema))
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config),
        "run", f"{server.url}/api/schema/",
        "--header", f"Authorization: Token {token}",
        "--checks", ",".join(checks),
        "--max-examples", str(max_examples),
        "--workers", str(workers),
        "--request-timeout", "60",
        "--generation-database", "none",
        "--report", "json", "--report-json-path", str(report),
        "--no-color",
    ]
    if phases:
        command += ["--phases", phases]
    if seed is not None:
        command += ["--seed", str(seed)]
    if max_time:
        command += ["--max-time", str(max_time)]
    offset = server.access_log_size()
    started = time.monotonic()
    # Run from the output folder: nothing of this run (hypothesis' folders) should land in
    # the repository.
    env = {**os.environ, "COLUMNS": "120", "SCHEMATHESIS_HOOKS": "imagineer.fuzzing_hooks",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(BASE_DIR),
                                                       os.environ.get("PYTHONPATH")]))}
    if lora_file:
        env["IMAGINEER_FUZZ_LORA"] = str(lora_file)
    run = subprocess.run(command, cwd=out_dir, capture_output=True, text=True,  # noqa: S603 (schemathesis from this interpreter, our arguments)
                         env=env)
    result = Result(label=label, seconds=time.monotonic() - started,
                    output=run.stdout + run.stderr)
    (out_dir / f"{label}.txt").write_text(result.output)
    statuses = server.requests_since(offset)
    result.requests = len(statuses)
    result.server_errors = sum(status >= 500 and status != 503 for status in statuses)
    result.documented_503s = statuses.count(503)
    if not report.exists():
        result.stop_reason = f"no report (exit {run.returncode})"
        result.other_failures = 1
        return result
    data = json.loads(report.read_text())
    result.operations = data["operations"]["tested"]
    result.examples = data["test_cases"]["generated"]
    result.stop_reason = data["stop_reason"]
    for failure in data["failures"]:
        result.failures[f"{failure['code']} {failure['title']}"] = failure["count"]
        if failure["type"] in SCHEMA_FAILURES:
            result.schema_violations += failure["count"]
        elif failure["type"] not in SERVER_FAILURES:
            result.other_failures += failure["count"]
    result.other_failures += len(data["errors"])
    # A 5xx the access log shows is counted there; one only schemathesis saw counts too.
    result.server_errors = max(result.server_errors, sum(
        failure["count"] for failure in data["failures"] if failure["type"] in SERVER_FAILURES))
    return result


TABLE_HEADERS = ["token", "operations fuzzed", "examples sent", "requests served",
                 "5xx answers", "documented 503s", "schema violations", "other failures",
                 "seconds"]


def table_rows(results):
    return [[result.label, result.operations, result.examples, result.requests,
             result.server_errors, result.documented_503s, result.schema_violations,
             result.other_failures, round(result.seconds)] for result in results]
