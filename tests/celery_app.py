"""The Celery app tests run tasks on (broker and results on the test Redis)."""

from celery import Celery

app = Celery("scalekit_tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
