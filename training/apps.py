from django.apps import AppConfig


def _on_worker_spawn(sender, **kwargs):
    from .tasks import on_worker_spawn

    on_worker_spawn(**kwargs)


def _delete_run_files(sender, instance, **kwargs):
    """A deleted run takes its kohya file and its folder (checkpoints) along."""
    if instance.kohya_file:
        instance.kohya_file.delete(save=False)
    instance.delete_files()


class TrainingConfig(AppConfig):
    name = "training"

    def ready(self):
        from django.db.models.signals import post_delete
        from django_q.signals import post_spawn

        post_spawn.connect(_on_worker_spawn, dispatch_uid="training.on_worker_spawn")
        post_delete.connect(_delete_run_files, sender="training.TrainingRun",
                            dispatch_uid="training.delete_run_files")
