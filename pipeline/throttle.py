"""AutoThrottle: a host's delay between requests follows how fast it answers (opt-in, `--autothrottle`).

Scrapy's algorithm (docs: "AutoThrottle extension"): after each response the
delay moves halfway towards ``latency / target concurrency`` (never below that
target delay), so a host that answers slowly is asked less often and a fast one
more often; a response that is an error never makes the delay shorter. On 429 or
503, which say "too many requests", the delay doubles at once. The delay stays
between the job's ``--delay`` (and the host's robots.txt Crawl-delay) and
``MAX_DELAY_S``. Each worker keeps its own estimate per host; the cluster-wide
slot in Redis spaces request starts by the delay the requesting worker asks for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

START_DELAY_S = 1.0
MAX_DELAY_S = 60.0
BACK_OFF_STATUS = frozenset({429, 503})


@dataclass
class AutoThrottle:
    target_concurrency: float = 2.0
    floor_s: float = 0.0
    delays: dict[str, float] = field(default_factory=dict)

    def delay(self, host: str) -> float:
        return self.delays.get(host, max(START_DELAY_S, self.floor_s))

    def observe(self, host: str, latency_s: float, status: int | None) -> float:
        """Fold one response (``status`` None: no answer at all) into the host's delay; returns the new delay."""
        current = self.delay(host)
        target = max(0.0, latency_s) / self.target_concurrency
        new = max(target, (current + target) / 2)
        if status in BACK_OFF_STATUS:
            new = max(new, current * 2)
        elif status != 200 and new < current:
            new = current  # an error is no reason to go faster
        self.delays[host] = min(MAX_DELAY_S, max(self.floor_s, new))
        return self.delays[host]
