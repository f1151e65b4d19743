from django.apps import AppConfig


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

        from workers import registry

        from . import signals  # noqa: F401  (connects the signal handlers)

        register(check_scrape_loopback, Tags.security, deploy=True)
        registry.at_worker_start("albums.tasks.reclaim_stale_caption_runs")
        registry.housekeeping("albums.tasks.reclaim_stale_caption_runs")
        registry.at_worker_start("albums.scrape.reclaim_stale_scrape_runs")
        registry.housekeeping("albums.scrape.reclaim_stale_scrape_runs")
