"""How fast the `palabre` command starts: `--help` and `status`, as a coordinator types them.

Each runs as a fresh process, as in a shell, against a baseline process that does the least a
Python command can (`python -c pass`), measured in the same run: the ratio is what we track.
`palabre --help` should stay a small multiple of it (it imports typer and nothing of the
database, Telegram or email layers); `palabre status` adds SQLAlchemy and one query.
Run alone with `.venv/bin/python -m bench.bench_cli`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.harness import Case, measure, report

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ess-plan.toml"


def _process(*args: str, env: dict[str, str]):
    def run() -> None:
        subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True, capture_output=True)

    return run


def cli_cases(*, quick: bool = False) -> list[Case]:
    """`palabre --help` and `palabre status` (on a SQLite file with the example consultation),
    each against `python -c pass`."""
    repeat = 3 if quick else 7
    with tempfile.TemporaryDirectory() as folder:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PALABRE_")}
        env.update(
            PALABRE_DATABASE_URL=f"sqlite:///{Path(folder) / 'palabre.db'}",
            PYTHONPATH=str(ROOT),
        )
        _process("-m", "palabre.cli", "init", str(EXAMPLE), env=env)()
        baseline = ("python -c pass (a bare interpreter start)", _process("-c", "pass", env=env))
        return [
            measure(
                "palabre --help (start-up)",
                subject=(
                    "python -m palabre.cli --help",
                    _process("-m", "palabre.cli", "--help", env=env),
                ),
                baseline=baseline,
                units=1,
                unit="starts",
                repeat=repeat,
            ),
            measure(
                "palabre status (start-up + query)",
                subject=(
                    "python -m palabre.cli status",
                    _process("-m", "palabre.cli", "status", env=env),
                ),
                baseline=baseline,
                units=1,
                unit="starts",
                repeat=repeat,
            ),
        ]


if __name__ == "__main__":
    print(report(cli_cases()))
