"""WorkerHeartbeat moved to the workers app (its migration 0001 renames the table)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("generation", "0004_worker_heartbeat_job_error_type"),
        ("workers", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="WorkerHeartbeat")],
        ),
    ]
