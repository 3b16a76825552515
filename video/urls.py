from django.urls import path

from video import views
from video.captions.views import VideoCaptionsView
from video.events.views import VideoJobEventsView
from video.resumable.views import VideoResumableUploadsView, VideoResumableUploadView
from video.search.views import VideoSearchView

urlpatterns = [
    path("upload", views.VideoUploadView.as_view(), name="video-upload"),
    path("search", VideoSearchView.as_view(), name="video-search"),
    path("jobs", views.VideoJobListView.as_view(), name="video-jobs"),
    path("jobs/<uuid:job_id>", views.VideoJobDetailView.as_view(), name="video-job"),
    path("jobs/<uuid:job_id>/frames/<int:index>", views.VideoFrameView.as_view(), name="video-frame"),
    path("jobs/<uuid:job_id>/thumbnail", views.VideoThumbnailView.as_view(), name="video-thumbnail"),
    path("jobs/<uuid:job_id>/storyboard", views.VideoStoryboardView.as_view(), name="video-storyboard"),
    path("jobs/<uuid:job_id>/preview.gif", views.VideoPreviewView.as_view(), name="video-preview"),
    path("uploads/", VideoResumableUploadsView.as_view(), name="video-resumable-uploads"),
    path("uploads/<uuid:upload_id>", VideoResumableUploadView.as_view(), name="video-resumable-upload"),
    path("jobs/<uuid:job_id>/events", VideoJobEventsView.as_view(), name="video-job-events"),
    path("jobs/<uuid:job_id>/captions.vtt", VideoCaptionsView.as_view(), name="video-captions"),
]
