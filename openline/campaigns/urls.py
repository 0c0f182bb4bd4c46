from __future__ import annotations

from django.urls import URLPattern, path

from openline.campaigns import views

app_name = "campaigns"

urlpatterns: list[URLPattern] = [
    path("", views.broadcast_list, name="list"),
    path("new", views.broadcast_new, name="new"),
    path("<int:broadcast_id>/", views.broadcast_detail, name="detail"),
    path("<int:broadcast_id>/people", views.broadcast_people, name="people"),
    path("<int:broadcast_id>/send", views.broadcast_send, name="send"),
    path("<int:broadcast_id>/save-audience", views.segment_save_view, name="save_segment"),
    path("segments/<int:segment_id>/delete", views.segment_delete_view, name="segment_delete"),
    path("<int:broadcast_id>/progress", views.broadcast_progress_part, name="progress"),
    path("<int:broadcast_id>/log.csv", views.broadcast_log_csv, name="log_csv"),
    path("recordings", views.recording_upload, name="recording_upload"),
    # Public: the provider fetches a call's recording here (voice.recording_url).
    path(
        "recordings/<slug:token>.wav",
        views.recording_audio,
        {"extension": "wav"},
        name="recording_wav",
    ),
    path(
        "recordings/<slug:token>.mp3",
        views.recording_audio,
        {"extension": "mp3"},
        name="recording_mp3",
    ),
    # pause, resume, cancel
    path("<int:broadcast_id>/<slug:action>", views.broadcast_control, name="control"),
]
