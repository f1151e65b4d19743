from django.apps import AppConfig


def _on_worker_spawn(sender, **kwargs):
    from . import scrape, tasks

    tasks.on_worker_spawn(**kwargs)
    scrape.on_worker_spawn(**kwargs)


def check_scrape_loopback(app_configs, **kwargs):
    """A deploy check: scrape runs may fetch from loopback (a test setting) in production."""
    from django.conf import settings
    from django.core.checks import Warning

    if settings.IMAGINEER_SCRAPE_ALLOW_LOOPBACK:
        return [Warning(
            "IMAGINEER_SCRAPE_ALLOW_LOOPBACK is on: scrape runs may fetch from 127.0.0.1 and "
            "::1, the services of this machine.",
            hint="Turn it off outside the test suite.", id="albums.W001")]
    return []


class AlbumsConfig(AppConfig):
    name = "albums"
    verbose_name = "Images and albums"

    def ready(self):
        from django.core.checks import Tags, register
        from django_q.signals import post_spawn

        from . import signals  # noqa: F401  (connects the signal handlers)

        register(check_scrape_loopback, Tags.security, deploy=True)
        post_spawn.connect(_on_worker_spawn, dispatch_uid="albums.on_worker_spawn")
