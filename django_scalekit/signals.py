"""Signals the concerns share: where they meet without importing each other."""

from django.dispatch import Signal

#: Sent after a concern changed rows of ``sender`` (a model class) on database
#: ``using`` with SQL that Django's model signals do not report: counter
#: adjustments, recounts, folds. The cache listens to drop what it holds of them.
rows_changed = Signal()
