"""Joins the concerns' parallel migration branches."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("testapp", "0002_partitioning"),
        ("testapp", "0002_serializers"),
        ("testapp", "0003_denorm_deferred"),
    ]

    operations = []
