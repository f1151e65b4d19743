from django.urls import path

from . import files

urlpatterns = [
    path("media/images/<int:pk>/", files.image_file, name="image_file"),
    path("media/images/<int:pk>/thumbnail/", files.image_thumbnail, name="image_thumbnail"),
]
