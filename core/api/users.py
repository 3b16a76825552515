"""The signed-in user of a request, for apps below accounts (which cannot import its `User`)."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.request import Request


def authenticated_user(request: Request | HttpRequest) -> AbstractBaseUser:
    """Narrows `User | AnonymousUser` to the signed-in user; apps that may import accounts use
    `accounts.authentication.request_user`, which narrows to the project's `User`."""
    user = request.user
    if not isinstance(user, AbstractBaseUser):
        raise exceptions.NotAuthenticated()
    return user
