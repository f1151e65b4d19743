"""POST /api/token/: a script trades a username (or email) and password for its API token.

The token page (/account/token/) does the same for a signed-in browser. Credentials go
through django.contrib.auth.authenticate with the request, so every authentication
backend, sign-in throttling included, sees this sign-in like any other. With email
verification mandatory (IMAGINEER_EMAIL_VERIFICATION), an account without a verified
address gets no token, as it could not sign in on the site: anyone can sign up with
somebody else's address.
"""

import logging

from allauth.account import app_settings as allauth_settings
from allauth.account.utils import has_verified_email
from django.contrib.auth import authenticate
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from core.api import RejectUnknownFields

from .middleware import client_address

security_log = logging.getLogger("security")

BAD_CREDENTIALS = "Unable to sign in with that username or email and password."
UNVERIFIED = ("This account's email address is not verified yet: follow the link in the "
              "email sent to it (signing in on the site sends a new one).")


class TokenRequestSerializer(RejectUnknownFields, serializers.Serializer):
    username = serializers.CharField(help_text="The username or the email address.")
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")


@api_view(["POST"])
@authentication_classes([])  # a stale token or a session must not stand in for a password
@permission_classes([AllowAny])
def obtain_token(request):
    """The user's API token, made on first use; the same token while it is not replaced
    or revoked on the API token page."""
    credentials = TokenRequestSerializer(data=request.data)
    credentials.is_valid(raise_exception=True)
    user = authenticate(request=request, **credentials.validated_data)
    if user is None:
        raise serializers.ValidationError({"non_field_errors": [BAD_CREDENTIALS]})
    if (allauth_settings.EMAIL_VERIFICATION == allauth_settings.EmailVerificationMethod.MANDATORY
            and not has_verified_email(user)):
        raise serializers.ValidationError({"non_field_errors": [UNVERIFIED]})
    token, _ = Token.objects.get_or_create(user=user)
    security_log.info(
        "api token obtained",
        extra={"event": "api_token", "user_id": user.pk, "address": client_address(request)},
    )
    return Response(TokenSerializer({"token": token.key}).data)
