from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"

    def ready(self):
        from django_q.signals import post_spawn

        from .leases import start_worker_heartbeat

        # Every worker process of every cluster (training's too) records its heartbeat.
        post_spawn.connect(start_worker_heartbeat, dispatch_uid="workers.worker_heartbeat")
