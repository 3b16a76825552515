"""Request-scoped quota state: the account memoized on a user object, and which users' accounts
changed during the current request (so the X-Quota-* headers show the numbers after a change)."""

from __future__ import annotations

from contextvars import ContextVar, Token

from django.db.models import Model

from quotas.models import QuotaAccount

# The account is memoized on the user object for the request under this attribute, after the
# relation's own cache, which select_related fills (accounts.authentication loads the account
# with the session). Both are emptied when `used` changes.
_MEMO_ATTR = "_quota_account_cache"
_RELATION = QuotaAccount._meta.get_field("user").remote_field

# Ids of users whose account changed during the current request. The headers middleware starts
# a fresh set per request and re-reads those accounts, so X-Quota-* shows the numbers after a
# settle or refund made on a different user object than `request.user`.
_changed_users: ContextVar[set[int] | None] = ContextVar("quota_changed_users", default=None)


def quota_changes_track() -> Token[set[int] | None]:
    """Start recording account changes for one request; returns the token for `..._untrack`."""
    return _changed_users.set(set())


def quota_changes_untrack(token: Token[set[int] | None]) -> None:
    _changed_users.reset(token)


def quota_account_changed(*, user_id: int) -> None:
    changed = _changed_users.get()
    if changed is not None:
        changed.add(user_id)


def quota_account_was_changed(*, user_id: int) -> bool:
    return user_id in (_changed_users.get() or ())


def quota_account_memoized(*, user: Model) -> QuotaAccount | None:
    """The account cached on the user object (None if not cached, or loaded as missing)."""
    account = getattr(user, _MEMO_ATTR, None)
    if account is None:
        account = _RELATION.get_cached_value(user, default=None)
    return account if isinstance(account, QuotaAccount) else None


def quota_account_remember(*, user: Model, account: QuotaAccount) -> None:
    setattr(user, _MEMO_ATTR, account)


def quota_account_forget(*, user: Model) -> None:
    """Drop the memoized account after `used` changed, so headers show the new numbers."""
    if hasattr(user, _MEMO_ATTR):
        delattr(user, _MEMO_ATTR)
    if _RELATION.is_cached(user):
        _RELATION.delete_cached_value(user)
