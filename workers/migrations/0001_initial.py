"""WorkerHeartbeat, moved here from generation: the table generation 0004 made is renamed,
so the rows of an existing database stay, and so do its permissions (content type)."""

import django.utils.timezone
from django.db import migrations, models

RENAME = "ALTER TABLE generation_workerheartbeat RENAME TO workers_workerheartbeat"
RENAME_BACK = "ALTER TABLE workers_workerheartbeat RENAME TO generation_workerheartbeat"


def move_content_type(apps, schema_editor, old="generation", new="workers"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label=new, model="workerheartbeat").exists():
        ContentType.objects.filter(app_label=old, model="workerheartbeat").update(app_label=new)


def move_content_type_back(apps, schema_editor):
    move_content_type(apps, schema_editor, old="workers", new="generation")


class Migration(migrations.Migration):

    initial = True

    # History only: the table was made by generation, whose code no longer holds the model.
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("generation", "0004_worker_heartbeat_job_error_type"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="WorkerHeartbeat",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                                   serialize=False, verbose_name="ID")),
                        ("name", models.CharField(help_text="host:pid", max_length=200,
                                                  unique=True)),
                        ("cluster", models.CharField(
                            help_text="The django-q2 cluster it serves.", max_length=100)),
                        ("host", models.CharField(max_length=200)),
                        ("pid", models.PositiveIntegerField()),
                        ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("last_seen", models.DateTimeField(db_index=True,
                                                           default=django.utils.timezone.now)),
                    ],
                    options={"ordering": ["cluster", "name"]},
                ),
            ],
            database_operations=[migrations.RunSQL(RENAME, RENAME_BACK)],
        ),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]
