from django.apps import AppConfig


def _on_worker_spawn(sender, **kwargs):
    from .tasks import on_worker_spawn

    on_worker_spawn(**kwargs)


class AlbumsConfig(AppConfig):
    name = "albums"
    verbose_name = "Images and albums"

    def ready(self):
        from django_q.signals import post_spawn

        from . import signals  # noqa: F401  (connects the signal handlers)

        post_spawn.connect(_on_worker_spawn, dispatch_uid="albums.on_worker_spawn")
