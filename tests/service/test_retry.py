"""``retry`` sends failed files back to their inbox, keeps their error record, clears the count."""

from __future__ import annotations

from collections.abc import Callable

from service_harness import DaemonProcess, Site, wait_for

from daemon.files.samples import make_wav

BAD_SIDECAR = "params:\n  confidenceThreshold: 5\n"
GOOD_SIDECAR = "params:\n  confidenceThreshold: 0.7\n"
NOT_AUDIO = b"not audio at all\n"


def retried_records(site: Site, name: str) -> list[str]:
    return sorted(path.name for path in site.failed.glob(f"{name}.error.json.retried-*"))


def filed_counts(site: Site) -> tuple[int, int]:
    counts = site.cli_json("status")["inboxes"][0]["counts"]
    return counts["filed_done"], counts["filed_failed"]


class TestRetryWhileRunning:
    """A fixed failure goes back to the inbox and the running daemon processes it again."""

    def test_fixed_sidecar_then_retry_reaches_done(
        self, site: Site, start_daemon: Callable[..., DaemonProcess]
    ) -> None:
        daemon = start_daemon(site)
        daemon.wait_ready()
        (site.inbox / "call.wav.yaml").write_text(BAD_SIDECAR)
        (site.inbox / "call.wav").write_bytes(make_wav(1.0))
        error = site.wait_failed("call.wav")
        assert error["reason"] == "bad_sidecar"
        assert filed_counts(site) == (0, 1)
        (site.failed / "call.wav.yaml").write_text(GOOD_SIDECAR)

        result = site.cli("retry", str(site.failed / "call.wav"))

        assert result.returncode == 0, result.stderr
        assert f"{site.failed / 'call.wav'} -> {site.inbox / 'call.wav'} (bad_sidecar)" in (
            result.stdout
        )
        done = site.wait_done("call.wav")
        assert done["parameters"]["confidenceThreshold"] == 0.7
        assert (site.done / "call.wav.yaml").read_text() == GOOD_SIDECAR
        assert not (site.failed / "call.wav").exists()
        assert not (site.failed / "call.wav.error.json").exists()
        [kept] = retried_records(site, "call.wav")
        assert (site.failed / kept).read_text().count("bad_sidecar") >= 1
        wait_for(lambda: filed_counts(site) == (1, 0), "status counting the retry as done")
        assert daemon.stop() == 0


class TestRetrySelection:
    """PATH, --all and --reason choose which failures go back; anything else is a usage error."""

    def make_two_failures(
        self, site: Site, start_daemon: Callable[..., DaemonProcess]
    ) -> DaemonProcess:
        daemon = start_daemon(site)
        daemon.wait_ready()
        (site.inbox / "notes.wav").write_bytes(NOT_AUDIO)
        (site.inbox / "tuned.wav.yaml").write_text(BAD_SIDECAR)
        (site.inbox / "tuned.wav").write_bytes(make_wav(0.5))
        assert site.wait_failed("notes.wav")["reason"] == "not_audio"
        assert site.wait_failed("tuned.wav")["reason"] == "bad_sidecar"
        assert daemon.stop() == 0
        return daemon

    def test_reason_moves_only_that_reason(
        self, site: Site, start_daemon: Callable[..., DaemonProcess]
    ) -> None:
        self.make_two_failures(site, start_daemon)

        result = site.cli("retry", "--reason", "not_audio")

        assert result.returncode == 0, result.stderr
        assert (site.inbox / "notes.wav").read_bytes() == NOT_AUDIO
        assert not (site.failed / "notes.wav").exists()
        assert len(retried_records(site, "notes.wav")) == 1
        assert (site.failed / "tuned.wav").exists()
        assert (site.failed / "tuned.wav.error.json").exists()
        assert "notes.wav" in result.stdout and "tuned.wav" not in result.stdout
        report = site.cli_json("status")
        assert report["inboxes"][0]["counts"]["filed_failed"] == 1
        assert [failure["file"] for failure in report["recent_failures"]] == ["tuned.wav"]

    def test_all_moves_every_failure_with_its_sidecar(
        self, site: Site, start_daemon: Callable[..., DaemonProcess]
    ) -> None:
        self.make_two_failures(site, start_daemon)

        result = site.cli("retry", "--all")

        assert result.returncode == 0, result.stderr
        assert sorted(path.name for path in site.inbox.iterdir()) == [
            "notes.wav",
            "tuned.wav",
            "tuned.wav.yaml",
        ]
        assert (site.inbox / "tuned.wav.yaml").read_text() == BAD_SIDECAR
        assert filed_counts(site) == (0, 0)
        assert site.cli("retry", "--all").stdout == "Nothing to retry.\n"

    def test_a_taken_name_in_the_inbox_gets_a_free_one(
        self, site: Site, start_daemon: Callable[..., DaemonProcess]
    ) -> None:
        self.make_two_failures(site, start_daemon)
        (site.inbox / "notes.wav").write_bytes(b"someone dropped a new one meanwhile")

        # Relative to the working directory, and named twice: it moves once.
        result = site.cli("retry", "failed/notes.wav", str(site.failed / "notes.wav"))

        assert result.returncode == 0, result.stderr
        assert (site.inbox / "notes.wav").read_bytes() == b"someone dropped a new one meanwhile"
        assert (site.inbox / "notes.1.wav").read_bytes() == NOT_AUDIO
        assert str(site.inbox / "notes.1.wav") in result.stdout
        assert result.stdout.count(" -> ") == 1

    def test_paths_that_are_not_failed_files_are_refused(
        self, site: Site, start_daemon: Callable[..., DaemonProcess]
    ) -> None:
        self.make_two_failures(site, start_daemon)
        (site.done / "elsewhere.wav").write_bytes(make_wav(0.2))
        (site.failed / "orphan.wav").write_bytes(make_wav(0.2))

        for path, complaint in (
            (site.done / "elsewhere.wav", "not in the failed folder of any inbox"),
            (site.failed / "missing.wav", "no such file"),
            (site.failed / "orphan.wav", "has no .error.json beside it"),
        ):
            result = site.cli("retry", str(site.failed / "notes.wav"), str(path))
            assert result.returncode == 2, result.stdout
            assert complaint in result.stderr
            # One bad PATH stops the whole command before anything moves.
            assert (site.failed / "notes.wav").exists()
            assert not (site.inbox / "notes.wav").exists()

    def test_exactly_one_way_of_choosing(self, site: Site) -> None:
        for args in ((), ("--all", "--reason", "not_audio"), ("--all", "x.wav")):
            result = site.cli("retry", *args)
            assert result.returncode == 2
            assert "one" in result.stderr
