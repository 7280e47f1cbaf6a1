from django.apps import AppConfig
from django.conf import settings


class ScalekitConfig(AppConfig):
    name = "django_scalekit"
    verbose_name = "django-scalekit"

    def ready(self) -> None:
        # Registers the system checks. No database access here.
        from django_scalekit import checks  # noqa: F401
        from django_scalekit.cache import invalidation

        if invalidation.wanted():
            invalidation.connect_signals()
            router_settings = getattr(settings, "SCALEKIT_ROUTER", {})
            if isinstance(router_settings, dict) and router_settings.get("REPLICAS"):
                share_replica_map()


def share_replica_map() -> None:
    """Let the cache know the router's replicas, so a lagging one cannot refill it, and
    what the router's polls already know of their replay positions.

    Without this the cache knows a replica only by ``TEST["MIRROR"]``, and asks the
    replica for its replay position before storing each read it served.
    """
    from django_scalekit.cache import set_caught_up_check, set_primary_resolver
    from django_scalekit.routers import primary_of, replayed_past

    set_primary_resolver(primary_of)
    set_caught_up_check(replayed_past)
