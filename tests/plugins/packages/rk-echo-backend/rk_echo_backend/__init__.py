"""A third-party trainer backend for rewardkit-train's tests: it registers by import path,
so importing this package must stay cheap; the run module is imported only to run."""

from rewardkit.plugins import hookimpl

IMPORTED_RUN = "rk_echo_backend.run"


@hookimpl
def register_backends(register):
    register("echo", "rk_echo_backend.run:run", description="scores the gold answers with the rubric (tests)")
