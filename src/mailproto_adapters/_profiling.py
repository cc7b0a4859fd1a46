"""Profiling every thread of a process (cProfile sees only the thread it runs in).

For benchmarks and for finding where a server spends its time: ``benchmarks/mta.py
--profile`` uses it in its server process, and a listener child
(`listener_process`) uses it when ``MAILPROTO_PROFILE_DIR`` is set in its environment,
writing ``<service>-<pid>.prof`` there when it stops (``MAILPROTO_PROFILE_CLOCK=cpu``
measures CPU time instead of wall time).
"""

from __future__ import annotations

import pstats
import threading
import time
from collections.abc import Callable

__all__ = ["profile_threads"]


def profile_threads(clock: str) -> Callable[[], pstats.Stats | None]:
    """Profile every thread started from now on (cProfile sees one thread only); the
    returned function stops profiling this one and merges their profiles. ``clock``:
    "cpu" (each thread's CPU time) or "wall"."""
    import cProfile

    profiles: list[cProfile.Profile] = []
    original = threading.Thread.run

    def new_profile() -> cProfile.Profile:
        profile = cProfile.Profile(time.thread_time) if clock == "cpu" else cProfile.Profile()
        profiles.append(profile)
        return profile

    def run(self: threading.Thread) -> None:
        profile = new_profile()
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    # And this thread (the event loop's, on the anyio flavour).
    main = new_profile()
    main.enable()

    def merged() -> pstats.Stats | None:
        main.disable()
        stats: pstats.Stats | None = None
        for profile in profiles:
            profile.snapshot_stats()
            if not getattr(profile, "stats", None):
                continue
            if stats is None:
                stats = pstats.Stats(profile)
            else:
                stats.add(profile)
        return stats

    return merged
