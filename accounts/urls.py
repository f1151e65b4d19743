from django.urls import path

from . import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path("account/settings/", views.account_settings, name="account_settings"),
    path("account/token/", views.api_token, name="api_token"),
    path("api/token/", api.obtain_token, name="api_obtain_token"),
    path("api/me/", api.me, name="api_me"),
    path("accounts/invite/<str:key>/", views.accept_invite, name="accept_invite"),
]
