"""Time-based PostgreSQL partition maintenance: premake, retention, default rescue.

Importing this package needs Django only; django-postgres-extra is optional.
"""

from .catalog import PartitioningError
from .maintain import LockNotAcquired, Result, maintain, maintain_all, plan
from .operations import CreatePartitionedModel
from .plan import Plan, Step

__all__ = [
    "CreatePartitionedModel",
    "LockNotAcquired",
    "PartitioningError",
    "Plan",
    "Result",
    "Step",
    "maintain",
    "maintain_all",
    "plan",
]
