from django.apps import AppConfig


def _delete_run_files(sender, instance, **kwargs):
    """A deleted run takes its kohya file and its folder (checkpoints) along."""
    if instance.kohya_file:
        instance.kohya_file.delete(save=False)
    instance.delete_files()


class TrainingConfig(AppConfig):
    name = "training"

    def ready(self):
        from django.db.models.signals import post_delete

        from workers import registry

        registry.at_worker_start("training.tasks.reclaim_stale_runs")
        registry.housekeeping("training.tasks.housekeeping")
        post_delete.connect(_delete_run_files, sender="training.TrainingRun",
                            dispatch_uid="training.delete_run_files")
