"""Data files sent with a web request (an audit's table, a pairs file).

The server never reads a path a client names. A client sends the file's text instead; it is kept
under ``$EXPLAINLM_HOME/uploads/`` named by the SHA-256 of its content, so the run's stored spec
names a file that exists (the audit can be repeated or resumed from the CLI) and sending the same
file twice keeps one copy. Errors about it name the file as the client called it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from explainlm.errors import UserError
from explainlm.server.errors import ApiError

FORMATS = (".csv", ".tsv", ".jsonl", ".txt")


def upload_dir() -> Path:
    from explainlm.paths import home_dir

    return home_dir() / "uploads"


def save_upload(name: str, content: str, max_files: int) -> str:
    """Keep ``content`` as a file (content-addressed); returns its path.

    At most ``max_files`` distinct files are kept (each request sends one, within the body limit,
    so this bounds the disk the uploads take): a new one beyond that is refused (507); a file
    the server already keeps is always accepted.
    """
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise ApiError(400, f"upload {name!r}: use a {', '.join(FORMATS)} file")
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem)[:60] or "data"
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]
    folder = upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}-{stem}{suffix}"
    if not path.exists():
        kept = sum(1 for f in folder.iterdir() if f.suffix != ".part")
        if kept >= max_files:
            raise ApiError(
                507,
                f"upload {name!r}: this server keeps at most {max_files} uploaded files and has "
                "that many; send a file it already has, or ask its operator to clear "
                "$EXPLAINLM_HOME/uploads",
            )
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(path)
    return str(path)


class NamedUploads:
    """A service whose errors name each uploaded file as the client named it (not its path here)."""

    def __init__(self, service: Any, names: dict[str, str]) -> None:
        self.service = service
        self.names = names

    def run(self, request: Any, ctx: Any) -> Any:
        try:
            return self.service.run(request, ctx)
        except UserError as e:
            message = str(e)
            for path, name in self.names.items():
                message = message.replace(path, name)
            raise UserError(message) from None
