from django.urls import path

from . import views

urlpatterns = [
    path("albums/<slug:slug>/train/", views.album_train, name="album_train"),
    path("training/", views.run_list, name="training_list"),
    path("training/<int:pk>/", views.run_detail, name="training_detail"),
    path("training/<int:pk>/status/", views.run_status, name="training_status"),
    path("training/<int:pk>/cancel/", views.run_cancel, name="training_cancel"),
    path("training/<int:pk>/retry/", views.run_retry, name="training_retry"),
    path("training/<int:pk>/kohya.safetensors", views.run_kohya, name="training_kohya"),
]
