"""The deployment files: docker-compose.yml as Debian's docker-compose resolves it (with the
override files of docs/deploy.md), the Dockerfile as Docker's own parser reads it, and the
image's HEALTHCHECK run against a real gunicorn."""

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import dockerfile
import pytest
import yaml

from imagineer.testing import subprocess_env, wait_for

# Backend-neutral (conftest.py): the deployment files.
pytestmark = pytest.mark.backend_neutral

ROOT = Path(__file__).resolve().parent.parent.parent
BUILT = {"web", "worker", "trainer"}  # the services built from our Dockerfile
# What compose requires (docker-compose.yml refuses to start without these).
REQUIRED = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DATABASE_URL": "postgres://imagineer:pw@db:5432/imagineer",
    "POSTGRES_PASSWORD": "pw",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project folder with a copy of docker-compose.yml and its own .env, so that a .env
    of the checkout plays no part."""
    if not shutil.which("docker-compose"):
        pytest.fail("docker-compose is not installed: `make test` installs it with apt")
    folder = tmp_path_factory.mktemp("compose")
    shutil.copy(ROOT / "docker-compose.yml", folder / "docker-compose.yml")
    (folder / ".env").write_text("DJANGO_ALLOWED_HOSTS=imagineer.example.com\n")
    return folder


def compose_config(project, *overrides, **env):
    files = ["-f", "docker-compose.yml"]
    for name in overrides:
        files += ["-f", name]
    return subprocess.run(  # noqa: S603 (docker-compose config, an argument list)
        ["docker-compose", *files, "config"], cwd=project, capture_output=True, text=True,  # noqa: S607 (Debian's docker-compose from PATH)
        env={"PATH": os.environ["PATH"], "HOME": str(project), **env}, timeout=60,
    )


def resolved(project, *overrides):
    result = compose_config(project, *overrides, **REQUIRED)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


@pytest.fixture(scope="module")
def services(project):
    return resolved(project)


def mounts(service):
    return {volume.split(":")[1] for volume in service["volumes"]}


def test_it_hardens_every_service_built_from_the_dockerfile(services):
    assert {name for name, service in services.items() if "build" in service} == BUILT
    for name in BUILT:
        service = services[name]
        assert service["user"] == "1000:1000", name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["cap_drop"] == ["ALL"], name
        assert service["read_only"] is True, name
        assert "/tmp" in service["tmpfs"], name  # noqa: S108 (the container's tmpfs mount, no file)
        assert "container_name" not in service, name  # --scale needs the names free
        env = service["environment"]
        assert env["DJANGO_DEBUG"] == "0", name
        assert env["DJANGO_SECRET_KEY"] == REQUIRED["DJANGO_SECRET_KEY"], name
        # Everything the app writes lands in a volume or the tmpfs, never the read-only root.
        writable = mounts(service) | {"/tmp"}  # noqa: S108 (the container's tmpfs mount, no file)
        for setting in ("IMAGINEER_MEDIA_ROOT", "IMAGINEER_MODEL_DIR", "IMAGINEER_MODEL_CACHE",
                        "HF_HOME", "IMAGINEER_VAR_DIR"):
            assert any(Path(env[setting]).is_relative_to(folder) for folder in writable), \
                (name, setting, env[setting])
        assert "/data/media" in mounts(service), name  # one media volume, shared
    assert Path(services["trainer"]["environment"]["IMAGINEER_TRAINING_DIR"]) in {
        Path(folder) for folder in mounts(services["trainer"])}


def test_it_runs_web_migrate_then_gunicorn_after_a_healthy_database(services):
    web = services["web"]
    command = " ".join(web["command"])
    assert re.search(r"manage\.py migrate --noinput && exec gunicorn imagineer\.wsgi", command)
    assert web["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert all(port.startswith("127.0.0.1:") for port in web["ports"])
    assert "pg_isready" in services["db"]["healthcheck"]["test"]
    assert services["db"]["volumes"]


def test_it_runs_the_workers_on_a_gpu_without_fixed_ports(services):
    for name in ("worker", "trainer"):
        service = services[name]
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}], name
        assert service["environment"]["CUDA_VISIBLE_DEVICES"] == "0", name
        assert service["command"][-1].endswith("exec python manage.py qcluster"), name
        assert "manage.py migrate --check" in service["command"][-1], name
        assert "ports" not in service and "depends_on" not in service, name
        assert service["healthcheck"] == {"test": ["NONE"]}, name  # no HTTP port to ask
    assert services["trainer"]["environment"]["Q_CLUSTER_NAME"] == "training"
    assert "Q_CLUSTER_NAME" not in services["worker"]["environment"]


def test_it_starts_redis_only_with_its_profile(services):
    assert services["redis"]["profiles"] == ["redis"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "profiles" not in services["web"]


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_it_refuses_to_start_without_a_secret_or_the_database(project, missing):
    env = {key: value for key, value in REQUIRED.items() if key != missing}
    result = compose_config(project, **env)
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr


def test_it_accepts_every_override_file_of_the_deploy_guide(project):
    guide = (ROOT / "docs" / "deploy.md").read_text()
    overrides = re.findall(r"```yaml\n(# docker-compose\.override\.yml.*?)```", guide, re.DOTALL)
    assert len(overrides) == 3
    for number, text in enumerate(overrides):
        (project / f"override-{number}.yml").write_text(text)
        services = resolved(project, f"override-{number}.yml")
        if "worker-gpu1" in services:  # one GPU per worker: still hardened, its own GPU
            for name, gpu in (("worker", "0"), ("worker-gpu1", "1"), ("worker-gpu2", "2"),
                              ("trainer", "3")):
                assert services[name]["environment"]["CUDA_VISIBLE_DEVICES"] == gpu
                assert services[name]["read_only"] is True and services[name]["user"] == "1000:1000"
            assert services["worker-gpu1"]["command"] == services["worker"]["command"]


# --- The Dockerfile -----------------------------------------------------------------------

def stages():
    """The Dockerfile's stages, each a list of instructions that starts with its FROM."""
    result = []
    for instruction in dockerfile.parse_file(str(ROOT / "Dockerfile")):
        if instruction.cmd.upper() == "FROM":
            result.append([])
        result[-1].append(instruction)
    return result


