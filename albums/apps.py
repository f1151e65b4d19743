from django.apps import AppConfig


class AlbumsConfig(AppConfig):
    name = "albums"
    verbose_name = "Images and albums"

    def ready(self):
        from workers import registry

        from . import signals  # noqa: F401  (connects the signal handlers)

        registry.at_worker_start("albums.tasks.reclaim_stale_caption_runs")
        registry.housekeeping("albums.tasks.reclaim_stale_caption_runs")
