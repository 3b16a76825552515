"""`/api/user/...`: profile, avatar, deactivation and account deletion (thin views over
`accounts.services.profile`). Quota and usage statistics live in `quotas.views`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import openapi_examples as examples
from accounts.authentication import request_user
from accounts.avatars import avatar_content_type, avatar_etag
from accounts.models import User
from accounts.serializers.auth import RevokedSessionsSerializer
from accounts.serializers.profile import AvatarUploadSerializer, IdentityConfirmSerializer, ProfileUpdateSerializer
from accounts.serializers.user import UserSerializer
from accounts.services import profile as profile_services
from core import ratelimit
from core.api.envelope import ok
from core.api.parsers import CamelCaseFormParser, CamelCaseMultiPartParser
from core.exceptions import InvalidInput, NotFound


def _user_out(request: Request, user: User) -> dict[str, Any]:
    return UserSerializer(user, context={"request": request}).data


class ProfileView(APIView):
    @extend_schema(tags=["user"], responses={200: UserSerializer}, examples=[examples.PROFILE])
    def get(self, request: Request) -> Response:
        return ok(_user_out(request, request_user(request)))

    @extend_schema(
        tags=["user"],
        request=ProfileUpdateSerializer,
        responses={200: UserSerializer},
        examples=[examples.PROFILE_UPDATE_REQUEST, examples.PROFILE_UPDATED],
    )
    def put(self, request: Request) -> Response:
        body = ProfileUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = profile_services.profile_update(user=request_user(request), **body.validated_data)
        return ok(_user_out(request, user), message="Profile updated")

    @extend_schema(
        tags=["user"],
        request=ProfileUpdateSerializer,
        responses={200: UserSerializer},
        examples=[examples.PROFILE_UPDATE_REQUEST, examples.PROFILE_UPDATED],
    )
    def patch(self, request: Request) -> Response:
        return self.put(request)


class _AnyAccept(DefaultContentNegotiation):
    """The avatar is image bytes whatever the client accepts (image loaders send `image/*`, which
    would otherwise be a 406); errors are still rendered by the JSON renderer."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class AvatarView(APIView):
    rate_categories = {"GET": ratelimit.DOWNLOAD, "POST": ratelimit.UPLOAD}
    body_limit_setting = "AVATAR_MAX_BYTES"
    upload_field = "avatar"
    parser_classes = [CamelCaseMultiPartParser, CamelCaseFormParser]
    content_negotiation_class = _AnyAccept

    @extend_schema(
        tags=["user"],
        parameters=[OpenApiParameter("userId", int, description="Staff only: another user's avatar.")],
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY, (200, "image/png"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request) -> HttpResponse:
        target = self._target(request)
        if not target.avatar:
            raise NotFound("No avatar.", code="avatar_not_found")
        name = target.avatar.name or ""
        headers = {
            "ETag": avatar_etag(name),
            "Cache-Control": f"private, max-age={settings.AVATAR_CACHE_SECONDS}",
            "Vary": "Authorization",
        }
        if headers["ETag"] in _etags(request.headers.get("If-None-Match", "")):
            response = HttpResponse(status=304)
        else:
            try:
                with default_storage.open(name, "rb") as stored:
                    content = stored.read()
            except FileNotFoundError:
                raise NotFound("No avatar.", code="avatar_not_found") from None
            response = HttpResponse(content, content_type=avatar_content_type(name))
            response["Content-Length"] = str(len(content))
        for key, value in headers.items():
            response[key] = value
        return response

    @staticmethod
    def _target(request: Request) -> User:
        raw = request.query_params.get("userId")
        user = request_user(request)
        if raw is None or raw == str(user.pk):
            return user
        if not raw.isdigit():
            raise InvalidInput("userId must be a user id.", errors={"user_id": ["Must be an integer."]})
        # Only staff see other users' avatars; to anyone else another user's avatar does not exist.
        target = User.objects.filter(pk=int(raw)).first() if user.is_staff else None
        if target is None:
            raise NotFound("No avatar.", code="avatar_not_found")
        return target

    @extend_schema(
        tags=["user"],
        request={"multipart/form-data": AvatarUploadSerializer},
        responses={200: UserSerializer, 413: examples.AVATAR_TOO_LARGE, 415: examples.AVATAR_UNSUPPORTED},
        examples=[examples.AVATAR_REQUEST, examples.AVATAR_UPDATED],
    )
    def post(self, request: Request) -> Response:
        body = AvatarUploadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = profile_services.avatar_update(user=request_user(request), upload=body.validated_data["avatar"])
        return ok(_user_out(request, user), message="Avatar updated")

    @extend_schema(tags=["user"], responses={200: UserSerializer}, examples=[examples.AVATAR_REMOVED])
    def delete(self, request: Request) -> Response:
        user = profile_services.avatar_remove(user=request_user(request))
        return ok(_user_out(request, user), message="Avatar removed")


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _confirmation(request: Request) -> dict[str, str]:
    body = IdentityConfirmSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    return body.validated_data


class DeactivateView(APIView):
    # A password check: limited like sign-in, so a stolen token cannot guess the password.
    rate_category = ratelimit.AUTH

    @extend_schema(
        tags=["user"],
        request=IdentityConfirmSerializer,
        responses={200: RevokedSessionsSerializer, 503: examples.GOOGLE_NOT_CONFIGURED},
        examples=[examples.PASSWORD_CONFIRM_REQUEST, examples.GOOGLE_CONFIRM_REQUEST, examples.DEACTIVATED],
    )
    def post(self, request: Request) -> Response:
        revoked = profile_services.account_deactivate(user=request_user(request), **_confirmation(request))
        return ok({"revoked_sessions": revoked}, message="Account deactivated; every device was signed out")


class AccountView(APIView):
    rate_category = ratelimit.AUTH

    # OpenAPI tools drop the body of a DELETE, so the description names it.
    @extend_schema(
        tags=["user"],
        description=(
            'Send the password as the JSON body, `{"password": "..."}`, or for an account that signs in with '
            'Google, an ID token from a sign-in made in the last 10 minutes: `{"googleIdToken": "..."}`.'
        ),
        request=IdentityConfirmSerializer,
        responses={200: examples.ACCOUNT_DELETED, 503: examples.GOOGLE_NOT_CONFIGURED},
    )
    def delete(self, request: Request) -> Response:
        profile_services.account_delete(user=request_user(request), **_confirmation(request))
        return ok(None, message="Account and all its data deleted")
