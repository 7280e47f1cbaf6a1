import uuid

import django.utils.timezone
from django.db import migrations, models

from django_scalekit.partitioning import CreatePartitionedModel


class Migration(migrations.Migration):
    dependencies = [
        ("testapp", "0001_initial"),
    ]

    operations = [
        CreatePartitionedModel(
            name="Metric",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "uid", "created", blank=True, editable=False, primary_key=True,
                        serialize=False,
                    ),
                ),
                ("uid", models.UUIDField(default=uuid.uuid4)),
                (
                    "created",
                    models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                ),
                ("name", models.CharField(max_length=50)),
                ("value", models.FloatField(default=0)),
            ],
            partition_key="created",
        ),
    ]
