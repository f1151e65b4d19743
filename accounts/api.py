"""POST /api/token/, /api/me/ and /api/invites/.

GET/PATCH /api/me/: the signed-in user's own profile; PATCH changes their preferences
(today `nsfw_preference`: hide, blur or show images flagged NSFW), the rest is read-only.

POST /api/token/: a script trades a username (or email) and password for its API token.

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
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from core.api import ActionPermission, RejectUnknownFields, router

from .middleware import client_address
from .models import Invite, User

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
        # 401, not 400: the request is well formed (the schema cannot know which passwords
        # are right); the credentials in it are not valid. As for a bad token, with the
        # scheme to use.
        return Response({"detail": BAD_CREDENTIALS}, status=status.HTTP_401_UNAUTHORIZED,
                        headers={"WWW-Authenticate": "Token"})
    if (allauth_settings.EMAIL_VERIFICATION == allauth_settings.EmailVerificationMethod.MANDATORY
            and not has_verified_email(user)):
        raise serializers.ValidationError({"non_field_errors": [UNVERIFIED]})
    token, _ = Token.objects.get_or_create(user=user)
    security_log.info(
        "api token obtained",
        extra={"event": "api_token", "user_id": user.pk, "address": client_address(request)},
    )
    return Response(TokenSerializer({"token": token.key}).data)


# The caller's own profile.


class ProfileSerializer(RejectUnknownFields, serializers.ModelSerializer):
    role = serializers.CharField(read_only=True, help_text="viewer, editor or admin.")
    display_name = serializers.CharField(read_only=True, help_text="How pages name the "
                                         "user to others: the full name, else the username.")

    class Meta:
        model = User
        fields = ["id", "username", "email", "display_name", "role", "nsfw_preference"]
        read_only_fields = ["id", "username", "email", "display_name", "role"]


class ProfileViewSet(viewsets.GenericViewSet):
    """/api/me/: the caller's own profile (never anybody else's: there is no id to change);
    PATCH sets `nsfw_preference`."""

    permission_classes = [IsAuthenticated]
    serializer_class = ProfileSerializer

    def retrieve(self, request):
        return Response(ProfileSerializer(request.user).data)

    def partial_update(self, request):
        serializer = ProfileSerializer(request.user, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)


me = ProfileViewSet.as_view({"get": "retrieve", "patch": "partial_update"})


# Invites: admins invite people by email while sign-up is by invitation (IMAGINEER_SIGNUP).


class InviteSerializer(RejectUnknownFields, serializers.ModelSerializer):
    # null: an invite not yet accepted, or whose inviter's account is gone.
    invited_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                              allow_null=True)
    accepted_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                               allow_null=True)
    accepted_at = serializers.DateTimeField(read_only=True, allow_null=True)
    status = serializers.CharField(read_only=True,
                                   help_text="pending, accepted or expired.")

    class Meta:
        model = Invite
        fields = ["id", "email", "status", "invited_by", "created_at", "expires_at",
                  "accepted_at", "accepted_by"]
        read_only_fields = ["invited_by", "created_at", "expires_at", "accepted_at",
                            "accepted_by"]


class SentInviteSerializer(InviteSerializer):
    link = serializers.SerializerMethodField(help_text="The invite link, sent by email; "
                                             "shown this once (only its hash is kept).")

    class Meta(InviteSerializer.Meta):
        fields = [*InviteSerializer.Meta.fields, "link"]

    def get_link(self, invite) -> str:
        return self.context["link"]


class InviteViewSet(mixins.CreateModelMixin, mixins.DestroyModelMixin,
                    viewsets.ReadOnlyModelViewSet):
    """Admins only: list, invite (the link is emailed, and answered once), revoke (delete a
    pending invite)."""

    queryset = Invite.objects.select_related("invited_by", "accepted_by")
    serializer_class = InviteSerializer
    permission_classes = [ActionPermission]
    action_permissions = {
        "list": ["accounts.view_invite"],
        "retrieve": ["accounts.view_invite"],
        "create": ["accounts.add_invite"],
        "destroy": ["accounts.delete_invite"],
    }

    def create(self, request, *args, **kwargs):
        serializer = InviteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invite, key = Invite.create(serializer.validated_data["email"], by=request.user)
        link = Invite.link(request, key)
        invite.send(link)
        return Response(SentInviteSerializer(invite, context={"link": link}).data,
                        status=status.HTTP_201_CREATED)


router.register("invites", InviteViewSet, basename="invite")
