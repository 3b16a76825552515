from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every app builds on: the domain exceptions, the response envelope and the API plumbing
    around it (`core.api`), the rate-limit policy, the client address, the ffmpeg choice and the
    upload scanner. It imports no other app of the project."""

    name = "core"
    verbose_name = "Core"
