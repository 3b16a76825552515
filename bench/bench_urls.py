from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as product_urlpatterns


class BareView(APIView):
    """The reference: DRF's request/response cycle with no authentication, throttling or DB."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get(self, request):
        return Response({"success": True, "message": "OK", "data": {"id": 1, "email": "bench@example.com"}})


urlpatterns = [path("bench/bare", BareView.as_view()), *product_urlpatterns]
