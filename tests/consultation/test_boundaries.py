"""The walls around the core: no transport inside it, no message without its templates.

These tests guard the whole tree rather than one module: the import check runs in a fresh
interpreter (pytest itself has loaded the bot and the mailer by now), and the template and
translation checks read every module that enqueues a message.
"""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import consultation

ROOT = Path(__file__).resolve().parents[2]
# The transports and every floor above the core: nothing below `palabre` imports it either.
FORBIDDEN = ("telegram", "aiosmtplib", "aioimaplib", "bot", "mailer", "scheduler", "palabre")
# `template="findings_published"` in a call, or a module constant `TEMPLATE = "reminder"`.
TEMPLATE_LITERAL = re.compile(r"""\btemplate\s*=\s*["']([A-Za-z0-9_.-]+)["']""")
TEMPLATE_CONSTANT = re.compile(
    r"""^\s*[A-Z_]*TEMPLATE[A-Z_]*\s*(?::\s*str\s*)?=\s*["']([A-Za-z0-9_.-]+)["']""", re.MULTILINE
)
SENDING_PACKAGES = ("consultation", "scheduler", "mailer")
# Written straight to the email channel (never through `notify`), so the Telegram sender never
# renders them: the email trio is all they need.
EMAIL_ONLY = {
    "digest",
    # The mailer's answers to a reply, by email where the reply came from: the receipt, the
    # warning about a reply from another address, and what the reply commands send back
    # (SUIVI/MINE, MES DONNÉES/MYDATA, OUBLIER/FORGET and its goodbye; Telegram has its own).
    "email_receipt",
    "email_sender_mismatch",
    "contributions",
    "data_export",
    "forget_confirm",
    "forgotten",
}


def core_modules() -> list[str]:
    return sorted(
        f"consultation.{module.name}" for module in pkgutil.iter_modules(consultation.__path__)
    )


def test_importing_the_core_pulls_in_no_transport():
    modules = core_modules()
    assert "consultation.questionnaires" in modules and "consultation.privacy" in modules
    program = "\n".join(
        [
            "import importlib, sys",
            f"for name in {modules!r}:",
            "    importlib.import_module(name)",
            f"forbidden = {FORBIDDEN!r}",
            "loaded = sorted({m for m in sys.modules if m.split('.')[0] in forbidden})",
            "print(' '.join(loaded))",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"the core imported: {done.stdout.strip()}"


def enqueued_templates() -> dict[str, set[str]]:
    """Template name → the source files that enqueue it."""
    found: dict[str, set[str]] = {}
    for package in SENDING_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            for pattern in (TEMPLATE_LITERAL, TEMPLATE_CONSTANT):
                for name in pattern.findall(source):
                    found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_message_the_core_or_the_scheduler_enqueues_has_templates_for_both_channels():
    names = enqueued_templates()
    assert {"questionnaire_opened", "final_plan"} <= set(names)
    missing = []
    for name, sources in sorted(names.items()):
        needed = [
            *([] if name in EMAIL_ONLY else [f"telegram/{name}.html"]),
            f"email/{name}.subject.txt",
            f"email/{name}.txt",
            f"email/{name}.html",
        ]
        for relative in needed:
            if not (ROOT / "templates" / relative).is_file():
                missing.append(f"templates/{relative} (enqueued in {', '.join(sorted(sources))})")
    assert not missing, "missing templates:\n" + "\n".join(missing)


def test_every_sentence_has_its_french_translation():
    done = subprocess.run(
        [sys.executable, "-m", "templates.i18n_tool", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
