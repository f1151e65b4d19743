import json

from django.db import migrations
from django.db.models import Count


def count_existing_runs(apps, schema_editor):
    """Start the total of ended training runs (/metrics) from the runs there are."""
    TrainingRun = apps.get_model("training", "TrainingRun")
    Counter = apps.get_model("generation", "Counter")
    ended = (TrainingRun.objects.filter(status__in=["succeeded", "failed", "cancelled"])
             .values_list("status").annotate(n=Count("id")).order_by())
    Counter.objects.bulk_create(
        Counter(name="training_runs_finished", labels=json.dumps({"status": status}), value=n)
        for status, n in ended
    )


class Migration(migrations.Migration):

    dependencies = [
        ("training", "0002_housekeeping_schedule"),
        ("generation", "0006_counter"),
    ]

    operations = [migrations.RunPython(count_existing_runs, migrations.RunPython.noop)]
