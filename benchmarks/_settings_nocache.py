"""The test settings without the cache: a project that uses only the concern measured.

With ``SCALEKIT_CACHE`` defined every write would also bump a version token in Redis after
its commit, a cost that has nothing to do with the counter being measured.
"""

from tests.settings import *  # noqa: F403

del SCALEKIT_CACHE  # noqa: F821
