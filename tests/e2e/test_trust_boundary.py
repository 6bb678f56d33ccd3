"""The inbox is a trust boundary: a second, unprivileged user drops what a hostile dropper would.

The daemon runs as a real process obeying file permissions (root without DAC override, as its
service user would); the dropper is uid/gid 65534 through ``setpriv``. Each attack happens while
a good file is dropped, and each test asserts what a dropper or an operator can observe: what
lies in done/ and failed/, the records, what the emulator received, log lines and answers.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from e2e_harness import DaemonHarness, wait_until, without_root_privileges

from daemon.emulator import EmulatorServer

DROPPER = 65534
SETPRIV = shutil.which("setpriv")
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or SETPRIV is None,
    reason="needs root and setpriv: the dropper must be a second, unprivileged user",
)


# ==================================================================== helpers


def as_dropper(code: str, *args: str | bytes | Path) -> None:
    """Run Python ``code`` as the unprivileged dropper (uid and gid 65534, no groups)."""
    assert SETPRIV is not None
    command: list[str | bytes] = [
        SETPRIV, f"--reuid={DROPPER}", f"--regid={DROPPER}", "--clear-groups",
        "/usr/bin/python3", "-c", code,
        *(os.fsencode(arg) if isinstance(arg, (str, Path)) else arg for arg in args),
    ]  # fmt: skip
    subprocess.run(command, check=True, timeout=30, cwd="/")


# The way writers should drop: write under a hidden name, then rename into place.
DROP = """
import os, shutil, sys
src, folder, name = sys.argv[1], os.fsencode(sys.argv[2]), os.fsencode(sys.argv[3])
hidden = os.path.join(folder, b".incoming")
shutil.copyfile(src, hidden)
os.rename(hidden, os.path.join(folder, name))
"""


def sox_wav(path: Path, seconds: float = 1.0, tone: int = 440) -> Path:
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", str(seconds),
         "sine", str(tone)],
        check=True,
    )  # fmt: skip
    path.chmod(0o644)
    return path


def sha256_file(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


class Boundary:
    """A daemon on a world-traversable folder, a staging area and the dropper's hands."""

    def __init__(self, root: Path, emulator: EmulatorServer, *, safe: bool, **options: Any):
        self.root = root
        self.staging = root / "staging"
        self.staging.mkdir(mode=0o755)
        inbox = root / "setup" / "inbox"
        inbox_options = dict(options.pop("inbox_options", {}))
        if not safe:  # the unsafe layout: done/ and failed/ inside a group-writable inbox
            inbox_options.update(done=str(inbox / "done"), failed=str(inbox / "failed"))
        self.harness = DaemonHarness(
            root / "setup", emulator, inbox_options=inbox_options, **options
        )
        (root / "setup").chmod(0o755)
        self.inbox = self.harness.inbox
        if not safe:
            self.harness.done, self.harness.failed = inbox / "done", inbox / "failed"
        self.inbox.chmod(0o1777 if safe else 0o777)
        self.tones = 300

    def start(self, *, limit_files: int | None = None) -> None:
        """Start the daemon obeying permissions (and, if asked, with that many descriptors)."""
        prefix = without_root_privileges()
        if limit_files is not None:
            prefix = ("prlimit", f"--nofile={limit_files}:{limit_files}", *prefix)
        self.harness.start(prefix=prefix)

    def good_wav(self) -> Path:
        self.tones += 7
        return sox_wav(self.staging / f"good-{self.tones}.wav", tone=self.tones)

    def drop(self, source: Path, name: str | bytes, folder: Path | None = None) -> None:
        as_dropper(DROP, source, folder or self.inbox, name)

    def drop_text(self, name: str, text: str) -> None:
        """Drop a file of ``text`` as the dropper (a bad "audio" file, a sidecar)."""
        source = self.staging / f"text-{len(list(self.staging.iterdir()))}"
        source.write_text(text)
        source.chmod(0o644)
        self.drop(source, name)

    def drop_good(self, name: str = "good.wav") -> str:
        """Drop a good WAV as the dropper; its sha256."""
        source = self.good_wav()
        self.drop(source, name)
        return sha256_file(source)

    def records(self, folder: Path, suffix: str) -> dict[str, dict[str, Any]]:
        """Records under ``folder`` by the file name they describe (their ``file`` field)."""
        found: dict[str, dict[str, Any]] = {}
        if not folder.exists():
            return found
        for path in folder.rglob(f"*{suffix}"):
            if path.name.startswith("."):
                continue
            try:
                record = json.loads(path.read_bytes())
            except (ValueError, OSError):
                continue
            name = record["file"]
            if "fileBase64" in record:
                name = os.fsdecode(base64.b64decode(record["fileBase64"]))
            found[name] = {**record, "_record": path}
        return found

    def done(self) -> dict[str, dict[str, Any]]:
        return self.records(self.harness.done, ".result.json")

    def failed(self) -> dict[str, dict[str, Any]]:
        return self.records(self.harness.failed, ".error.json")

    def wait_done(self, *names: str, timeout: float = 30) -> None:
        wait_until(
            lambda: all(name in self.done() for name in names),
            timeout,
            f"{names} in done/ (log:\n{self.harness.log_text()[-3000:]})",
        )

    def wait_failed(self, *names: str, timeout: float = 30) -> None:
        wait_until(
            lambda: all(name in self.failed() for name in names),
            timeout,
            f"{names} in failed/ (log:\n{self.harness.log_text()[-3000:]})",
        )

    def uploaded(self) -> set[str | None]:
        return {record.sha256 for record in self.harness.emulator.state.submissions}


