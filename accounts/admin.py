from __future__ import annotations

from allauth.account.models import EmailAddress
from allauth.socialaccount.admin import SocialAccountAdmin as BaseSocialAccountAdmin
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from accounts import services
from accounts.admin_login import ProtectedAdminLoginForm
from accounts.models import DeviceSession, User

# Staff sign in under the same brute-force protection as the API (accounts/signin_protection.py).
admin.site.login_form = ProtectedAdminLoginForm


_SESSION_FIELDS = (
    "device_name",
    "ip_address",
    "provider",
    "created_at",
    "last_used_at",
    "revoked_at",
    "revoked_reason",
)


class DeviceSessionInline(admin.TabularInline):
    model = DeviceSession
    extra = 0
    can_delete = False
    fields = _SESSION_FIELDS
    readonly_fields = _SESSION_FIELDS
    ordering = ["-last_used_at"]
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["-date_joined"]
    list_display = ["email", "name", "provider", "quota_used", "is_active", "is_staff", "date_joined", "last_login"]
    list_filter = ["is_active", "is_staff", "provider", "date_joined"]
    search_fields = ["email", "name"]
    list_select_related = ["quota_account"]
    readonly_fields = ["date_joined", "last_login", "updated_at", "deactivated_at"]
    inlines = [DeviceSessionInline]
    actions = ["revoke_all_sessions"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name", "bio", "locale", "timezone", "avatar", "provider")}),
        (
            "Status",
            {"fields": ("is_active", "deactivated_at", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("date_joined", "last_login", "updated_at")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "name", "password1", "password2")}),)

    @admin.display(description="quota used", ordering="quota_account__used")
    def quota_used(self, user: User) -> str:
        account = getattr(user, "quota_account", None)  # created on first use
        return f"{account.used} / {account.limit}" if account else "-"

    @admin.action(description="Sign out every device of the selected users")
    def revoke_all_sessions(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        total = sum(services.sessions_revoke_all(user=user, reason="admin") for user in queryset)
        self.message_user(request, f"Revoked {total} sessions.", messages.SUCCESS)


@admin.register(DeviceSession)
class DeviceSessionAdmin(admin.ModelAdmin):
    list_display = ["user", "device_name", "ip_address", "provider", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["provider", "revoked_reason", "created_at"]
    search_fields = ["user__email", "device_name", "ip_address"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in DeviceSession._meta.fields]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected sessions")
    def revoke(self, request: HttpRequest, queryset: QuerySet[DeviceSession]) -> None:
        count = 0
        for session in queryset.filter(revoked_at__isnull=True).select_related("user"):
            services.session_revoke(user=session.user, session_id=session.id, reason="admin")
            count += 1
        self.message_user(request, f"Revoked {count} sessions.", messages.SUCCESS)


# --- User management: reactivating an account the user deactivated (POST /api/user/deactivate) ---
@admin.action(description="Reactivate the selected deactivated accounts")
def reactivate_accounts(modeladmin: UserAdmin, request: HttpRequest, queryset: QuerySet[User]) -> None:
    from accounts.services.profile import account_reactivate

    count = 0
    for user in queryset.filter(is_active=False):
        account_reactivate(user=user)
        count += 1
    modeladmin.message_user(request, f"Reactivated {count} account(s).", messages.SUCCESS)


UserAdmin.actions = [*UserAdmin.actions, reactivate_accounts]


# --- Google links ----------------------------------------------------------------------------
# allauth is used only to verify Google ID tokens: the accepted client ids come from
# GOOGLE_CLIENT_IDS, and no e-mail address rows or provider tokens are ever written. Their admin
# pages would invite settings that change nothing, so only the account links are shown.
admin.site.unregister([SocialApp, SocialToken, EmailAddress])
admin.site.unregister(SocialAccount)


@admin.register(SocialAccount)
class SocialAccountAdmin(BaseSocialAccountAdmin):
    list_display = ["user", "provider", "uid", "date_joined", "last_login"]
    list_filter = ["provider", "date_joined"]
    list_select_related = ["user"]
    readonly_fields = ["provider", "uid", "extra_data", "date_joined", "last_login"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # links are made by signing in with Google
