from django.apps import AppConfig


class AlbumsConfig(AppConfig):
    name = "albums"
    verbose_name = "Images and albums"

    def ready(self):
        from . import signals  # noqa: F401  (connects the signal handlers)
