"""Brute-force protection of password sign-in, for the API and the admin login alike.

What is counted is failed credential checks (a wrong password, an unknown email), never
successful sign-ins or requests refused for invalid input, in three budgets (limits from the
environment, see config/settings/api.py and the README):

- per email from one client address (`RATE_LIMIT_AUTH_FAILURES`, the seed's 5 per 15 minutes):
  a hard lock of that pair. Someone guessing one account's password from one address stops there,
  and nobody else is affected.
- per client address across emails (`RATE_LIMIT_AUTH_ADDRESS_FAILURES`): one address spraying a
  common password over many accounts.
- per email across addresses (`RATE_LIMIT_AUTH_EMAIL_FAILURES`): one account attacked from many
  addresses. This budget locks out only *unfamiliar* addresses, those the account has no device
  session from within the refresh-token lifetime (the "familiar location" rule of Microsoft's
  Smart Lockout). Locking the email everywhere would let anyone lock its owner out; exempting
  every address would let a botnet guess forever.

An exhausted budget refuses the attempt with 429 and `Retry-After` before the password is
checked, so the refused attempt teaches the attacker nothing and spends nothing more.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from rest_framework_simplejwt.settings import api_settings

from accounts.models import DeviceSession
from core import metrics
from core.client_address import address_key
from core.exceptions import RateLimited
from core.ratelimit import (
    AUTH_ADDRESS_FAILURES,
    AUTH_EMAIL_FAILURES,
    AUTH_FAILURES,
    Usage,
    count_failure,
    failure_budget,
)


def email_key(email: str) -> str:
    return email.strip().lower()[:254]


def _identities(email: str, address: str | None) -> dict[str, str]:
    where = address_key(address)
    return {
        AUTH_FAILURES: f"pair:{email}|{where}",
        AUTH_ADDRESS_FAILURES: f"ip:{where}",
        AUTH_EMAIL_FAILURES: f"email:{email}",
    }


def _address_is_familiar(email: str, address: str | None) -> bool:
    """The account has signed in from this address (an IPv6 /64) within the refresh lifetime."""
    if address is None:
        return False
    where = address_key(address)
    since = timezone.now() - api_settings.REFRESH_TOKEN_LIFETIME
    recent = (
        DeviceSession.objects.filter(user__email__iexact=email, created_at__gte=since, ip_address__isnull=False)
        .order_by("-created_at")
        .values_list("ip_address", flat=True)[:200]
    )
    return any(address_key(ip) == where for ip in recent)


def _refuse(budget: str, usage: Usage) -> RateLimited:
    metrics.record_signin_refused(budget=budget)
    minutes = max(1, -(-usage.retry_after // 60))
    return RateLimited(
        f"Too many failed sign-in attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
        headers=usage.headers(),
    )


def signin_attempt_check(*, email: str, address: str | None) -> None:
    """Refuse (RateLimited) an attempt whose budget of failures is spent, before any check."""
    if not settings.RATE_LIMITS_ENABLED:
        return
    identities = _identities(email, address)
    for budget in (AUTH_ADDRESS_FAILURES, AUTH_FAILURES):
        usage = failure_budget(budget, identities[budget])
        if usage.limited:
            raise _refuse(budget, usage)
    usage = failure_budget(AUTH_EMAIL_FAILURES, identities[AUTH_EMAIL_FAILURES])
    if usage.limited and not _address_is_familiar(email, address):
        raise _refuse(AUTH_EMAIL_FAILURES, usage)


def signin_failure_record(*, email: str, address: str | None) -> dict[str, str]:
    """Spend one failure of each budget; returns the headers that tell the client how many
    attempts this email has left from this address."""
    if not settings.RATE_LIMITS_ENABLED:
        return {}
    identities = _identities(email, address)
    count_failure(AUTH_ADDRESS_FAILURES, identities[AUTH_ADDRESS_FAILURES])
    count_failure(AUTH_EMAIL_FAILURES, identities[AUTH_EMAIL_FAILURES])
    pair = count_failure(AUTH_FAILURES, identities[AUTH_FAILURES])
    return {"X-RateLimit-Limit": str(pair.limit), "X-RateLimit-Remaining": str(pair.remaining)}
