"""Bad configurations through the real ``check-config``: every line exact, exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from config_harness import Outcome


@dataclass(frozen=True)
class Case:
    """A bad file and the lines it must produce (``{tmp}`` is the file's folder)."""

    id: str
    text: str
    expected: tuple[str, ...]


def case(id: str, text: str, *expected: str) -> Case:
    return Case(id, text, expected)


CASES = [
    case(
        "yaml-syntax",
        """\
        symbl:
          app_id: test-app
          app_secret: [unclosed
        profiles: {}
        """,
        "config.yaml:4: YAML syntax error: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence)",
    ),
    case(
        "duplicate-key",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
          app_id: other-app
        """,
        "config.yaml:4: symbl.app_id: duplicate key; first given on line 2",
    ),
    case(
        "unknown-top-level-key",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        log_levle: debug
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:5: log_levle: unknown key; did you mean 'log_level'?",
    ),
    case(
        "unknown-profile-key",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            continuation_patern: '(?P<conversation>.+)-(?P<part>\\d+)'
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:7: profiles.default.continuation_patern: unknown key; "
        "did you mean 'continuation_pattern'?",
    ),
    case(
        "unknown-param",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            params:
              confidenceTreshold: 0.7
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:8: profiles.default.params.confidenceTreshold: unknown key; "
        "did you mean 'confidenceThreshold'?",
    ),
    case(
        "confidence-out-of-range",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            params:
              confidenceThreshold: 0.3
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:8: profiles.default.params.confidenceThreshold: must be between 0.5 and 1.0",
    ),
    case(
        "mode",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            params:
              mode: video
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:8: profiles.default.params.mode: must be one of 'phone' or 'default'",
    ),
    case(
        "language-code",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            params:
              languageCode: es-MX
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:8: profiles.default.params.languageCode: unsupported language 'es-MX'; "
        "did you mean 'es-US'?",
    ),
    case(
        "string-boolean-param",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            params:
              detectEntities: "true"
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:8: profiles.default.params.detectEntities: must be true or false",
    ),
    case(
        "speaker-count-zero",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            params:
              enableSpeakerDiarization: true
              diarizationSpeakerCount: 0
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:9: profiles.default.params.diarizationSpeakerCount: "
        "must be a positive integer",
    ),
    case(
        "speaker-count-fraction",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            params:
              diarizationSpeakerCount: 2.5
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:8: profiles.default.params.diarizationSpeakerCount: must be a whole number",
    ),
    case(
        "tracker-shape",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            params:
              trackers:
                - name: Promotion Mention
                - name: Pricing
                  vocabulary: []
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:9: profiles.default.params.trackers[0].vocabulary: is required",
        "config.yaml:11: profiles.default.params.trackers[1].vocabulary: must not be empty",
    ),
    case(
        "entities-shape",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            params:
              entities:
                - customType: Product
                  txt: Symbl Inbox
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:9: profiles.default.params.entities[0].text: is required",
        "config.yaml:10: profiles.default.params.entities[0].txt: unknown key; "
        "did you mean 'text'?",
    ),
    case(
        "channel-metadata-shape",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            params:
              enableSeparateRecognitionPerChannel: true
              channelMetadata:
                - channel: 1
                  speaker: Alice
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:11: profiles.default.params.channelMetadata[0].speaker: must be a mapping",
    ),
    case(
        "channel-metadata-without-per-channel",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            params:
              channelMetadata:
                - channel: 1
                  speaker: {name: Alice}
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:8: profiles.default.params.channelMetadata: "
        "needs enableSeparateRecognitionPerChannel: true",
    ),
    case(
        "diarization-language",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            params:
              languageCode: de-DE
              enableSpeakerDiarization: true
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:9: profiles.default.params.enableSpeakerDiarization: "
        "diarization supports English and Spanish only, not de-DE",
    ),
    case(
        "custom-vocabulary-shape",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            params:
              customVocabulary: discount
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:8: profiles.default.params.customVocabulary: must be a list",
    ),
    case(
        "unknown-extends",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default: {}
          sales:
            extends: defualt
        inboxes:
          - path: inbox
            profile: sales
        """,
        "config.yaml:8: profiles.sales.extends: unknown profile 'defualt'; did you mean 'default'?",
    ),
    case(
        "extends-cycle",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          a:
            extends: b
          b:
            extends: a
        inboxes:
          - path: inbox
            profile: a
        """,
        "config.yaml:7: profiles.a.extends: profiles extend each other in a cycle: a -> b -> a",
    ),
    case(
        "inherited-bad-value-at-parent",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            params:
              confidenceThreshold: 1.5
          sales:
            extends: default
            params:
              mode: phone
        inboxes:
          - path: inbox
            profile: sales
        """,
        "config.yaml:8: profiles.default.params.confidenceThreshold: must be between 0.5 and 1.0",
    ),
    case(
        "combination-wrong-only-in-child",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            params:
              enableSpeakerDiarization: true
          french:
            extends: default
            params:
              languageCode: fr-FR
        inboxes:
          - path: inbox
            profile: french
        """,
        "config.yaml:11: profiles.french.params.enableSpeakerDiarization: "
        "diarization supports English and Spanish only, not fr-FR",
    ),
    case(
        "missing-env-var",
        """\
        symbl:
          app_id: ${SYMBL_TEST_UNSET_VARIABLE}
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:2: symbl.app_id: environment variable SYMBL_TEST_UNSET_VARIABLE is not set",
    ),
    case(
        "secret-both-ways",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
          app_secret_file: secret.txt
        state_dir: state
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:4: symbl.app_secret_file: give app_secret or app_secret_file, not both",
    ),
    case(
        "secret-neither-way",
        """\
        symbl:
          app_id: test-app
        state_dir: state
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:1: symbl: needs app_secret or app_secret_file",
    ),
    case(
        "secret-file-missing",
        """\
        symbl:
          app_id: test-app
          app_secret_file: no-such-secret
        state_dir: state
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:3: symbl.app_secret_file: cannot read {tmp}/no-such-secret: "
        "No such file or directory",
    ),
    case(
        "secret-file-is-a-folder",
        """\
        symbl:
          app_id: test-app
          app_secret_file: inbox
        state_dir: state
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:3: symbl.app_secret_file: cannot read {tmp}/inbox: Is a directory",
    ),
    case(
        "unknown-inbox-profile",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          sales-calls: {}
        inboxes:
          - path: inbox
            profile: sales-call
        """,
        "config.yaml:9: inboxes[0].profile: unknown profile 'sales-call'; "
        "did you mean 'sales-calls'?",
    ),
    case(
        "inbox-missing",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default: {}
        inboxes:
          - path: no-such-inbox
            profile: default
        """,
        "config.yaml:8: inboxes[0].path: {tmp}/no-such-inbox does not exist",
    ),
    case(
        "inbox-is-a-file",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default: {}
        inboxes:
          - path: config.yaml
            profile: default
        """,
        "config.yaml:8: inboxes[0].path: {tmp}/config.yaml is not a folder",
    ),
    case(
        "duplicate-inbox",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
          - path: ./inbox/
            profile: default
        """,
        "config.yaml:10: inboxes[1].path: same folder as inboxes[0].path",
    ),
    case(
        "done-inside-another-recursive-inbox",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
            recursive: true
          - path: .
            profile: default
            done: inbox/archive
            exclude: [inbox/**]
        """,
        "config.yaml:13: inboxes[1].done: lies inside inboxes[0] ({tmp}/inbox), "
        "which is recursive; move it or add it to inboxes[0].exclude",
    ),
    case(
        "done-equals-failed",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
            done: filed
            failed: filed
        """,
        "config.yaml:11: inboxes[0].failed: same folder as inboxes[0].done",
    ),
    case(
        "done-is-the-inbox",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
            done: inbox
        """,
        "config.yaml:10: inboxes[0].done: must not be this inbox's own folder",
    ),
    case(
        "continuation-pattern-does-not-compile",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            continuation_pattern: '(?P<conversation>.+'
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:7: profiles.default.continuation_pattern: is not a valid regular expression: "
        "missing ), unterminated subpattern at position 0",
    ),
    case(
        "continuation-pattern-missing-group",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            continuation_pattern: '(?P<conversation>.+)-(\\d+)'
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:7: profiles.default.continuation_pattern: needs the named groups "
        "(?P<conversation>...) and (?P<part>...); missing: part",
    ),
    case(
        "bad-export-kind",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default:
            export: [transcript, sumary]
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:7: profiles.default.export[1]: unknown export 'sumary'; choose from "
        "transcript, messages, topics, questions, action_items, follow_ups, summary, entities, "
        "trackers, markdown, srt, vtt",
    ),
    case(
        "bad-watch-mode",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
            watch: fanotify
        """,
        "config.yaml:10: inboxes[0].watch: must be one of 'auto', 'inotify' or 'poll'",
    ),
    case(
        "string-boolean-in-inbox",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
            recursive: "true"
        """,
        "config.yaml:10: inboxes[0].recursive: must be true or false",
    ),
    case(
        "bad-http-listen",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
        http:
          listen: localhost
        """,
        "config.yaml:11: http.listen: must be HOST:PORT, e.g. 127.0.0.1:8080",
    ),
    case(
        "bad-base-url-and-job-cap",
        """\
        symbl:
          base_url: ftp://api.symbl.ai
          app_id: test-app
          app_secret: s3cret-value-for-tests
          max_concurrent_jobs: 0
        state_dir: state
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:2: symbl.base_url: must be an http:// or https:// URL",
        "config.yaml:5: symbl.max_concurrent_jobs: must be a positive integer",
    ),
    case(
        "no-inboxes-and-missing-profiles",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        inboxes: []
        """,
        "config.yaml:1: profiles: is required",
        "config.yaml:5: inboxes: must not be empty",
    ),
    case(
        "inbox-without-path",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        profiles:
          default: {}
        inboxes:
          - profile: default
            settle_seconds: -1
        """,
        "config.yaml:8: inboxes[0].path: is required",
        "config.yaml:9: inboxes[0].settle_seconds: must be 0 or more",
    ),
    case(
        "log-level-and-tracking",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        log_level: verbose
        tracking:
          poll_initial_seconds: 10
          poll_max_seconds: 5
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
            on_duplicate: ignore
        """,
        "config.yaml:5: log_level: must be one of 'debug', 'info', 'warning' or 'error'",
        "config.yaml:8: tracking.poll_max_seconds: must not be less than poll_initial_seconds",
        "config.yaml:14: inboxes[0].on_duplicate: must be one of 'upload' or 'skip'",
    ),
    case(
        "tracking-request-bounds",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        tracking:
          poll_max_seconds: 5
          poll_min_seconds: 6
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:7: tracking.poll_min_seconds: must not be more than poll_max_seconds",
    ),
    case(
        "tracking-account-budget",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        tracking:
          max_polls_per_second: 0
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:6: tracking.max_polls_per_second: must be greater than 0",
    ),
    case(
        "journal-retention",
        """\
        symbl:
          app_id: test-app
          app_secret: s3cret-value-for-tests
        state_dir: state
        journal:
          keep_filed_days: 0
          keep_days: 30
        profiles:
          default: {}
        inboxes:
          - path: inbox
            profile: default
        """,
        "config.yaml:6: journal.keep_filed_days: must be greater than 0",
        "config.yaml:7: journal.keep_days: unknown key; did you mean 'keep_filed_days'?",
    ),
    case(
        "empty-file",
        "",
        "config.yaml: must be a mapping of settings, not empty",
    ),
]


def expected_lines(case: Case, folder: Path) -> list[str]:
    return [f"{folder}/{line}".replace("{tmp}", str(folder)) for line in case.expected]


class TestEveryBadConfiguration:
    """Each bad file yields exactly its pointed lines on stderr and exit code 2."""

    @pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
    def test_reports_exact_lines(
        self,
        case: Case,
        folder: Path,
        write_config: Callable[[str], Path],
        check_config: Callable[[Path], Outcome],
    ) -> None:
        outcome = check_config(write_config(case.text))

        assert outcome.errors == expected_lines(case, folder)
        assert outcome.code == 2
        assert outcome.out == ""

    def test_cases_are_distinct(self) -> None:
        assert len({case.text for case in CASES}) == len(CASES) >= 30


class TestManyProblemsAtOnce:
    """Problems from every stage of checking are reported together, in line order."""

    def test_all_reported(
        self,
        folder: Path,
        write_config: Callable[[str], Path],
        check_config: Callable[[Path], Outcome],
    ) -> None:
        path = write_config(
            """\
            symbl:
              app_id: ${SYMBL_TEST_UNSET_VARIABLE}
              app_secret: s3cret-value-for-tests
              max_concurrent_uploads: many
            state_dir: state
            profiles:
              default:
                params:
                  languageCode: en-EN
                  mode: video
              sales:
                extends: nobody
            inboxes:
              - path: no-such-inbox
                profile: sales
              - path: inbox
                profile: defualt
                watch: sometimes
            """
        )

        outcome = check_config(path)

        assert outcome.errors == [
            f"{path}:2: symbl.app_id: environment variable SYMBL_TEST_UNSET_VARIABLE is not set",
            f"{path}:4: symbl.max_concurrent_uploads: must be an integer",
            f"{path}:9: profiles.default.params.languageCode: unsupported language 'en-EN'; "
            "did you mean 'en-IN'?",
            f"{path}:10: profiles.default.params.mode: must be one of 'phone' or 'default'",
            f"{path}:12: profiles.sales.extends: unknown profile 'nobody'",
            f"{path}:14: inboxes[0].path: {folder}/no-such-inbox does not exist",
            f"{path}:17: inboxes[1].profile: unknown profile 'defualt'; did you mean 'default'?",
            f"{path}:18: inboxes[1].watch: must be one of 'auto', 'inotify' or 'poll'",
        ]
        assert outcome.code == 2

    def test_broken_file_creates_no_folders(
        self,
        folder: Path,
        write_config: Callable[[str], Path],
        check_config: Callable[[Path], Outcome],
    ) -> None:
        path = write_config(
            """\
            symbl:
              app_id: test-app
              app_secret: s3cret-value-for-tests
            state_dir: state
            profiles:
              default: {params: {mode: video}}
            inboxes:
              - path: inbox
                profile: default
            """
        )

        assert check_config(path).code == 2
        assert sorted(child.name for child in folder.iterdir()) == ["config.yaml", "inbox"]
        assert list((folder / "inbox").iterdir()) == []


class TestFilesystemProblems:
    """Folders that exist but cannot serve are reported at the key that names them."""

    def test_empty_secret_file(
        self,
        folder: Path,
        write_config: Callable[[str], Path],
        check_config: Callable[[Path], Outcome],
    ) -> None:
        (folder / "secret").write_text("\n", encoding="utf-8")
        path = write_config(
            """\
            symbl:
              app_id: test-app
              app_secret_file: secret
            state_dir: state
            profiles: {default: {}}
            inboxes: [{path: inbox, profile: default}]
            """
        )

        outcome = check_config(path)

        assert outcome.errors == [f"{path}:3: symbl.app_secret_file: {folder}/secret is empty"]
        assert outcome.code == 2

    def test_done_cannot_be_created(
        self,
        folder: Path,
        write_config: Callable[[str], Path],
        check_config: Callable[[Path], Outcome],
    ) -> None:
        (folder / "plain-file").write_text("not a folder", encoding="utf-8")
        path = write_config(
            """\
            symbl:
              app_id: test-app
              app_secret: s3cret-value-for-tests
            state_dir: state
            profiles: {default: {}}
            inboxes:
              - path: inbox
                profile: default
                done: plain-file/done
            """
        )

        outcome = check_config(path)

        assert outcome.errors == [
            f"{path}:9: inboxes[0].done: cannot create {folder}/plain-file/done: Not a directory"
        ]
        assert outcome.code == 2

    def test_state_dir_is_a_file(
        self,
        folder: Path,
        write_config: Callable[[str], Path],
        check_config: Callable[[Path], Outcome],
    ) -> None:
        (folder / "state").write_text("not a folder", encoding="utf-8")
        path = write_config(
            """\
            symbl:
              app_id: test-app
              app_secret: s3cret-value-for-tests
            state_dir: state
            profiles: {default: {}}
            inboxes: [{path: inbox, profile: default}]
            """
        )

        outcome = check_config(path)

        assert outcome.errors == [f"{path}:4: state_dir: {folder}/state is not a folder"]
        assert outcome.code == 2

    @pytest.mark.skipif(
        os.geteuid() == 0, reason="root passes every permission check, so nothing is unwritable"
    )
    def test_inbox_not_writable(
        self,
        folder: Path,
        write_config: Callable[[str], Path],
        check_config: Callable[[Path], Outcome],
    ) -> None:
        (folder / "inbox").chmod(0o555)
        path = write_config(
            """\
            symbl:
              app_id: test-app
              app_secret: s3cret-value-for-tests
            state_dir: state
            profiles: {default: {}}
            inboxes: [{path: inbox, profile: default}]
            """
        )
        try:
            outcome = check_config(path)
        finally:
            (folder / "inbox").chmod(0o755)

        assert outcome.errors == [
            f"{path}:6: inboxes[0].path: {folder}/inbox is not readable and writable "
            f"by this user (uid {os.getuid()})"
        ]
        assert outcome.code == 2


class TestUnreadableConfigFile:
    """A configuration file that cannot be read is one clear line and exit code 2."""

    def test_missing_file(self, tmp_path: Path, check_config: Callable[[Path], Outcome]) -> None:
        path = tmp_path / "absent.yaml"

        outcome = check_config(path)

        assert outcome.errors == [
            f"{path}: cannot read the configuration file: No such file or directory"
        ]
        assert outcome.code == 2

    def test_folder_instead_of_file(
        self, tmp_path: Path, check_config: Callable[[Path], Outcome]
    ) -> None:
        outcome = check_config(tmp_path)

        assert outcome.errors == [f"{tmp_path}: cannot read the configuration file: Is a directory"]
        assert outcome.code == 2

    def test_not_utf8(self, tmp_path: Path, check_config: Callable[[Path], Outcome]) -> None:
        path = tmp_path / "latin1.yaml"
        path.write_bytes("symbl: {app_id: caf\xe9}\n".encode("latin-1"))

        outcome = check_config(path)

        assert outcome.errors == [f"{path}: the configuration file is not UTF-8 text"]
        assert outcome.code == 2


class TestRealProcess:
    """``python -m daemon check-config`` in a real process: the same lines, no traceback."""

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "daemon", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **(env or {})},
            check=False,
        )

    def test_bad_file(self, folder: Path, write_config: Callable[[str], Path]) -> None:
        path = write_config(CASES[5].text)

        result = self.run("--config", str(path), "check-config")

        assert result.returncode == 2
        assert result.stderr.splitlines() == expected_lines(CASES[5], folder)
        assert "Traceback" not in result.stderr

    def test_config_from_environment_variable(self, tmp_path: Path) -> None:
        path = tmp_path / "nowhere.yaml"

        result = self.run("check-config", env={"SYMBL_INBOX_CONFIG": str(path)})

        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            f"{path}: cannot read the configuration file: No such file or directory"
        ]
