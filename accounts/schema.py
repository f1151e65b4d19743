"""The OpenAPI declaration of the token, profile and invite APIs (api.py). imagineer/urls.py
imports it with the views."""

from drf_spectacular.utils import extend_schema

from core.api import CONFLICT_IN_REQUEST, document, errors, example

from .api import (
    BAD_CREDENTIALS,
    UNVERIFIED,
    InviteSerializer,
    InviteViewSet,
    ProfileSerializer,
    ProfileViewSet,
    SentInviteSerializer,
    TokenRequestSerializer,
    TokenSerializer,
    obtain_token,
)

document(obtain_token, post=extend_schema(
    summary="Get an API token with a password",
    tags=["token"],
    request=TokenRequestSerializer,
    responses={200: TokenSerializer,
               **errors(400, 401, examples={400: {"non_field_errors": [UNVERIFIED]},
                                            401: {"detail": BAD_CREDENTIALS}})},
    description="A wrong username or password answers 401. With email verification "
                "mandatory, an account whose email address is not verified gets a 400 "
                "saying so, and no token.",
    examples=[
        example("Credentials", {"username": "edith@example.com", "password": "a-long-password"},
                request=True),
        example("Token", {"token": "35e45ee73c1a7e234c4e2cbf6a2a87a7563c4bce"}),
    ],
))


PROFILE = {"id": 3, "username": "vera", "email": "vera@example.com", "display_name": "Vera",
           "role": "viewer", "nsfw_preference": "blur"}

document(
    ProfileViewSet,
    retrieve=extend_schema(
        operation_id="me_retrieve",
        summary="Your own profile",
        tags=["me"],
        description="The signed-in user's own account: never anybody else's.",
        responses={200: ProfileSerializer, **errors(401)},
        examples=[example("Profile", PROFILE)],
    ),
    partial_update=extend_schema(
        operation_id="me_partial_update",
        summary="Change your preferences",
        tags=["me"],
        description="`nsfw_preference`: how images flagged NSFW reach you. `hide` leaves "
                    "them out of the image lists, album pages and search (an image asked "
                    "for by its id still answers); `blur` (the default) blurs them on the "
                    "pages until clicked; `show` shows them. The other fields are "
                    "read-only: sending one is a 400 naming it.",
        request=ProfileSerializer,
        responses={200: ProfileSerializer, **errors(400, 401, examples={
            400: {"nsfw_preference": ['"maybe" is not a valid choice.']}})},
        examples=[example("Hide NSFW images", {"nsfw_preference": "hide"}, request=True),
                  example("Profile", {**PROFILE, "nsfw_preference": "hide"})],
    ),
)


INVITE = {"id": 4, "email": "new@example.com", "status": "pending", "invited_by": "admin",
          "created_at": "2026-11-27T10:00:00Z", "expires_at": "2026-12-04T10:00:00Z",
          "accepted_at": None, "accepted_by": None}

document(
    InviteViewSet,
    list=extend_schema(
        summary="List invites",
        tags=["invites"],
        description="Admins only. Every invite, newest first, with its status: pending, "
                    "accepted or expired.",
        responses={200: InviteSerializer(many=True), **errors(401, 403)},
        examples=[example("Invites", [INVITE])],
    ),
    create=extend_schema(
        summary="Invite someone by email",
        tags=["invites"],
        description="Admins only, for IMAGINEER_SIGNUP=invite. Emails an invite link to the "
                    "address, which may sign up from it once, with that address, until "
                    "`expires_at` (IMAGINEER_INVITE_DAYS). The answer holds the link this "
                    "once: only a hash of its key is kept.",
        request=InviteSerializer,
        responses={201: SentInviteSerializer, **errors(400, 401, 403, 409, examples={
            400: {"email": ["Enter a valid email address."]},
            409: {"detail": CONFLICT_IN_REQUEST,
                  "email": ["new@example.com has an account already."]}})},
        examples=[example("Address", {"email": "new@example.com"}, request=True),
                  example("Sent", {**INVITE, "link": "https://imagineer.example.com/accounts/"
                                                     "invite/q8P2Vd1fX0.../"})],
    ),
    retrieve=extend_schema(
        summary="Get an invite",
        tags=["invites"],
        description="Admins only.",
        responses={200: InviteSerializer, **errors(401, 403, 404, missing="Invite")},
        examples=[example("Invite", INVITE)],
    ),
    destroy=extend_schema(
        summary="Revoke an invite",
        tags=["invites"],
        description="Admins only. Deleting a pending invite makes its link useless.",
        responses={204: None, **errors(401, 403, 404, missing="Invite")},
    ),
)
