"""Time the ranking tally on a large consultation: 40 actions, 20,000 ballots.

Run with ``python bench/bench_ranking.py``. Prints the time for top-5 ballots (the usual case),
for full ballots (the worst case) and for the same top-5 ballots split into four categories.
"""

from __future__ import annotations

import random
import time

from consultation.ranking import rank_by_category, schulze

CANDIDATES = [f"A{i}" for i in range(1, 41)]
BALLOTS = 20_000
CATEGORIES = ["élus", "habitants", "associations", "services"]


def timed(label: str, run) -> None:
    start = time.perf_counter()
    run()
    print(f"{label:<40} {time.perf_counter() - start:6.3f} s")


def main() -> None:
    rng = random.Random(0)
    top5 = [tuple(rng.sample(CANDIDATES, 5)) for _ in range(BALLOTS)]
    full = [tuple(rng.sample(CANDIDATES, len(CANDIDATES))) for _ in range(BALLOTS)]
    tagged = [(rng.choice(CATEGORIES), ballot) for ballot in top5]

    timed("40 candidates, 20,000 top-5 ballots", lambda: schulze(CANDIDATES, top5))
    timed("40 candidates, 20,000 full ballots", lambda: schulze(CANDIDATES, full))
    timed("same top-5, overall + 4 categories", lambda: rank_by_category(CANDIDATES, tagged))


if __name__ == "__main__":
    main()
