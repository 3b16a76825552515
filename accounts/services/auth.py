"""Accounts: registration, sign-in, device sessions and token rotation."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.contrib.auth import password_validation
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.settings import api_settings

from accounts import signin_protection
from accounts.models import DeviceSession, User
from accounts.tokens import TokenPair, refresh_jtis_blacklist, refresh_token_decode, token_pair_issue
from core.api.outages import CACHE_ERRORS
from core.exceptions import AuthenticationFailed, Conflict, InvalidInput
from quotas.services import quota_account_ensure

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    user_agent: str
    ip_address: str | None


@dataclass(frozen=True)
class SignIn:
    user: User
    session: DeviceSession
    tokens: TokenPair


def _password_validate(password: str, user: User | None = None) -> None:
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise InvalidInput(exc.messages[0], errors={"password": list(exc.messages)}) from None


@transaction.atomic
def user_register(*, email: str, password: str, name: str, device: DeviceInfo) -> SignIn:
    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email__iexact=email).exists():
        raise Conflict(
            "An account with this email already exists.", code="email_taken", errors={"email": ["Already registered."]}
        )
    candidate = User(email=email, name=name)
    _password_validate(password, candidate)
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password, name=name)
    except IntegrityError:  # a concurrent registration of the same address won the race
        raise Conflict(
            "An account with this email already exists.", code="email_taken", errors={"email": ["Already registered."]}
        ) from None
    return session_start(user=user, device=device)


def user_authenticate(*, email: str, password: str, address: str | None = None) -> User:
    """Check a password sign-in from `address` (the client's), under the budgets of failed
    attempts of `accounts.signin_protection`.

    The password hasher runs on every path that answers "invalid", so the response time does not
    tell an unknown email, a wrong password and an account without a password (Google only) apart.
    """
    key = signin_protection.email_key(email)
    signin_protection.signin_attempt_check(email=key, address=address)
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        User().set_password(password)
        valid = False
    else:
        # Without a usable password Django hashes a random string instead, for the same reason.
        valid = user.check_password(password)
    if user is None or not valid:
        headers = signin_protection.signin_failure_record(email=key, address=address)
        raise AuthenticationFailed("Invalid email or password.", code="invalid_credentials", headers=headers)
    if not user.is_active:
        raise AuthenticationFailed("This account is deactivated.", code="account_inactive")
    return user


@transaction.atomic
def session_start(*, user: User, device: DeviceInfo, provider: str = User.Provider.LOCAL) -> SignIn:
    now = timezone.now()
    session = DeviceSession(
        user=user,
        device_name=device.name,
        user_agent=device.user_agent[:500],
        ip_address=device.ip_address,
        provider=provider,
        last_used_at=now,
        expires_at=now + api_settings.REFRESH_TOKEN_LIFETIME,
    )
    tokens, jti = token_pair_issue(session=session)
    session.refresh_jti = jti
    session.save()
    User.objects.filter(pk=user.pk).update(last_login=now)
    user.last_login = now
    quota_account_ensure(user=user)  # the answer and every later request report the quota
    return SignIn(user=user, session=session, tokens=tokens)


def _claimed_user_id(payload: dict[str, Any]) -> int | str:
    # A token without a usable user claim names no user: -1 matches no row.
    value = payload.get(api_settings.USER_ID_CLAIM)
    return value if isinstance(value, int | str) else -1


def _grace_key(jti: str) -> str:
    return f"auth:refresh-grace:{jti}"


def _grace_get(jti: str) -> TokenPair | None:
    # The grace window is a convenience for retries, not a security check: with the cache down
    # a retried token is rotated once more (still single-use), so refresh keeps working.
    try:
        return cache.get(_grace_key(jti))
    except CACHE_ERRORS as exc:
        logger.warning("Refresh grace cache unreachable (%s): rotating without it", exc)
        return None


def _grace_set(jti: str, tokens: TokenPair) -> None:
    try:
        cache.set(_grace_key(jti), dict(tokens), timeout=settings.JWT_REFRESH_GRACE_SECONDS)
    except CACHE_ERRORS as exc:
        logger.warning("Refresh grace cache unreachable (%s): the pair is not kept for retries", exc)


def token_refresh(*, refresh_token: str) -> TokenPair:
    """Rotate a refresh token. A token used twice is theft unless the retry comes within the
    grace window (a mobile app that lost the first response): then it gets the same new pair."""
    payload = refresh_token_decode(refresh_token)
    jti = payload[api_settings.JTI_CLAIM]
    grace = timedelta(seconds=settings.JWT_REFRESH_GRACE_SECONDS)
    revoke_for_reuse = False
    with transaction.atomic():
        session = (
            DeviceSession.objects.select_for_update()
            .select_related("user")
            .filter(id=payload["sid"], user_id=_claimed_user_id(payload))
            .first()
        )
        if session is None or session.revoked_at is not None:
            raise AuthenticationFailed("This session has been signed out.", code="session_revoked")
        if not session.user.is_active:
            raise AuthenticationFailed("This account is deactivated.", code="account_inactive")
        now = timezone.now()
        in_grace = (
            jti == session.previous_refresh_jti and session.rotated_at is not None and now - session.rotated_at <= grace
        )
        if in_grace and (issued := _grace_get(jti)):
            return TokenPair(**issued)
        if jti == session.refresh_jti or in_grace:
            # In the grace window with the issued pair gone from the cache (another process's
            # local cache), rotating once more is still safe: the old token stays single-use.
            tokens, new_jti = token_pair_issue(session=session)
            stale = session.refresh_jti
            session.previous_refresh_jti, session.refresh_jti = jti, new_jti
            session.rotated_at = now
            session.last_used_at = now
            session.expires_at = now + api_settings.REFRESH_TOKEN_LIFETIME
            session.save(
                update_fields=["previous_refresh_jti", "refresh_jti", "rotated_at", "last_used_at", "expires_at"]
            )
            refresh_jtis_blacklist([jti, stale])
            _grace_set(jti, tokens)
            return tokens
        revoke_for_reuse = True
        _session_revoke(session, reason="refresh_reused")
    if revoke_for_reuse:
        logger.warning("Refresh token reuse on session %s: session revoked", payload["sid"])
    raise AuthenticationFailed(
        "This refresh token was already used. The session has been signed out for safety.",
        code="refresh_token_reused",
    )


def _session_revoke(session: DeviceSession, *, reason: str) -> None:
    DeviceSession.objects.filter(pk=session.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=reason
    )
    refresh_jtis_blacklist([session.refresh_jti, session.previous_refresh_jti])


def session_logout(*, refresh_token: str) -> None:
    """Sign out the session a refresh token belongs to (idempotent for an already-ended one)."""
    payload = refresh_token_decode(refresh_token)
    session = DeviceSession.objects.filter(id=payload["sid"], user_id=_claimed_user_id(payload)).first()
    if session is None:
        raise AuthenticationFailed("The refresh token is invalid.", code="token_invalid")
    _session_revoke(session, reason="logout")


def session_revoke(*, user: User, session_id: uuid.UUID | str, reason: str = "revoked") -> DeviceSession:
    from core.exceptions import NotFound

    session = DeviceSession.objects.filter(user=user, id=session_id, revoked_at__isnull=True).first()
    if session is None:
        raise NotFound("Session not found.")
    _session_revoke(session, reason=reason)
    return session


def sessions_revoke_all(*, user: User, keep: DeviceSession | None = None, reason: str = "logout_all") -> int:
    sessions = DeviceSession.objects.filter(user=user, revoked_at__isnull=True)
    if keep is not None:
        sessions = sessions.exclude(pk=keep.pk)
    jtis = [j for pair in sessions.values_list("refresh_jti", "previous_refresh_jti") for j in pair]
    count = sessions.update(revoked_at=timezone.now(), revoked_reason=reason)
    refresh_jtis_blacklist(jtis)
    return count


@transaction.atomic
def password_change(*, user: User, current_password: str, new_password: str, keep: DeviceSession | None) -> int:
    if not user.check_password(current_password):
        raise InvalidInput(
            "The current password is wrong.", code="invalid_password", errors={"current_password": ["Wrong password."]}
        )
    try:
        password_validation.validate_password(new_password, user=user)
    except DjangoValidationError as exc:
        raise InvalidInput(exc.messages[0], errors={"new_password": list(exc.messages)}) from None
    user.set_password(new_password)
    user.save(update_fields=["password", "updated_at"])
    return sessions_revoke_all(user=user, keep=keep, reason="password_changed")


@transaction.atomic
def google_sign_in(*, id_token: str, device: DeviceInfo) -> SignIn:
    """Sign in with a Google ID token: link to the account with the same verified email, or
    create one. Unverified Google addresses are refused: they would let anyone claim an account."""
    from accounts.google import google_id_token_verify

    claims = google_id_token_verify(id_token)
    email = str(claims.get("email") or "").lower()
    if not email or not claims.get("email_verified"):
        raise AuthenticationFailed("The Google account has no verified email address.", code="email_not_verified")
    link = SocialAccount.objects.select_related("user").filter(provider="google", uid=str(claims["sub"])).first()
    user = link.user if link else User.objects.filter(email__iexact=email).first()
    if user is None:
        name = str(claims.get("name") or "")[:150]
        user = User.objects.create_user(email=email, password=None, name=name, provider=User.Provider.GOOGLE)
    if link is None:
        SocialAccount.objects.create(user=user, provider="google", uid=str(claims["sub"]), extra_data=claims)
    if not user.is_active:
        raise AuthenticationFailed("This account is deactivated.", code="account_inactive")
    return session_start(user=user, device=device, provider=User.Provider.GOOGLE)
