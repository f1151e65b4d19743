"""allauth adapters: how sign-in through another provider behaves here."""

from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp
from django.http import Http404


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def get_app(self, request, provider, client_id=None):
        # The provider's URLs exist whether or not it is configured (GOOGLE_CLIENT_ID):
        # while it is not, they are missing pages, not server errors.
        try:
            return super().get_app(request, provider, client_id)
        except SocialApp.DoesNotExist:
            raise Http404(f"Sign-in with {provider} is not configured.") from None
