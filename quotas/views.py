"""`/api/user/quota` and `/api/user/usage-stats`."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.envelope import ok
from core.api.users import authenticated_user
from quotas import openapi_examples as examples
from quotas.selectors import quota_summary, usage_stats
from quotas.serializers import QuotaSerializer, UsageStatsSerializer


class QuotaView(APIView):
    @extend_schema(tags=["user"], responses={200: QuotaSerializer}, examples=[examples.QUOTA])
    def get(self, request: Request) -> Response:
        return ok(QuotaSerializer(quota_summary(user=authenticated_user(request))).data)


class UsageStatsView(APIView):
    @extend_schema(tags=["user"], responses={200: UsageStatsSerializer}, examples=[examples.USAGE_STATS])
    def get(self, request: Request) -> Response:
        return ok(UsageStatsSerializer(usage_stats(user=authenticated_user(request))).data)
