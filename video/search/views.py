"""`POST /api/video/search`: moments inside the user's videos, best first."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import request_user
from core import ratelimit
from core.api.envelope import counted, ok
from video.search import examples
from video.search.moments import video_moments_search
from video.search.serializers import VideoSearchInputSerializer, VideoSearchResultSerializer


class VideoSearchView(APIView):
    rate_category = ratelimit.AI

    @extend_schema(
        tags=["video"],
        request=VideoSearchInputSerializer,
        responses={200: VideoSearchResultSerializer, **examples.ERRORS},
        examples=[examples.SEARCH_REQUEST, examples.SEARCH_ONE_VIDEO, examples.FOUND],
    )
    def post(self, request: Request) -> Response:
        query = VideoSearchInputSerializer(data=request.data)
        query.is_valid(raise_exception=True)
        found = video_moments_search(user=request_user(request), **query.validated_data)
        body = VideoSearchResultSerializer(found, context={"request": request}).data
        return ok(body, message=f"Found {counted(len(found.moments), 'moment')}")
