"""User management: profile, avatar, deactivation and account deletion (`/api/user/...`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.avatars import avatar_file_delete_on_commit, avatar_file_store, avatar_image_process
from accounts.models import User
from accounts.services.auth import sessions_revoke_all
from core.exceptions import InvalidInput, NotFound

logger = logging.getLogger(__name__)

PROFILE_FIELDS = ("name", "bio", "locale", "timezone")


def profile_update(*, user: User, email: str | None = None, **changes: Any) -> User:
    """Change the editable profile fields. The email is the sign-in identity and cannot be
    changed here; sending it back unchanged (a client that PUTs the whole user) is fine."""
    if email is not None and email.strip().lower() != user.email.lower():
        raise InvalidInput(
            "The email address cannot be changed here.",
            code="email_not_editable",
            errors={"email": ["The email address cannot be changed."]},
        )
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise InvalidInput(f"These fields cannot be changed here: {', '.join(sorted(unknown))}.")
    if not changes:
        return user
    for key, value in changes.items():
        setattr(user, key, value)
    user.save(update_fields=[*changes, "updated_at"])
    return user


def avatar_update(*, user: User, upload: UploadedFile) -> User:
    """Replace the user's avatar with the processed upload; the old file goes once committed."""
    image = avatar_image_process(upload)
    name = avatar_file_store(user_id=user.pk, image=image)
    old = (user.avatar.name or "") if user.avatar else ""
    try:
        with transaction.atomic():
            user.avatar.name = name
            user.save(update_fields=["avatar", "updated_at"])
            avatar_file_delete_on_commit(old)
    except Exception:
        from django.core.files.storage import default_storage

        default_storage.delete(name)
        raise
    return user


def avatar_remove(*, user: User) -> User:
    if not user.avatar:
        raise NotFound("You have no avatar.", code="avatar_not_found")
    with transaction.atomic():
        old = user.avatar.name or ""
        user.avatar.name = ""
        user.save(update_fields=["avatar", "updated_at"])
        avatar_file_delete_on_commit(old)
    return user


# A Google ID token confirms an account change only if the user signed in with Google this
# recently: a token copied from an old sign-in (they live an hour) is not enough.
GOOGLE_CONFIRM_MAX_AGE_SECONDS = 10 * 60


def identity_confirm(*, user: User, password: str | None = None, google_id_token: str | None = None) -> None:
    """Prove the person holding the access token is the account owner before a destructive
    change: the password, or, for an account that signs in with Google, a fresh Google ID token
    of the linked Google account."""
    if google_id_token:
        _google_confirm(user, google_id_token)
        return
    if not user.has_usable_password():
        raise InvalidInput(
            "This account signs in with Google: confirm with a fresh Google ID token (googleIdToken).",
            code="password_not_set",
            errors={"password": ["No password is set for this account; send googleIdToken instead."]},
        )
    if not user.check_password(password or ""):
        raise InvalidInput("The password is wrong.", code="invalid_password", errors={"password": ["Wrong password."]})


def _google_confirm(user: User, id_token: str) -> None:
    from accounts.google import google_id_token_verify

    claims = google_id_token_verify(id_token)
    linked = SocialAccount.objects.filter(user=user, provider="google", uid=str(claims["sub"])).exists()
    if not linked:
        message = "This Google account is not the one linked to your account."
        raise InvalidInput(message, code="google_account_mismatch", errors={"googleIdToken": [message]})
    issued = int(claims.get("iat") or 0)
    if time.time() - issued > GOOGLE_CONFIRM_MAX_AGE_SECONDS:
        minutes = GOOGLE_CONFIRM_MAX_AGE_SECONDS // 60
        message = f"Sign in with Google again: the ID token must be at most {minutes} minutes old."
        raise InvalidInput(message, code="google_token_not_recent", errors={"googleIdToken": [message]})


@transaction.atomic
def account_deactivate(*, user: User, password: str | None = None, google_id_token: str | None = None) -> int:
    """Switch the account off: every session is signed out, sign-in is refused, all data is kept
    (staff can reactivate it in the admin). Returns the number of sessions revoked."""
    identity_confirm(user=user, password=password, google_id_token=google_id_token)
    user.is_active = False
    user.deactivated_at = timezone.now()
    user.save(update_fields=["is_active", "deactivated_at", "updated_at"])
    return sessions_revoke_all(user=user, reason="deactivated")


def account_reactivate(*, user: User) -> User:
    user.is_active = True
    user.deactivated_at = None
    user.save(update_fields=["is_active", "deactivated_at", "updated_at"])
    return user


def _deletion_cleanups() -> list[Callable[..., None]]:
    return [import_string(path) for path in settings.ACCOUNT_DELETION_CLEANUPS]


def account_delete(*, user: User, password: str | None = None, google_id_token: str | None = None) -> None:
    """Delete the account and everything it owns.

    Rows go by cascade (sessions, quota account, ledger, and every app's rows with a CASCADE
    foreign key to the user); files go through the clean-ups in `ACCOUNT_DELETION_CLEANUPS`,
    called before the rows disappear so they can still find what to delete. The issued refresh
    tokens' records are deleted too (simplejwt keeps them with the user set to NULL otherwise)."""
    identity_confirm(user=user, password=password, google_id_token=google_id_token)
    cleanups = _deletion_cleanups()  # a wrong dotted path fails before anything is touched
    user_id = user.pk
    with transaction.atomic():
        for cleanup in cleanups:
            cleanup(user=user)
        OutstandingToken.objects.filter(user_id=user_id).delete()
        user.delete()
    logger.info("Account %s deleted at the user's request", user_id)
