from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("account/token/", views.api_token, name="api_token"),
]
