"""Running coroutines from sync code, wherever that code happens to be called.

A rubric is called from plain scripts (no event loop), from inside a running loop
(Jupyter, an async server, TRL's reward thread) and in worker processes. ``run_sync``
works in all three: with no loop in this thread it uses ``asyncio.run``; inside a running
loop (where ``asyncio.run`` refuses) it runs the coroutine to completion on a fresh loop
in a helper thread and blocks the caller until it is done. Blocking a running loop is the
price of a sync API; async callers that mind should await ``Rubric.ascore_batch``.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any, Awaitable, Callable

__all__ = ["run_sync", "is_async_callable"]


def is_async_callable(func: Any) -> bool:
    """True for an ``async def`` function, a partial of one, or an object whose
    ``__call__`` is ``async def``."""
    while hasattr(func, "func") and hasattr(func, "args"):  # functools.partial
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(type(func), "__call__", None)
    return call is not None and not inspect.isfunction(func) and inspect.iscoroutinefunction(call)


def run_sync(factory: Callable[[], Awaitable[Any]]) -> Any:
    """Run the coroutine ``factory()`` makes and return its result (or raise its error).

    A factory, not a coroutine, so the coroutine is created on the loop that runs it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_call(factory))
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(_call(factory))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="rewardkit-async", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


async def _call(factory: Callable[[], Awaitable[Any]]) -> Any:
    return await factory()
