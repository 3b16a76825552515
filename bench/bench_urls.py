from django.contrib.auth import get_user_model
from django.urls import path
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from config.urls import urlpatterns as product_urlpatterns


class BareView(APIView):
    """The reference: DRF's request/response cycle with no authentication, throttling or DB."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get(self, request):
        return Response({"success": True, "message": "OK", "data": {"id": 1, "email": "bench@example.com"}})

    def post(self, request):
        # The chat bench's floor: a JSON body parsed and answered, nothing else.
        return Response({"success": True, "message": "OK", "data": {"echo": request.data}})


class StockUserSerializer(serializers.ModelSerializer):
    class Meta:
        model = get_user_model()
        fields = ["id", "email", "name", "bio", "locale", "timezone", "provider", "is_active", "is_staff"]
        fields += ["date_joined", "last_login"]


class StockMeView(APIView):
    """What a conventional project runs for `/me`: simplejwt's stock `JWTAuthentication` (one
    query for the user, no device session, so revocation waits for the token's expiry), a
    ModelSerializer and DRF's JSON renderer; no quota headers."""

    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]
    throttle_classes: list = []

    def get(self, request):
        return Response({"success": True, "message": "OK", "data": StockUserSerializer(request.user).data})


# Bench-only routes: this module is the URLconf of bench.bench_settings, never of the product.
urlpatterns = [path("bench/bare", BareView.as_view()), path("bench/stock-me", StockMeView.as_view())]
urlpatterns += product_urlpatterns
