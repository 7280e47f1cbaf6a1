"""Time-based PostgreSQL partition maintenance: premake, retention, default rescue.

Importing this package needs Django only; django-postgres-extra is optional.
"""

__all__: list[str] = []
