"""Deferred counters are queued by a trigger on the child table."""

from django.db import migrations

from django_scalekit.denorm import CounterTrigger


class Migration(migrations.Migration):
    dependencies = [
        ("testapp", "0004_merge"),
    ]

    operations = [
        CounterTrigger("board", "posts_deferred"),
    ]
