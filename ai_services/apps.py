from django.apps import AppConfig


class AiServicesConfig(AppConfig):
    name = "ai_services"
    verbose_name = "AI services"
