"""A primary/replica database router with read-your-writes by WAL position.

Importing this package needs Django only.
"""

__all__: list[str] = []
