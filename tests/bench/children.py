"""Work the benchmarks run in a child process of their own, timed from inside the child.

``python tests/bench/children.py sdk-loop URL FOLDER``: the official SDK's
``process_file(..., wait=True)`` over every WAV in FOLDER, one after another.
``python tests/bench/children.py ours-upload URL FILE``: one ``SymblClient.submit_file``.
Each prints one JSON line: the seconds spent, without the interpreter's start-up.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from client_rss import APP_ID, APP_SECRET, SDK_MISSING_EXIT, import_sdk


def sdk_loop(base_url: str, folder: Path) -> int:
    symbl = import_sdk(base_url)
    if symbl is None:
        return SDK_MISSING_EXIT
    files = sorted(folder.glob("*.wav"))
    started = time.monotonic()
    statuses = []
    for audio in files:
        conversation = symbl.Audio.process_file(
            file_path=str(audio),
            credentials={"app_id": APP_ID, "app_secret": APP_SECRET},
            wait=True,
            parameters={"name": audio.name},
        )
        statuses.append(conversation.get_job_status())
    seconds = time.monotonic() - started
    print(json.dumps({"files": len(files), "seconds": seconds, "statuses": statuses}))
    return 0


def ours_upload(base_url: str, audio: Path) -> int:
    from daemon.config.model import SymblSettings
    from daemon.symbl.client import SymblClient

    async def upload() -> float:
        settings = SymblSettings(base_url=base_url, app_id=APP_ID, app_secret=APP_SECRET)
        async with SymblClient(settings) as client:
            started = time.monotonic()
            await client.submit_file(audio, {"name": "throughput"})
            return time.monotonic() - started

    seconds = asyncio.run(upload())
    print(json.dumps({"bytes": audio.stat().st_size, "seconds": seconds}))
    return 0


def main(argv: list[str]) -> int:
    kind, base_url, target = argv
    if kind == "sdk-loop":
        return sdk_loop(base_url, Path(target))
    if kind == "ours-upload":
        return ours_upload(base_url, Path(target))
    print(f"unknown child {kind!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
