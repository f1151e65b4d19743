from django.apps import AppConfig


def _on_worker_spawn(sender, **kwargs):
    # Imported here: the engine (torch) loads in workers, not in the web server.
    from .tasks import on_worker_spawn

    on_worker_spawn(**kwargs)


class GenerationConfig(AppConfig):
    name = "generation"

    def ready(self):
        from django_q.signals import post_spawn

        from imagineer.workers import start_worker_heartbeat

        # Every worker process of every cluster (training's too) records its heartbeat.
        post_spawn.connect(start_worker_heartbeat, dispatch_uid="generation.worker_heartbeat")
        post_spawn.connect(_on_worker_spawn, dispatch_uid="generation.on_worker_spawn")
