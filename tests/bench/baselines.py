"""Baselines the benchmark installs for itself: the official Symbl SDK, beside the project's venv.

The SDK (``symbl`` 2.0.6) pins dependencies the project does not want in its own environment
(``pyaudio`` among them, which needs PortAudio's headers to build), and its async-audio path
needs none of them but ``websocket-client`` and what the venv already has (``symbl-rest``,
``numpy``). So it is installed once, ``--no-deps``, with pip's ``--target`` into a folder of
the user's cache, and the children that measure it put that folder at the end of their
``sys.path`` (``SDK_FOLDER_ENV`` tells them where): it never shadows what the venv holds, and a
fresh clone's ``python tests/bench/run.py`` needs no manual step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SDK_VERSION = "2.0.6"
SDK_REQUIREMENTS = (f"symbl=={SDK_VERSION}", "websocket-client>=0.59")
# The environment variable that tells a child where the SDK was installed.
SDK_FOLDER_ENV = "SYMBL_INBOX_BENCH_SDK"
_INSTALLED_MARK = ".installed"
PIP_SECONDS = 300.0


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/symbl-inbox-bench``, else ``~/.cache/symbl-inbox-bench``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "symbl-inbox-bench"


def sdk_folder(root: Path | None = None) -> Path | None:
    """The folder holding the official SDK, installed there first if it is not yet; None (after
    saying why on stderr) when pip cannot install it, e.g. without access to the package index.
    """
    folder = (root or cache_root()) / f"symbl-{SDK_VERSION}"
    if (folder / _INSTALLED_MARK).exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Installed into a fresh folder and renamed into place: an interrupted install never looks
    # complete, and two runs at once do not write into one folder.
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += ["--no-deps", "--target", str(staging), *SDK_REQUIREMENTS]
    print(f"... installing the official SDK into {folder}", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_SECONDS)
    except subprocess.TimeoutExpired:
        done = None
    if done is None or done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        detail = "timed out" if done is None else done.stderr.strip()[-1000:]
        print(f"cannot install the official SDK ({detail}): its rows are skipped", file=sys.stderr)
        return None
    (staging / _INSTALLED_MARK).write_text(" ".join(SDK_REQUIREMENTS) + "\n")
    try:
        staging.rename(folder)
    except OSError:  # another run finished first: use its copy
        shutil.rmtree(staging, ignore_errors=True)
    return folder if (folder / _INSTALLED_MARK).exists() else None


def offer_sdk_to_children() -> Path | None:
    """Install the SDK if needed and tell every child started from now on where it is."""
    folder = sdk_folder()
    if folder is not None:
        os.environ[SDK_FOLDER_ENV] = str(folder)
    return folder


def add_sdk_to_path() -> None:
    """In a child: make the installed SDK importable, after everything the venv holds."""
    folder = os.environ.get(SDK_FOLDER_ENV)
    if folder and folder not in sys.path:
        sys.path.append(folder)
