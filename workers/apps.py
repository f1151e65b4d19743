from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"

    def ready(self):
        from django_q.signals import post_spawn

        from . import registry
        from .models import WorkerHeartbeat

        # The one post_spawn receiver: it calls the hooks that each app registers.
        post_spawn.connect(registry.worker_started, dispatch_uid="workers.worker_started")
        # Every worker process of every cluster (training's too) records its heartbeat.
        registry.at_worker_start(WorkerHeartbeat.start_beating)
        registry.housekeeping(WorkerHeartbeat.forget_gone)
