from django.apps import AppConfig


def _on_worker_spawn(sender, **kwargs):
    # Imported here: the engine (torch) loads in workers, not in the web server.
    from .tasks import on_worker_spawn

    on_worker_spawn(**kwargs)


class GenerationConfig(AppConfig):
    name = "generation"

    def ready(self):
        from django_q.signals import post_spawn

        post_spawn.connect(_on_worker_spawn, dispatch_uid="generation.on_worker_spawn")
