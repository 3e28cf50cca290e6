"""Writing results: table formats shared by every command, and atomic file output."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from ulsam_nas.errors import InvalidInput

TABLE_FORMATS = ("markdown", "csv", "latex", "json")


def render_frame(frame: pd.DataFrame, fmt: str, notes: list[str] | None = None) -> str:
    """A DataFrame as Markdown (with notes below), CSV, or LaTeX (a booktabs tabular that
    compiles with pdflatex; notes as % comments: see ``ulsam_nas.latex``)."""
    notes = notes or []
    if fmt == "markdown":
        body = frame.to_markdown(index=False, disable_numparse=True)
        return (
            body + ("\n\n" + "\n".join(f"{i}. {n}" for i, n in enumerate(notes, 1)) if notes else "") + "\n"
        )
    if fmt == "csv":
        return str(frame.to_csv(index=False))
    if fmt == "latex":
        from ulsam_nas.latex import latex_table

        return latex_table(frame, notes)
    raise ValueError(f"unknown table format {fmt!r}")


def to_json(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def check_output_path(path: str | Path, flag: str = "", folder: bool = False) -> Path:
    """Refuse, before any work starts, an output path the run could not write: a folder where a
    file is wanted (or a file where a folder is), a parent that is a file, or a place where no
    file can be created.  Creating a probe file is the only reliable test of the last (for root
    ``os.access`` says yes to nearly everything, and ``/proc`` refuses new files to anyone); the
    probe is removed at once.  Returns the path; ``flag`` names it in the one-line refusal."""
    target = Path(path)
    kind = "folder" if folder else "file"
    named = f"{flag} {path}" if flag else str(path)
    if not str(path).strip():
        raise InvalidInput(f"{flag or 'the output path'} is empty; give a {kind} path")
    if target.is_dir():
        if not folder:
            raise InvalidInput(f"{named} is a folder; give a file path (e.g. {target / 'out.md'})")
    elif target.exists() or target.is_symlink():
        if folder or not target.is_file():
            raise InvalidInput(f"{named} is {'a file' if folder else 'not a regular file'}; give a {kind}")
    places = [target] if folder and target.is_dir() else []
    parent = (target.resolve() if target.is_symlink() else target.absolute()).parent
    while not parent.exists() and not parent.is_symlink():
        parent = parent.parent
    if not parent.is_dir():
        raise InvalidInput(f"{named}: {parent} is a file, not a folder")
    for place in [*places, parent]:
        try:
            fd, probe = tempfile.mkstemp(prefix=".ulsam-nas-probe.", dir=place)
        except OSError as error:
            raise InvalidInput(f"{named}: cannot write in {place} ({error.strerror or error})") from None
        os.close(fd)
        os.unlink(probe)
    return target


def write_atomic(path: str | Path, text: str | bytes) -> None:
    """Write ``text`` (or bytes) to ``path`` via a temporary file in the same folder and a
    rename, so a failure never leaves a half-written file.  A symbolic link stays one: its
    target is replaced."""
    target = Path(path).resolve() if Path(path).is_symlink() else Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file ordinary permissions
    try:
        if isinstance(text, bytes):
            with os.fdopen(fd, "wb") as binary:
                binary.write(text)
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_directory(target: str | Path, files: dict[str, str | bytes], keep: tuple[str, ...] = ()) -> None:
    """Write ``files`` (relative name -> content) as the folder ``target``: built in a temporary
    sibling folder and renamed into place, so a failure never leaves a half-written folder.
    Files named in ``keep`` are carried over from an existing ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp creates 0700
    try:
        for name, content in files.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        for name in keep:
            if (target / name).is_file() and name not in files:
                shutil.copy2(target / name, staging / name)
        if not target.exists():
            os.rename(staging, target)
            return
        previous = Path(tempfile.mkdtemp(prefix=f".{target.name}.previous.", dir=target.parent))
        os.rename(target, previous / "folder")
        try:
            os.rename(staging, target)
        except BaseException:
            os.rename(previous / "folder", target)
            raise
        shutil.rmtree(previous, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def emit(text: str, output: str | None) -> None:
    """Print ``text``, or write it atomically to ``output`` when given."""
    if output:
        write_atomic(output, text)
    else:
        sys.stdout.write(text)
