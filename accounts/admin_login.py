"""The admin login, through the same sign-in check as the API: the budgets of failed attempts of
`accounts.signin_protection` and the password hasher run on every path."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from accounts import services
from core.client_address import client_ip
from core.exceptions import AuthenticationFailed, RateLimited

# The backend Django records in the session for a user authenticated here (`login()` needs one
# when several are configured); ModelBackend is the one that reloads staff users by id.
_BACKEND = "django.contrib.auth.backends.ModelBackend"


class ProtectedAdminLoginForm(AdminAuthenticationForm):
    def clean(self) -> dict[str, Any]:
        email = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if email is not None and password:
            try:
                user = services.user_authenticate(
                    email=email, password=password, address=client_ip(self.request) if self.request else None
                )
            except RateLimited as exc:
                raise ValidationError(exc.message, code="rate_limited") from None
            except AuthenticationFailed:
                raise self.get_invalid_login_error() from None
            user.backend = _BACKEND
            self.user_cache = user
            self.confirm_login_allowed(user)
        return self.cleaned_data
