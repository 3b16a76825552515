from django.urls import path

from ai_services import views, voice_views

urlpatterns = [
    path("chat", views.ChatView.as_view(), name="ai-chat"),
    path("conversations", views.ConversationListView.as_view(), name="ai-conversations"),
    path("conversations/<uuid:conversation_id>", views.ConversationDetailView.as_view(), name="ai-conversation"),
    path("speech-to-text", views.SpeechToTextView.as_view(), name="ai-speech-to-text"),
    path("text-to-speech", views.TextToSpeechView.as_view(), name="ai-text-to-speech"),
    path("voice", voice_views.VoiceView.as_view(), name="ai-voice"),
    path("voice/audio/<uuid:job_id>", voice_views.VoiceAudioView.as_view(), name="ai-voice-audio"),
    path("analyze-image", views.AnalyzeImageView.as_view(), name="ai-analyze-image"),
    path("jobs", views.JobListView.as_view(), name="ai-jobs"),
    path("jobs/<uuid:job_id>", views.JobDetailView.as_view(), name="ai-job"),
]
