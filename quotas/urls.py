from django.urls import path

from quotas import views

urlpatterns = [
    path("quota", views.QuotaView.as_view(), name="user-quota"),
    path("usage-stats", views.UsageStatsView.as_view(), name="user-usage-stats"),
]
