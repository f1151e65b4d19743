import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.adapters import neutral_username
from accounts.roles import ADMIN, set_role, sync_roles


class Command(BaseCommand):
    help = (
        "Create an admin account if none exists. Takes IMAGINEER_ADMIN_EMAIL and "
        "IMAGINEER_ADMIN_PASSWORD from the environment, or makes a password and prints it once."
    )

    def handle(self, *args, **options):
        import os

        User = get_user_model()
        if User.objects.filter(groups__name=ADMIN).exists() or User.objects.filter(
            is_superuser=True
        ).exists():
            self.stdout.write("An admin account exists already.")
            return
        email = os.environ.get("IMAGINEER_ADMIN_EMAIL") or "admin@example.com"
        password = os.environ.get("IMAGINEER_ADMIN_PASSWORD")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        with transaction.atomic():
            sync_roles()
            # Not the email's local part: pages show usernames to other users.
            taken = User.objects.filter(username__iexact="admin").exists()
            user = User.objects.create_superuser(
                username=neutral_username() if taken else "admin", email=email,
                password=password,
            )
            set_role(user, ADMIN)
            from allauth.account.models import EmailAddress

            EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
        self.stdout.write(self.style.SUCCESS(f"Created the admin account {email}."))
        if generated:
            self.stdout.write(f"  email:    {email}\n  password: {password}\n"
                              "  (shown once; change it after signing in)")
