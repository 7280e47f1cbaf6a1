"""A primary/replica database router with read-your-writes by WAL position.

Importing this package needs Django only.
"""

from django_scalekit.routers.middleware import ReadYourWritesMiddleware
from django_scalekit.routers.router import (
    PrimaryReplicaRouter,
    may_use_replica,
    primary_of,
    read_alias,
    replayed_past,
)
from django_scalekit.routers.state import use_primary

__all__ = [
    "PrimaryReplicaRouter",
    "ReadYourWritesMiddleware",
    "may_use_replica",
    "primary_of",
    "read_alias",
    "replayed_past",
    "use_primary",
]
