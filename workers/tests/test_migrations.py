"""WorkerHeartbeat moved from generation to workers: an existing database keeps its rows."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("generation", "0004_worker_heartbeat_job_error_type"), ("workers", None)]


@pytest.mark.django_db(transaction=True)
def test_it_keeps_the_heartbeats_of_a_database_made_before_the_move():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    state = executor.loader.project_state([BEFORE[0]])
    old = state.apps.get_model("generation", "WorkerHeartbeat")
    old.objects.create(name="gpu1:42", cluster="imagineer", host="gpu1", pid=42)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    from workers.models import WorkerHeartbeat

    assert list(WorkerHeartbeat.objects.values_list("name", "cluster")) == [
        ("gpu1:42", "imagineer")]
    assert "generation_workerheartbeat" not in connection.introspection.table_names()
