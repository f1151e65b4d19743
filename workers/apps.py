from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"

    def ready(self):
        from django_q.signals import post_spawn

        from .models import WorkerHeartbeat

        # Every worker process of every cluster (training's too) records its heartbeat.
        post_spawn.connect(WorkerHeartbeat.start_beating,
                           dispatch_uid="workers.worker_heartbeat")
