from django.urls import path

from accounts.views import user as user_views

urlpatterns = [
    path("profile", user_views.ProfileView.as_view(), name="user-profile"),
    path("avatar", user_views.AvatarView.as_view(), name="user-avatar"),
    path("deactivate", user_views.DeactivateView.as_view(), name="user-deactivate"),
    path("account", user_views.AccountView.as_view(), name="user-account"),
]
