"""One housekeeping schedule for every app (workers.registry.run_housekeeping runs the
steps each app registers) instead of one per app: generation's and training's go."""

from django.db import migrations

NAME = "housekeeping"
# The schedules this one replaces (generation 0002, training 0002): name -> function.
REPLACED = {"generation housekeeping": "generation.tasks.housekeeping",
            "training housekeeping": "training.tasks.housekeeping"}


def every_minute(Schedule, name, func):
    # On the default cluster (cluster=None): the training cluster's one worker may be
    # busy with a run for hours, and the schedule would pile up behind it.
    Schedule.objects.update_or_create(
        name=name, defaults={"func": func, "schedule_type": "I", "minutes": 1,
                             "repeats": -1})


def one_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name__in=REPLACED).delete()
    every_minute(Schedule, NAME, "workers.registry.run_housekeeping")


def one_per_app(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name=NAME).delete()
    for name, func in REPLACED.items():
        every_minute(Schedule, name, func)


class Migration(migrations.Migration):
    dependencies = [
        ("workers", "0001_initial"),
        ("generation", "0002_housekeeping_schedule"),
        ("training", "0002_housekeeping_schedule"),
    ]
    operations = [migrations.RunPython(one_schedule, one_per_app)]
