"""`/api/auth/...`: thin views over `accounts.services.auth`."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import openapi_examples as examples
from accounts.authentication import request_user
from accounts.devices import device_name_from_request, user_agent_from_request
from accounts.models import DeviceSession
from accounts.serializers.auth import (
    AuthResultSerializer,
    ChangePasswordSerializer,
    DeviceSessionSerializer,
    GoogleSignInSerializer,
    LoginSerializer,
    RefreshSerializer,
    RegisterSerializer,
    RevokedSerializer,
    RevokedSessionsSerializer,
    TokenPairSerializer,
)
from accounts.serializers.user import UserSerializer
from accounts.services import auth as services
from core import ratelimit
from core.api.envelope import ok
from core.api.pagination import paginate
from core.api.schema import COMPLETE_RESPONSES
from core.client_address import client_ip

# Each operation here documents every status it answers (core.api.schema adds none of its own).
COMPLETE = {COMPLETE_RESPONSES: True}


def _device(request: Request) -> services.DeviceInfo:
    return services.DeviceInfo(
        name=device_name_from_request(request),
        user_agent=user_agent_from_request(request),
        ip_address=client_ip(request),
    )


def _signed_in(request: Request, result: services.SignIn, *, message: str, status_code: int = 200) -> Response:
    data = {
        "user": UserSerializer(result.user, context={"request": request}).data,
        **result.tokens,
        "session_id": str(result.session.id),
    }
    return ok(data, message=message, status=status_code)


class RegisterView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    rate_category = ratelimit.SIGNUP

    @extend_schema(
        tags=["auth"],
        extensions=COMPLETE,
        request=RegisterSerializer,
        responses={
            201: AuthResultSerializer,
            400: examples.REGISTER_INVALID,
            409: examples.EMAIL_TAKEN,
            429: examples.RATE_LIMITED,
        },
        examples=[examples.REGISTER_REQUEST, examples.REGISTERED],
    )
    def post(self, request: Request) -> Response:
        body = RegisterSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = services.user_register(**body.validated_data, device=_device(request))
        return _signed_in(request, result, message="Registration successful", status_code=status.HTTP_201_CREATED)


class LoginView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    rate_category = ratelimit.SIGNIN

    @extend_schema(
        tags=["auth"],
        extensions=COMPLETE,
        request=LoginSerializer,
        responses={
            200: AuthResultSerializer,
            400: examples.INVALID_INPUT,
            401: examples.INVALID_CREDENTIALS,
            429: examples.SIGNIN_RATE_LIMITED,
        },
        examples=[examples.LOGIN_REQUEST, examples.SIGNED_IN],
    )
    def post(self, request: Request) -> Response:
        body = LoginSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = services.user_authenticate(**body.validated_data, address=client_ip(request))
        return _signed_in(
            request, services.session_start(user=user, device=_device(request)), message="Login successful"
        )


class GoogleSignInView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    rate_category = ratelimit.SIGNIN

    @extend_schema(
        tags=["auth"],
        extensions=COMPLETE,
        request=GoogleSignInSerializer,
        responses={
            200: AuthResultSerializer,
            400: examples.INVALID_INPUT,
            401: examples.GOOGLE_REFUSED,
            429: examples.RATE_LIMITED,
            503: examples.GOOGLE_UNAVAILABLE,
        },
        examples=[examples.GOOGLE_REQUEST, examples.SIGNED_IN],
    )
    def post(self, request: Request) -> Response:
        body = GoogleSignInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = services.google_sign_in(id_token=body.validated_data["id_token"], device=_device(request))
        return _signed_in(request, result, message="Login successful")


class RefreshView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    rate_category = ratelimit.REFRESH

    @extend_schema(
        tags=["auth"],
        extensions=COMPLETE,
        request=RefreshSerializer,
        responses={
            200: TokenPairSerializer,
            400: examples.INVALID_INPUT,
            401: examples.REFRESH_REFUSED,
            429: examples.RATE_LIMITED,
        },
        examples=[examples.REFRESH_REQUEST, examples.REFRESHED],
    )
    def post(self, request: Request) -> Response:
        body = RefreshSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        tokens = services.token_refresh(refresh_token=body.validated_data["refresh_token"])
        return ok(dict(tokens), message="Token refreshed")


class LogoutView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        tags=["auth"],
        extensions=COMPLETE,
        request=RefreshSerializer,
        responses={
            200: examples.LOGGED_OUT,
            400: examples.INVALID_INPUT,
            401: examples.LOGOUT_REFUSED,
            429: examples.RATE_LIMITED,
        },
        examples=[examples.REFRESH_REQUEST],
    )
    def post(self, request: Request) -> Response:
        body = RefreshSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.session_logout(refresh_token=body.validated_data["refresh_token"])
        return ok(None, message="Logged out")


class MeView(APIView):
    @extend_schema(
        tags=["auth"],
        extensions=COMPLETE,
        responses={200: UserSerializer, 401: examples.NOT_SIGNED_IN, 429: examples.RATE_LIMITED_PER_USER},
        examples=[examples.ME],
    )
    def get(self, request: Request) -> Response:
        return ok(UserSerializer(request_user(request), context={"request": request}).data)


class LogoutAllView(APIView):
    @extend_schema(
        tags=["auth"],
        extensions=COMPLETE,
        request=None,
        responses={200: RevokedSerializer, 401: examples.NOT_SIGNED_IN, 429: examples.RATE_LIMITED_PER_USER},
        examples=[examples.LOGGED_OUT_EVERYWHERE],
    )
    def post(self, request: Request) -> Response:
        count = services.sessions_revoke_all(user=request_user(request))
        return ok({"revoked": count}, message="Logged out from all devices")


class SessionListView(APIView):
    @extend_schema(tags=["auth"], responses={200: DeviceSessionSerializer(many=True)}, examples=[examples.SESSIONS])
    def get(self, request: Request) -> Response:
        user = request_user(request)
        sessions = DeviceSession.objects.filter(user=user, revoked_at__isnull=True).order_by("-last_used_at")
        return paginate(
            request=request,
            queryset=sessions,
            serializer_class=DeviceSessionSerializer,
            context={"current_session_id": user.device_session.id},
        )


class SessionDetailView(APIView):
    @extend_schema(
        tags=["auth"],
        extensions=COMPLETE,
        responses={
            200: examples.SESSION_REVOKED,
            401: examples.NOT_SIGNED_IN,
            404: examples.SESSION_NOT_FOUND,
            429: examples.RATE_LIMITED_PER_USER,
        },
    )
    def delete(self, request: Request, session_id: uuid.UUID) -> Response:
        services.session_revoke(user=request_user(request), session_id=session_id)
        return ok(None, message="Session revoked")


class ChangePasswordView(APIView):
    rate_category = ratelimit.AUTH

    @extend_schema(
        tags=["auth"],
        extensions=COMPLETE,
        request=ChangePasswordSerializer,
        responses={
            200: RevokedSessionsSerializer,
            400: examples.WRONG_CURRENT_PASSWORD,
            401: examples.NOT_SIGNED_IN,
            429: examples.RATE_LIMITED_PER_USER,
        },
        examples=[examples.CHANGE_PASSWORD_REQUEST, examples.PASSWORD_CHANGED],
    )
    def post(self, request: Request) -> Response:
        body = ChangePasswordSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = request_user(request)
        revoked = services.password_change(user=user, keep=user.device_session, **body.validated_data)
        return ok({"revoked_sessions": revoked}, message="Password changed; other devices were signed out")
