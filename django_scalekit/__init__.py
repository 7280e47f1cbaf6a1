"""Scaling utilities for Django. Import each concern from its own subpackage."""

__version__ = "0.1.0.dev0"
