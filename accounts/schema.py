"""The OpenAPI declaration of the token API (api.py). imagineer/urls.py imports it with the
views."""

from drf_spectacular.utils import extend_schema

from core.api import document, errors, example

from .api import BAD_CREDENTIALS, TokenRequestSerializer, TokenSerializer, obtain_token

document(obtain_token, post=extend_schema(
    summary="Get an API token with a password",
    tags=["token"],
    request=TokenRequestSerializer,
    responses={200: TokenSerializer,
               **errors(400, examples={400: {"non_field_errors": [BAD_CREDENTIALS]}})},
    description="With email verification mandatory, an account whose email address is not "
                "verified gets a 400 saying so, and no token.",
    examples=[
        example("Credentials", {"username": "edith@example.com", "password": "a-long-password"},
                request=True),
        example("Token", {"token": "35e45ee73c1a7e234c4e2cbf6a2a87a7563c4bce"}),
    ],
))
