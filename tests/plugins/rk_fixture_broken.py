"""Fails at import time, like a plugin with a missing dependency."""

import rk_fixture_no_such_dependency  # noqa: F401
