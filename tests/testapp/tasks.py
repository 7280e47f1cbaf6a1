from celery import shared_task

from django_scalekit.denorm.tasks import fold_task, recount_task  # noqa: F401  (registers them)
from tests.testapp.models import Tag


@shared_task
def add(x: int, y: int) -> int:
    return x + y


@shared_task
def create_tag(name: str) -> int:
    return Tag.objects.create(name=name).pk
