"""Monitoring: the `monitoring` profile of docker-compose.yml (Prometheus and Grafana), the
scrape as its Prometheus config makes it against a real gunicorn, and the Grafana
dashboard's queries against the names the real /metrics exports."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from generation.models import Job, ModelVersion, Status
from imagineer.testing import subprocess_env, wait_for
from imagineer.tests.test_deploy_files import (  # noqa: F401 (project: a fixture)
    REQUIRED,
    answers,
    free_port,
    project,
    resolved,
)

# Backend-neutral (conftest.py): the monitoring files and metric names; the figures are
# test_metrics.py's.
pytestmark = pytest.mark.backend_neutral

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "imagineer.json"
TOKEN = "a-metrics-token-for-the-monitoring-tests"  # noqa: S105 (a test's metrics token)


@pytest.fixture(scope="module")
def services(request):
    """docker-compose.yml as docker-compose resolves it (test_deploy_files' `project`)."""
    return resolved(request.getfixturevalue("project"))


def repository_path(compose_path):
    """A bind mount's source as docker-compose resolved it (./deploy/... in the test's
    copy of the project), as a path of the repository."""
    return DEPLOY / compose_path.split("/deploy/", 1)[1]


def test_it_runs_prometheus_and_grafana_only_with_the_monitoring_profile(services):
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"], name
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"]), name
        assert "no-new-privileges:true" in services[name]["security_opt"], name
    assert all("profiles" not in services[name] for name in ("db", "web", "worker", "trainer"))

    prometheus = services["prometheus"]
    mounted = {target: source for source, target, *_ in
               (volume.split(":") for volume in prometheus["volumes"])}
    config_file = repository_path(mounted["/etc/prometheus/prometheus.yml"])
    assert config_file == DEPLOY / "prometheus" / "prometheus.yml"
    config = yaml.safe_load(config_file.read_text())
    (job,) = config["scrape_configs"]
    # The token file Prometheus reads is the one its entrypoint writes from .env's token.
    assert job["authorization"]["credentials_file"] in " ".join(prometheus["entrypoint"])
    assert "IMAGINEER_METRICS_TOKEN" in prometheus["environment"]
    ((target,),) = [group["targets"] for group in job["static_configs"]]
    host, port = target.split(":")
    assert host in services and f"{port}" in " ".join(services[host]["ports"])
    assert host in services[host]["environment"]["DJANGO_ALLOWED_HOSTS"].split(",")
    assert job["metrics_path"] == "/metrics"

    grafana = services["grafana"]
    mounted = {target: repository_path(source) for source, target, *_ in
               (volume.split(":") for volume in grafana["volumes"]) if source.startswith("/")}
    provisioning = mounted["/etc/grafana/provisioning"]
    assert provisioning == DEPLOY / "grafana" / "provisioning"
    (source,) = yaml.safe_load(
        (provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load(
        (provisioning / "dashboards" / "imagineer.yml").read_text())["providers"]
    assert mounted[provider["options"]["path"]] == DASHBOARD.parent


def test_it_serves_metrics_to_prometheus_as_its_config_scrapes_them(db, services, tmp_path):
    """Production settings as the web service gets them, and the request Prometheus makes
    from deploy/prometheus/prometheus.yml: plain HTTP on the Compose network, the Host
    it names the service by, the bearer token."""
    (job,) = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())[
        "scrape_configs"]
    ((target,),) = [group["targets"] for group in job["static_configs"]]
    web = services["web"]["environment"]
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 (gunicorn from this interpreter)
        [sys.executable, "-m", "gunicorn", "imagineer.wsgi", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env=subprocess_env(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=REQUIRED["DJANGO_SECRET_KEY"],
                           DJANGO_ALLOWED_HOSTS=web["DJANGO_ALLOWED_HOSTS"],
                           DJANGO_BEHIND_TLS_PROXY="1", IMAGINEER_PROXY_COUNT="1",
                           IMAGINEER_METRICS_TOKEN=TOKEN,
                           HOME=str(tmp_path)),
    )
    try:
        wait_for(lambda: answers(port) or server.poll() is not None, timeout=30,
                 message="gunicorn")
        assert server.poll() is None, server.stderr.read()
        url = f"{job['scheme']}://127.0.0.1:{port}{job['metrics_path']}"
        scrape = requests.get(url, allow_redirects=False, timeout=30, headers={
            "Host": target, "Authorization": f"{job['authorization']['type']} {TOKEN}"})
        assert scrape.status_code == 200, scrape.text[:500]
        names = {family.name for family in text_string_to_metric_families(scrape.text)}
        assert "imagineer_queue_depth" in names
        # Everything else still goes to HTTPS; and no token, no figures.
        page = requests.get(f"http://127.0.0.1:{port}/api/health/", allow_redirects=False,
                            headers={"Host": target}, timeout=30)
        assert page.status_code == 301 and page.headers["Location"].startswith("https://")
        assert requests.get(url, headers={"Host": target}, timeout=30).status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)


# PromQL words that are not metric names: aggregations, functions' keywords, modifiers.
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                "or", "unless", "offset"}


