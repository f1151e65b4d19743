from django.db import migrations

NAME = "training housekeeping"


def add_schedule(apps, schema_editor):
    # On the default cluster (cluster=None): the training cluster's one worker may be
    # busy with a run for hours, and the schedule would pile up behind it.
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=NAME,
        defaults={"func": "training.tasks.housekeeping", "schedule_type": "I",
                  "minutes": 1, "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("training", "0001_initial"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(add_schedule, remove_schedule)]
