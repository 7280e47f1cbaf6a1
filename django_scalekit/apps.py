from django.apps import AppConfig


class ScalekitConfig(AppConfig):
    name = "django_scalekit"
    verbose_name = "django-scalekit"

    def ready(self) -> None:
        # Registers the system checks. No database access here.
        from django_scalekit import checks  # noqa: F401
        from django_scalekit.cache import invalidation

        if invalidation.wanted():
            invalidation.connect_signals()
