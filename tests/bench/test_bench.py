"""The benchmarks keep running: a quick pass of every case, timings not judged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_benchmark_runs_and_reports_a_ratio_against_its_baseline():
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    document = json.loads((ROOT / "bench" / "results" / "latest.json").read_text())
    names = [case["name"] for case in document["cases"]]
    # ranking, outbox x3, publish, reminder, digests and replies (email), --help and status (CLI)
    assert len(names) == 10
    assert all(case["baseline_s"] > 0 and case["ratio"] > 0 for case in document["cases"])
    for name in names:
        assert name in result.stdout