def metric_names(expr):
    """The metric names a PromQL expression selects: what is left once strings, label
    matchers, ranges, grouping lists, function names and keywords are taken out."""
    bare = re.sub(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]', " ", expr)
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", bare):
        is_function = bare[match.end():].lstrip().startswith("(")
        if not is_function and match.group() not in PROMQL_WORDS:
            names.add(match.group())
    return names


def dashboard_queries():
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"]
            for target in panel["targets"]]


def exported_names(client, settings, api_as, viewer):
    """The sample names the real /metrics exports once there is something to count."""
    from django.utils import timezone

    from albums.models import Album
    from training.models import TrainingRun

    model = ModelVersion.objects.create(name="m", kind="base", source="m")
    model.make_default()
    job = Job.create_from({"prompt": "p", "negative_prompt": "", "model": model, "width": 64,
                           "height": 64, "steps": 1, "guidance_scale": 5.0, "seed": 1,
                           "scheduler": "pndm", "num_images": 1, "loras": []}, owner=viewer)
    job.start("elsewhere:1")
    job.fail(OSError("disk full"))
    assert Job.objects.get().status == Status.FAILED
    run = TrainingRun.objects.create(name="r", album=Album.objects.create(name="a", owner=viewer),
                                     base_model=model, owner=viewer, started_at=timezone.now())
    run.cancel()
    assert api_as(viewer).post("/api/jobs/", {"prompt": ""}, format="json").status_code == 400
    settings.IMAGINEER_METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    return {sample.name for family in text_string_to_metric_families(response.content.decode())
            for sample in family.samples}


@pytest.mark.django_db
def test_it_shows_on_the_dashboard_only_metrics_that_metrics_exports(client, settings, api_as,
                                                                     viewer):
    exported = exported_names(client, settings, api_as, viewer)
    queries = dashboard_queries()
    assert queries
    for title, expr in queries:
        names = metric_names(expr)
        assert names, (title, expr)
        assert names <= exported, (title, expr, names - exported)
    # What the dashboard is for: queue depth, throughput, duration percentiles, failures by
    # type, workers alive, training runs.
    used = {name for _, expr in queries for name in metric_names(expr)}
    assert {"imagineer_queue_depth", "imagineer_jobs_finished_total",
            "imagineer_job_duration_seconds_bucket", "imagineer_generation_errors_total",
            "imagineer_workers_alive", "imagineer_training_runs_active",
            "imagineer_training_runs_finished_total", "imagineer_jobs_rejected_total"} <= used
    assert any("histogram_quantile" in expr for _, expr in queries)
    assert any("error_type" in expr for _, expr in queries)


def test_it_reads_the_metric_names_of_a_promql_expression():
    assert metric_names('histogram_quantile(0.9, sum by (le) (rate(imagineer_job_duration_'
                        'seconds_bucket{status="succeeded"}[$__rate_interval])))') \
        == {"imagineer_job_duration_seconds_bucket"}
    assert metric_names("sum by (status) (rate(imagineer_jobs_finished_total[5m])) * 60") \
        == {"imagineer_jobs_finished_total"}
    assert metric_names('up{job="imagineer"} + imagineer_queue_depth') \
        == {"up", "imagineer_queue_depth"}
    assert metric_names("rate(node_cpu_seconds_total[1m])") == {"node_cpu_seconds_total"}


def test_it_keeps_the_dashboard_on_its_data_source_variable():
    dashboard = json.loads(DASHBOARD.read_text())
    (variable,) = dashboard["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource", "datasource", "prometheus")
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert all(target["datasource"] == panel["datasource"] for target in panel["targets"])
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