@pytest.fixture
def world() -> Iterator[Path]:
    """A folder every user may traverse (pytest's own temporary folders are root's only)."""
    root = Path(tempfile.mkdtemp(prefix="symbl-trust-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def boundary(
    world: Path, emulator_factory: Callable[..., EmulatorServer]
) -> Iterator[Callable[..., Boundary]]:
    """``boundary(safe=..., **harness options)``: a setup in its own folder, killed at teardown."""
    made: list[Boundary] = []

    def make(*, safe: bool = True, **options: Any) -> Boundary:
        root = world / f"b{len(made)}"
        root.mkdir(mode=0o755)
        setup = Boundary(root, emulator_factory(), safe=safe, **options)
        made.append(setup)
        return setup

    yield make
    for setup in made:
        setup.harness.close()


def secret_wav(world: Path) -> tuple[Path, str]:
    """Audio only root may read (0600): what a dropper must never get uploaded."""
    path = sox_wav(world / f"private-{len(list(world.iterdir()))}.wav", seconds=2, tone=1234)
    path.chmod(0o600)
    return path, sha256_file(path)


# ==================================================================== symlinks


@pytest.mark.parametrize("watch", ["inotify", "poll"])
class TestSymlinks:
    """A symlink is an entry, never a way in: it moves to failed/ as a link; its target stays."""

    def test_symlinked_audio_sidecar_and_url_drop(
        self, boundary: Callable[..., Boundary], world: Path, watch: str
    ) -> None:
        setup = boundary(inbox_options={"watch": watch, "poll_interval_seconds": 0.2})
        private, private_sha = secret_wav(world)
        private_yaml = world / "private.url.yaml"
        private_yaml.write_text("url: https://example.invalid/secret.wav\n")
        private_yaml.chmod(0o600)
        setup.start()
        link = "import os, sys; os.symlink(sys.argv[1], os.path.join(sys.argv[2], sys.argv[3]))"
        as_dropper(link, private, setup.inbox, "stolen.wav")
        as_dropper(link, private_yaml, setup.inbox, "stolen.url.yaml")
        setup.drop(setup.good_wav(), "call.wav")
        as_dropper(link, private, setup.inbox, "call.wav.yaml")
        good = setup.drop_good()

        setup.wait_done("good.wav")
        setup.wait_failed("stolen.wav", "stolen.url.yaml", "call.wav")
        failed = setup.failed()
        for name in ("stolen.wav", "stolen.url.yaml"):
            assert failed[name]["reason"] == "not_a_regular_file"
            assert failed[name]["entryType"] == "symlink"
            assert (setup.harness.failed / name).is_symlink()
        assert failed["call.wav"]["reason"] == "not_a_regular_file"
        assert "sidecar" in failed["call.wav"]["message"]
        assert (setup.harness.failed / "call.wav.yaml").is_symlink()
        assert private_sha not in setup.uploaded() and good in setup.uploaded()
        assert not any(s.kind == "url" for s in setup.harness.emulator.state.submissions)
        assert sha256_file(private) == private_sha and private_yaml.exists()

    def test_symlinked_subfolder_is_never_entered(
        self, boundary: Callable[..., Boundary], world: Path, watch: str
    ) -> None:
        setup = boundary(
            inbox_options={"watch": watch, "poll_interval_seconds": 0.2, "recursive": True}
        )
        elsewhere = world / "elsewhere"
        elsewhere.mkdir(mode=0o755)
        outside = sox_wav(elsewhere / "outside.wav", tone=880)
        outside_sha = sha256_file(outside)
        setup.start()
        # A link out of the inbox, and two links back to it: followed, they never end.
        as_dropper(
            "import os, sys; d = sys.argv[2]; os.symlink(sys.argv[1], os.path.join(d, 'team'))\n"
            "for name in ('loop1', 'loop2'): os.symlink('.', os.path.join(d, name))",
            elsewhere,
            setup.inbox,
        )
        as_dropper("import os, sys; os.mkdir(os.path.join(sys.argv[1], 'real'))", setup.inbox)
        setup.drop(setup.good_wav(), "inner.wav", setup.inbox / "real")
        # Written through the link after the daemon looked: events and rescans see it too.
        sox_wav(elsewhere / "later.wav", tone=990)
        good = setup.drop_good()

        setup.wait_done("good.wav", "real/inner.wav")
        setup.harness.stop()
        assert outside.exists() and (elsewhere / "later.wav").exists()
        assert outside_sha not in setup.uploaded() and good in setup.uploaded()
        assert not any(name.startswith("team") for name in (*setup.done(), *setup.failed()))
        assert (setup.inbox / "team").is_symlink()


# ==================================================================== special files


class TestSpecialFiles:
    """FIFOs, sockets and device nodes are never opened: the entry itself goes to failed/."""

    def test_fifo_socket_and_device_node(self, boundary: Callable[..., Boundary]) -> None:
        setup = boundary()
        setup.start()
        as_dropper("import os, sys; os.mkfifo(os.path.join(sys.argv[1], 'pipe.wav'))", setup.inbox)
        as_dropper(
            "import os, socket, sys; s = socket.socket(socket.AF_UNIX);"
            " s.bind(os.path.join(sys.argv[1], 'sock.wav')); s.close()",
            setup.inbox,
        )
        os.mknod(setup.inbox / "dev.wav", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        good = setup.drop_good()

        setup.wait_done("good.wav")
        setup.wait_failed("pipe.wav", "sock.wav", "dev.wav")
        failed = setup.failed()
        kinds = {name: failed[name]["entryType"] for name in ("pipe.wav", "sock.wav", "dev.wav")}
        assert kinds == {"pipe.wav": "fifo", "sock.wav": "socket", "dev.wav": "character_device"}
        assert all(failed[name]["reason"] == "not_a_regular_file" for name in kinds)
        assert stat.S_ISFIFO((setup.harness.failed / "pipe.wav").lstat().st_mode)
        assert stat.S_ISSOCK((setup.harness.failed / "sock.wav").lstat().st_mode)
        assert stat.S_ISCHR((setup.harness.failed / "dev.wav").lstat().st_mode)
        assert setup.uploaded() == {good}
        assert not setup.harness.exited()


# ==================================================================== done/ and failed/


class TestFilingFolders:
    """A swapped failed/ stops filing there; records are never written through planted names."""

    def test_a_swapped_failed_folder_stops_filing_until_put_right(
        self, boundary: Callable[..., Boundary], world: Path
    ) -> None:
        setup = boundary(safe=False)
        setup.start()
        trap = world / "trap"
        trap.mkdir(mode=0o777)
        failed = setup.harness.failed
        as_dropper(
            "import os, sys; f = sys.argv[1]; os.rename(f, f + '.old'); os.symlink(sys.argv[2], f)",
            failed,
            trap,
        )
        setup.drop_text("notes.wav", "not audio\n")
        good = setup.drop_good()

        setup.wait_done("good.wav")
        wait_until(lambda: setup.harness.event_count("filing_stopped") >= 1, 20, "filing_stopped")
        stopped = next(e for e in setup.harness.events() if e["event"] == "filing_stopped")
        assert "no longer the folder" in stopped["message"] or "not a folder" in stopped["message"]
        assert list(trap.iterdir()) == []
        assert (setup.inbox / "notes.wav").exists()
        assert good in setup.uploaded()

        # A real folder of the dropper's own in its place is not adopted either.
        as_dropper("import os, sys; os.unlink(sys.argv[1]); os.mkdir(sys.argv[1], 0o777)", failed)
        wait_until(
            lambda: any(
                f"owned by uid {DROPPER}" in event.get("message", "")
                for event in setup.harness.events()
                if event["event"] == "filing_still_stopped"
            ),
            20,
            "the dropper's folder to be refused",
        )
        assert list(failed.iterdir()) == [] and (setup.inbox / "notes.wav").exists()

        # The operator puts it right; filing resumes by itself.
        failed.rmdir()
        Path(f"{failed}.old").rename(failed)
        setup.wait_failed("notes.wav")
        assert setup.failed()["notes.wav"]["reason"] == "not_audio"
        wait_until(lambda: setup.harness.event_count("filing_resumed") >= 1, 10, "filing_resumed")
        assert list(trap.iterdir()) == []

    def test_planted_record_names_are_never_written_through(
        self, boundary: Callable[..., Boundary], world: Path
    ) -> None:
        setup = boundary(safe=False)
        done = setup.harness.done
        done.mkdir(mode=0o777)  # an operator's mistake: droppers may write done/
        done.chmod(0o777)
        victim = world / "victim.txt"
        victim.write_text("only root writes this\n")
        victim.chmod(0o644)
        # The temporary names the daemon once wrote records under, and a record's own name.
        plant = (
            "import os, sys; d, v = sys.argv[1], sys.argv[2]\n"
            "for name in ('.symbl-inbox-tmp-good.wav.result.json', 'other.wav.result.json',\n"
            "             '.symbl-inbox-tmp-other.1.wav.result.json'):\n"
            "    os.symlink(v, os.path.join(d, name))\n"
        )
        as_dropper(plant, done, victim)
        setup.start()
        setup.drop(setup.good_wav(), "other.wav")
        good = setup.drop_good()

        setup.wait_done("good.wav", "other.wav")
        assert victim.read_text() == "only root writes this\n"
        assert setup.done()["good.wav"]["_record"].name == "good.wav.result.json"
        other = setup.done()["other.wav"]
        assert other["_record"].name != "other.wav.result.json"  # the planted name was taken
        assert (done / "other.wav.result.json").is_symlink()
        assert good in setup.uploaded()

    def test_failed_on_another_filesystem_gets_the_entries_themselves(
        self, boundary: Callable[..., Boundary], world: Path
    ) -> None:
        shm = Path("/dev/shm")
        if not shm.is_dir() or shm.stat().st_dev == world.stat().st_dev:
            pytest.skip("no /dev/shm on another filesystem than /tmp")
        failed = Path(tempfile.mkdtemp(prefix="symbl-trust-failed-", dir=shm))
        try:
            setup = boundary(inbox_options={"failed": str(failed)})
            setup.harness.failed = failed
            setup.start()
            as_dropper(
                "import os, sys; os.symlink('/etc/shadow', os.path.join(sys.argv[1], 'l.wav'));"
                " os.mkfifo(os.path.join(sys.argv[1], 'p.wav'))",
                setup.inbox,
            )
            setup.drop_text("notes.wav", "not audio\n")
            good = setup.drop_good()

            setup.wait_done("good.wav")
            setup.wait_failed("l.wav", "p.wav", "notes.wav")
            assert (failed / "l.wav").readlink() == Path("/etc/shadow")
            assert stat.S_ISFIFO((failed / "p.wav").lstat().st_mode)
            assert (failed / "notes.wav").read_text() == "not audio\n"
            assert not [p for p in setup.inbox.iterdir() if p.name.endswith(".wav")]
            assert good in setup.uploaded()
        finally:
            shutil.rmtree(failed, ignore_errors=True)


# ==================================================================== names


def name_cases() -> list[str]:
    return [
        os.fsdecode(b"caf\xe9-latin1.wav"),  # not UTF-8
        "line\nbreak \x1b[31mred\x1b[0m.wav",  # a newline and an escape sequence
        "a" * 251 + ".wav",  # 255 bytes, the most a name may have
    ]


class TestNames:
    """Any name the kernel allows is journaled, uploaded and filed; people see it escaped."""

    def test_names_of_any_bytes_at_startup_and_while_running(
        self, boundary: Callable[..., Boundary]
    ) -> None:
        setup = boundary(profile={"params": {"languageCode": "en-US"}, "export": ["transcript"]})
        names = name_cases()
        for name in names:  # present before the daemon starts
            setup.drop(setup.good_wav(), name)
        setup.drop_text("evil\x1b[2Jname.wav", "text\n")
        setup.start()
        later = [
            f"later-{name}" if "\n" in name else name.replace("a" * 6, "b" * 6, 1) for name in names
        ]
        for name in later:
            setup.drop(setup.good_wav(), name)
        good = setup.drop_good()

        setup.wait_done("good.wav", *names, *later)
        done = setup.done()
        for name in (*names, *later):
            assert (setup.harness.done / name).exists()
            assert done[name]["status"] == "completed"
        long_record = done["a" * 251 + ".wav"]
        assert long_record.get("recordNameShortened") is True
        assert len(os.fsencode(long_record["_record"].name)) <= 255
        assert (
            setup.harness.done
            / long_record["_record"].name.replace(".result.json", ".transcript.txt")
        ).exists()
        assert good in setup.uploaded()
        setup.wait_failed("evil\x1b[2Jname.wav")

        status = subprocess.run(
            [sys.executable, "-m", "daemon", "--config", str(setup.harness.config_path), "status"],
            capture_output=True,
            check=True,
        )
        assert b"\x1b" not in status.stdout and b"evil\\x1b[2Jname.wav" in status.stdout
        log = setup.harness.log_path.read_bytes()
        assert b"\x1b" not in log and b"\xe9" not in log


# ==================================================================== sidecars


class TestSidecars:
    """Sidecars are bounded, cannot steer requests and cannot set what the daemon owns."""

    BOMBS: ClassVar[dict[str, str]] = {
        "aliases.wav": "a: &a [x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "params: {name: *i}\n",
        "deep.wav": "params: " + "[" * 5000 + "]" * 5000 + "\n",
        "huge.wav": "conversation: big\n" + "# padding\n" * 8000,
        "inject.wav": "conversationId: '123/../../v1/job/abc?x=1'\n",
        "hook.wav": "params:\n  webhookUrl: http://127.0.0.1:9/steal\n",
    }

    def test_bombs_injections_and_owned_parameters_are_refused(
        self, boundary: Callable[..., Boundary]
    ) -> None:
        setup = boundary()
        setup.start()
        for name, text in self.BOMBS.items():
            setup.drop_text(f"{name}.yaml", text)
            setup.drop(setup.good_wav(), name)
        good = setup.drop_good()

        setup.wait_done("good.wav")
        setup.wait_failed(*self.BOMBS)
        failed = setup.failed()
        assert {failed[name]["reason"] for name in self.BOMBS} == {"bad_sidecar"}
        assert "aliases" in failed["aliases.wav"]["message"]
        assert "nested deeper" in failed["deep.wav"]["message"]
        assert "too large" in failed["huge.wav"]["message"]
        assert "conversationId: must be a Symbl conversationId" in failed["inject.wav"]["message"]
        assert "params.webhookUrl: is set by the daemon" in failed["hook.wav"]["message"]
        assert setup.uploaded() == {good}
        paths = [request.path for request in setup.harness.emulator.state.requests]
        assert not any("abc" in path or ".." in path for path in paths)

    def test_a_sidecar_the_dropper_could_not_read_is_never_echoed(
        self, boundary: Callable[..., Boundary]
    ) -> None:
        setup = boundary()
        setup.start()
        # Root's own 0600 file under a sidecar's name (as if moved in from elsewhere), and one
        # the dropper keeps to themselves: neither's content reaches a record or the log.
        for name, owner in (("roots.wav.yaml", 0), ("own.wav.yaml", DROPPER)):
            path = setup.inbox / f".{name}"
            path.write_text("sEcReT-PaSsWoRd: 1\n")
            path.chmod(0o600)
            os.chown(path, owner, owner)
            path.rename(setup.inbox / name)
            setup.drop(setup.good_wav(), name.removesuffix(".yaml"))
        setup.drop_good()
        setup.wait_failed("roots.wav", "own.wav")
        failed = setup.failed()
        assert failed["roots.wav"]["reason"] == "bad_sidecar"
        assert "withheld" in failed["roots.wav"]["message"]
        assert failed["own.wav"]["reason"] == "unreadable_file"
        assert "sEcReT" not in json.dumps(failed, default=str)
        assert "sEcReT" not in setup.harness.log_text()


# ==================================================================== readability


class TestReadability:
    """Records and transcripts are never more readable than the audio they describe."""

    def test_records_follow_the_audios_read_permissions(
        self, boundary: Callable[..., Boundary]
    ) -> None:
        setup = boundary(profile={"params": {"languageCode": "en-US"}, "export": ["transcript"]})
        setup.start()
        private = sox_wav(setup.staging / "private.wav", tone=555)
        private.chmod(0o600)
        hidden = setup.inbox / ".incoming-private"
        shutil.copyfile(private, hidden)
        hidden.chmod(0o600)
        hidden.rename(setup.inbox / "private.wav")  # an operator's own file: only root reads it
        setup.drop_good()

        setup.wait_done("good.wav", "private.wav")
        done = setup.harness.done
        assert stat.S_IMODE((done / "private.wav.result.json").stat().st_mode) == 0o600
        assert stat.S_IMODE((done / "private.wav.transcript.txt").stat().st_mode) == 0o600
        assert stat.S_IMODE((done / "good.wav.result.json").stat().st_mode) == 0o644
        with pytest.raises(subprocess.CalledProcessError):
            as_dropper("import sys; open(sys.argv[1]).read()", done / "private.wav.transcript.txt")
        as_dropper("import sys; open(sys.argv[1]).read()", done / "good.wav.transcript.txt")

    def test_audio_the_daemon_may_not_read_goes_to_failed_with_its_sidecar(
        self, boundary: Callable[..., Boundary]
    ) -> None:
        setup = boundary()
        setup.start()
        setup.drop_text("mine.wav.yaml", "conversation: mine\n")
        private = setup.good_wav()
        private_sha = sha256_file(private)
        as_dropper(
            "import os, shutil, sys; d = os.path.join(sys.argv[2], '.mine');"
            " shutil.copyfile(sys.argv[1], d); os.chmod(d, 0o600);"
            " os.rename(d, os.path.join(sys.argv[2], 'mine.wav'))",
            private,
            setup.inbox,
        )
        good = setup.drop_good()

        setup.wait_done("good.wav")
        setup.wait_failed("mine.wav")
        assert setup.failed()["mine.wav"]["reason"] == "unreadable_file"
        assert (setup.harness.failed / "mine.wav.yaml").exists()
        assert private_sha not in setup.uploaded() and good in setup.uploaded()


# ==================================================================== the endpoint


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TestEndpointUnderAbuse:
    """A flood of slow requests does not take /healthz, /metrics or uploads; the secret stays."""

    pytestmark = pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit")

    SECRET = "hook-secret-that-must-not-leak-7f3a"

    def test_slow_request_flood_and_the_webhook_secret(
        self, boundary: Callable[..., Boundary]
    ) -> None:
        port = free_port()
        setup = boundary(
            extra={
                "http": {
                    "listen": f"127.0.0.1:{port}",
                    "public_url": f"http://127.0.0.1:{port}",
                    "webhook_secret": self.SECRET,
                }
            }
        )
        # As under systemd's default of 1,024 descriptors: the flood alone would exhaust them.
        setup.start(limit_files=1024)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
        flood: list[socket.socket] = []
        try:
            for index in range(2000):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow-" + str(index).encode())
                flood.append(sock)
            started = time.monotonic()
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                assert client.get("/healthz").status_code == 200
                assert client.get("/metrics").status_code == 200
            assert time.monotonic() - started < 5
            good = setup.drop_good()
            setup.wait_done("good.wav")
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                assert client.get("/healthz").status_code == 200
        finally:
            for sock in flood:
                sock.close()
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert good in setup.uploaded()
        submission = next(s for s in setup.harness.emulator.state.submissions if s.sha256 == good)
        assert submission.params["webhookUrl"].endswith(self.SECRET)  # Symbl gets the real URL
        setup.harness.stop()
        record = (setup.harness.done / "good.wav.result.json").read_text()
        assert self.SECRET not in record and "/webhook/***" in record
        assert self.SECRET.encode() not in setup.harness.log_path.read_bytes()
        for path in setup.harness.state_dir.iterdir():
            if path.name.startswith("journal"):
                assert self.SECRET.encode() not in path.read_bytes()