def values(stage, command):
    return [instruction.value for instruction in stage if instruction.cmd.upper() == command]


def test_it_builds_a_final_image_from_python_slim_without_build_tools():
    build, final = stages()
    assert build[0].value[1:] == ("AS", "build")
    assert "build-essential" in " ".join(value[0] for value in values(build, "RUN"))
    assert re.fullmatch(r"python:3\.\d+-slim", final[0].value[0])
    runs = " ".join(value[0] for value in values(final, "RUN"))
    assert "apt-get" not in runs
    assert not re.search(r"\b(build-essential|gcc|g\+\+|clang|make|cmake)\b", runs)
    copied = [i for i in final if i.cmd.upper() == "COPY" and "--from=build" in i.flags]
    assert [i.value for i in copied] == [("/opt/venv", "/opt/venv")]


def test_it_runs_as_uid_1000_with_python_settings_and_pinned_torch():
    build, final = stages()
    assert values(final, "USER")[-1][0].split(":")[0] == "1000"
    assert any("useradd --uid 1000" in value[0] for value in values(final, "RUN"))
    env = {value[i]: value[i + 1]
           for value in values(final, "ENV") for i in range(0, len(value), 2)}
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    assert "DJANGO_SECRET_KEY" not in env  # the collectstatic secret lives in one RUN only
    assert any("collectstatic" in value[0] and "DJANGO_SECRET_KEY=" in value[0]
               for value in values(final, "RUN"))
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    torch = next(d for d in pyproject["project"]["dependencies"] if d.startswith("torch"))
    assert any(f"pip install {torch} --index-url" in value[0] for value in values(build, "RUN"))
    assert values(build, "ARG")[0][0].startswith("TORCH_INDEX_URL=")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var", ".env", "media"} <= set(ignored)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_it_reports_health_from_api_health_as_the_image_healthcheck_runs_it(db, tmp_path):
    (healthcheck,) = values(stages()[-1], "HEALTHCHECK")
    kind, python, flag, code = healthcheck
    assert (kind, python, flag) == ("CMD", "python", "-c")
    assert "'/api/health/?only=database,disk'" in code and code.count("8000") == 1
    port = free_port()
    code = code.replace("8000", str(port))
    # Production settings behind the TLS proxy, as docker-compose.yml and docs/deploy.md run it.
    server = subprocess.Popen(  # noqa: S603 (gunicorn from this interpreter)
        [sys.executable, "-m", "gunicorn", "imagineer.wsgi", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env=subprocess_env(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
                           DJANGO_ALLOWED_HOSTS="imagineer.example.com,localhost",
                           DJANGO_BEHIND_TLS_PROXY="1", IMAGINEER_PROXY_COUNT="1",
                           HOME=str(tmp_path)),
    )
    try:
        wait_for(lambda: answers(port) or server.poll() is not None, timeout=30,
                 message="gunicorn")
        assert server.poll() is None, server.stderr.read()

        def check(allowed_hosts):
            return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,  # noqa: S603 (this interpreter on the test's code)
                                  env={"PATH": os.environ["PATH"],
                                       "DJANGO_ALLOWED_HOSTS": allowed_hosts}, timeout=30)

        # No worker runs here: the web container is healthy all the same.
        assert check("imagineer.example.com,localhost").returncode == 0
        assert check(".imagineer.example.com").returncode == 0  # a subdomain wildcard
        assert check("elsewhere.example.com").returncode == 1  # 400: not an allowed host
    finally:
        server.terminate()
        server.wait(timeout=30)
