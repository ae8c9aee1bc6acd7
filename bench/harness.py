"""A tiny benchmark harness: each case times Palabre's code and a baseline in the same run.

Absolute seconds depend on the machine; the ratio subject / baseline does much less, so it is
what we track. Each side runs `repeat` times and the best time counts (the least disturbed by
the rest of the machine).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import platform
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

Runner = Callable[[], Any] | Callable[[], Awaitable[Any]]


@dataclass
class Case:
    name: str
    subject: str
    baseline: str
    subject_s: float
    baseline_s: float
    units: int
    unit: str

    @property
    def ratio(self) -> float:
        return self.subject_s / self.baseline_s if self.baseline_s else float("inf")


def _time_once(run: Runner) -> float:
    start = time.perf_counter()
    result = run()
    if inspect.isawaitable(result):
        asyncio.run(_await(result))
    return time.perf_counter() - start


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def measure(
    name: str,
    *,
    subject: tuple[str, Runner],
    baseline: tuple[str, Runner],
    units: int,
    unit: str,
    repeat: int = 5,
) -> Case:
    """Time `subject` and `baseline` alternately, best of `repeat` each."""
    subject_times, baseline_times = [], []
    for _ in range(repeat):
        baseline_times.append(_time_once(baseline[1]))
        subject_times.append(_time_once(subject[1]))
    return Case(
        name=name,
        subject=subject[0],
        baseline=baseline[0],
        subject_s=min(subject_times),
        baseline_s=min(baseline_times),
        units=units,
        unit=unit,
    )


def report(cases: list[Case], out: Path | None = None) -> str:
    lines = [
        f"{'case':<36} {'subject':>10} {'baseline':>10} {'ratio':>7} {'subject rate':>18}",
    ]
    for case in cases:
        rate = case.units / case.subject_s if case.subject_s else float("inf")
        lines.append(
            f"{case.name:<36} {case.subject_s:>9.4f}s {case.baseline_s:>9.4f}s "
            f"{case.ratio:>6.2f}x {rate:>12,.0f} {case.unit}/s"
        )
    lines.append("")
    for case in cases:
        lines.append(f"- {case.name}: {case.subject}  vs  {case.baseline}")
    text = "\n".join(lines)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(
                {
                    "python": platform.python_version(),
                    "machine": platform.machine(),
                    "cases": [asdict(case) | {"ratio": case.ratio} for case in cases],
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    return text
