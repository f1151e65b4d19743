"""URLs of the gallery pages (views.py) and of the image files (files.py). The API's
routes, captioning included, are the router's (api.py)."""

from django.urls import path

from . import files, views

urlpatterns = [
    path("albums/", views.album_list, name="album_list"),
    path("albums/<slug:slug>/", views.album_detail, name="album_detail"),
    path("albums/<slug:slug>/upload/", views.album_upload, name="album_upload"),
    path("albums/<slug:slug>/caption/", views.album_caption, name="album_caption"),
    path("scrape/", views.scrape_list, name="scrape_list"),
    path("scrape/<int:pk>/", views.scrape_detail, name="scrape_detail"),
    path("scrape/<int:pk>/cancel/", views.scrape_cancel, name="scrape_cancel"),
    path("images/<int:pk>/", views.image_detail, name="image_detail"),
    path("images/<int:pk>/albums/", views.image_add_to_album, name="image_add_to_album"),
    path("media/images/<int:pk>/", files.image_file, name="image_file"),
    path("media/images/<int:pk>/thumbnail/", files.image_thumbnail, name="image_thumbnail"),
]
