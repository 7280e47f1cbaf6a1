from django.apps import AppConfig


class ShopConfig(AppConfig):
    """The demo shop whose pages the report measures."""

    name = "shop"
    default_auto_field = "django.db.models.BigAutoField"
