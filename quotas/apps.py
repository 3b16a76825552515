from django.apps import AppConfig


class QuotasConfig(AppConfig):
    name = "quotas"
    verbose_name = "Quotas and usage"

    def ready(self) -> None:
        from core import metrics
        from quotas.selectors import quota_usage_buckets

        metrics.quota_buckets_source_set(quota_usage_buckets)
