"""URLs of the gallery pages and the captioning API (albums/pages.py, captioning_api.py)."""

from django.urls import path

from . import captioning_api, pages

urlpatterns = [
    path("albums/", pages.album_list, name="album_list"),
    path("albums/<slug:slug>/", pages.album_detail, name="album_detail"),
    path("albums/<slug:slug>/upload/", pages.album_upload, name="album_upload"),
    path("albums/<slug:slug>/caption/", pages.album_caption, name="album_caption"),
    path("images/<int:pk>/", pages.image_detail, name="image_detail"),
    path("images/<int:pk>/albums/", pages.image_add_to_album, name="image_add_to_album"),
    # Before the API router's include (imagineer/urls.py): albums/ there is a viewset.
    path("api/albums/<int:pk>/caption/", captioning_api.start_album_captioning,
         name="api_album_caption"),
    path("api/caption-runs/<int:pk>/", captioning_api.caption_run, name="api_caption_run"),
]
