"""Exponential backoff with jitter between tries of a side effect (pure; the exporter's ERP)."""

from __future__ import annotations


def backoff_delay(tries: int, base_s: float, max_s: float, rand: float) -> float:
    """Seconds to wait after the `tries`-th failed try (1-based), for `rand` drawn from [0, 1).

    The ceiling doubles per try up to `max_s`; the wait is half the ceiling plus a random
    share of the other half ("equal jitter"): exporters that failed together (an ERP outage)
    spread out when it comes back, yet every wait keeps a floor, so a fixed number of attempts
    always spans a predictable minimum time.
    """
    if tries < 1:
        raise ValueError("tries counts from 1")
    ceiling = min(max_s, base_s * 2.0 ** min(tries - 1, 62))
    return ceiling / 2 + ceiling / 2 * min(max(rand, 0.0), 1.0)
