"""Input and output of `POST /api/video/search`."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from video.search.moments import Moment

MAX_QUERY_CHARS = 1000
MAX_LIMIT = 50


class VideoSearchInputSerializer(serializers.Serializer):
    query = serializers.CharField(max_length=MAX_QUERY_CHARS, help_text="What was said or shown, in any words.")
    limit = serializers.IntegerField(default=10, min_value=1, max_value=MAX_LIMIT)
    job_id = serializers.UUIDField(required=False, allow_null=True, default=None, help_text="Only this video.")


class VideoMomentSerializer(serializers.Serializer):
    job_id = serializers.UUIDField()
    start = serializers.FloatField(help_text="Seconds into the video.")
    end = serializers.FloatField()
    text = serializers.CharField(help_text="What is said (captions) or shown (on-screen text) then.")
    score = serializers.FloatField(help_text="Cosine similarity to the query, higher is closer.")
    origin = serializers.ChoiceField(
        choices=["captions", "screen"], source="source", help_text="Where the text was found: spoken or on screen."
    )
    thumbnail_url = serializers.SerializerMethodField()

    def get_thumbnail_url(self, moment: Moment) -> str:
        path = reverse("video-thumbnail", kwargs={"job_id": moment.job_id}) + f"?timestamp={moment.start:g}"
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class VideoSearchResultSerializer(serializers.Serializer):
    moments = VideoMomentSerializer(many=True, help_text="Best first.")
