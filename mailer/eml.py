"""The file backend's copies: `<mail_dir>/<timestamp>-<outbox id>.eml` (see `sender.FileTransport`).

They hold the recipient's address and the text sent, so forgetting a person removes theirs.
"""

from __future__ import annotations

from pathlib import Path


def remove_files(directory: Path, message_ids: list[int]) -> int:
    """Delete the `.eml` files of these outbox messages (a person asked to be forgotten)."""
    wanted = {str(message_id) for message_id in message_ids}
    removed = 0
    if not wanted or not directory.is_dir():
        return 0
    for path in directory.glob("*.eml"):
        if path.stem.rsplit("-", 1)[-1] in wanted:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
