from django.urls import path

from accounts.views import auth as views

urlpatterns = [
    path("register", views.RegisterView.as_view(), name="auth-register"),
    path("login", views.LoginView.as_view(), name="auth-login"),
    path("google", views.GoogleSignInView.as_view(), name="auth-google"),
    path("refresh", views.RefreshView.as_view(), name="auth-refresh"),
    path("logout", views.LogoutView.as_view(), name="auth-logout"),
    path("me", views.MeView.as_view(), name="auth-me"),
    path("logout-all", views.LogoutAllView.as_view(), name="auth-logout-all"),
    path("sessions", views.SessionListView.as_view(), name="auth-sessions"),
    path("sessions/<uuid:session_id>", views.SessionDetailView.as_view(), name="auth-session-detail"),
    path("change-password", views.ChangePasswordView.as_view(), name="auth-change-password"),
]
