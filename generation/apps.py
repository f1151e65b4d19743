from django.apps import AppConfig
from django.db import DatabaseError


def _on_worker_spawn(sender, **kwargs):
    # Imported here: the engine (torch) loads in workers, not in the web server.
    from .tasks import on_worker_spawn

    on_worker_spawn(**kwargs)


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
        from django_q.signals import post_spawn

        post_spawn.connect(_on_worker_spawn, dispatch_uid="generation.on_worker_spawn")
        post_migrate.connect(_drop_site_settings_cache, sender=self,
                             dispatch_uid="generation.drop_site_settings_cache")
