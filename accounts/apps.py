from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self):
        from core import collector

        from . import roles, signals  # noqa: F401  (connects the signal handlers)

        # Each app's permissions are created in its own post_migrate, after our data
        # migration ran: attach them to the roles as each app finishes migrating.
        post_migrate.connect(roles.sync_roles_after_migrate, dispatch_uid="sync_roles")
        # The web process's start-up objects, frozen after its first request (core.collector).
        collector.connect()
