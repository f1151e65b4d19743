from django.apps import AppConfig
from django.db import DatabaseError


def _drop_site_settings_cache(sender, **kwargs):
    # After a migration (new fields) or a flush (tests) the cached row is out of date.
    from .models import SiteSettings

    try:
        SiteSettings.drop_cache()
    except DatabaseError:  # migrated back before the cache table: nothing is cached
        pass


class GenerationConfig(AppConfig):
    name = "generation"

    def ready(self):
        from django.db.models.signals import post_migrate

        from workers import registry

        from . import signals  # noqa: F401  (a job's source deleted: the job fails)

        # Named by path: the engine (torch) loads in workers, not in the web server.
        registry.at_worker_start("generation.tasks.reclaim_stale_jobs")
        registry.at_worker_start("generation.tasks.start_idle_reaper")
        registry.housekeeping("generation.tasks.housekeeping")
        post_migrate.connect(_drop_site_settings_cache, sender=self,
                             dispatch_uid="generation.drop_site_settings_cache")
