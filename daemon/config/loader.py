"""From a YAML file to a checked ``Config``, or a ``ConfigError`` listing every problem in it.

The order: parse (syntax and duplicate keys stop here, nothing else can be trusted), expand
``${VAR}``, check the shape with the pydantic models, then the rules that need the whole file
(secrets, ``extends``, merged parameters, inbox profiles, folder layout), then the folders on disk.
Folders are created only when nothing else is wrong, so a broken file leaves no trace.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from daemon.config.envexpand import expand_env
from daemon.config.errors import ConfigError, ConfigProblem
from daemon.config.folders import (
    InboxFolders,
    create_filing_folders,
    create_folder,
    filesystem_warnings,
    filing_problems,
    inbox_problems,
    layout_problems,
    resolve_outside,
    state_dir_problems,
    trust_warnings,
)
from daemon.config.model import (
    Config,
    HttpSettings,
    Inbox,
    Profile,
    SymblSettings,
    TrackingSettings,
)
from daemon.config.profiles import Chain, inherited, resolve_chains, resolve_params, suggestion
from daemon.config.schema import ConfigFile, InboxSection, validate_file, validate_section
from daemon.config.yamlsource import YamlDocument, load_yaml_document
from daemon.logs import masker
from daemon.params import ParamProblem

DEFAULT_STATE_DIR = Path("/var/lib/symbl-inbox")
# systemd's StateDirectory= hands the service its state folder in this variable.
STATE_DIRECTORY_ENV = "STATE_DIRECTORY"
DEFAULT_CONTINUATION_WAIT_SECONDS = 86400.0

Location = tuple[str | int, ...]


SECRET_KEYS = frozenset({"app_secret", "app_secret_file", "webhook_secret", "webhook_secret_file"})


def load_config(
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    prepare_folders: bool = True,
    need_secrets: bool = True,
) -> Config:
    """Load and check ``path``; with ``prepare_folders`` also check and create the folders.

    ``need_secrets=False`` is for commands that never talk to Symbl (status, retry): secrets
    are neither read nor expanded, so an operator need not hold the service's credential;
    the Config they get has empty secrets.
    """
    document = load_yaml_document(_read_text(path), str(path))
    loading = _Loading(document, path, os.environ if environ is None else environ)
    return loading.run(prepare_folders=prepare_folders, need_secrets=need_secrets)


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        reason = f"cannot read the configuration file: {exc.strerror or exc}"
    except UnicodeDecodeError:
        reason = "the configuration file is not UTF-8 text"
    raise ConfigError([ConfigProblem(str(path), None, "", reason)])


def _mapping(value: Any) -> Mapping[Any, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else []


class _Loading:
    """One pass over one file; collects problems instead of stopping at the first."""

    def __init__(self, document: YamlDocument, path: Path, environ: Mapping[str, str]) -> None:
        self.document = document
        self.source = path.resolve()
        self.base = self.source.parent
        self.environ = environ
        self.problems: list[ParamProblem] = []
        self.warnings: list[ParamProblem] = []

    def run(self, *, prepare_folders: bool, need_secrets: bool = True) -> Config:
        data, env_problems = expand_env(self.document.data, self.environ)
        if not need_secrets:
            env_problems = [
                p for p in env_problems if not SECRET_KEYS.intersection(map(str, p.loc))
            ]
        self.problems.extend(env_problems)
        model, shape_problems = validate_file(data)
        self.problems.extend(shape_problems)
        raw = _mapping(data)
        app_secret: str | None = ""
        webhook_secret: str | None = None
        if need_secrets:
            app_secret = self._secret(raw.get("symbl"), ("symbl",), "app_secret", required=True)
            webhook_secret = self._secret(
                raw.get("http"), ("http",), "webhook_secret", required=False
            )
        profiles = _mapping(raw.get("profiles"))
        chains, chain_problems = resolve_chains(profiles)
        params, param_problems = resolve_params(profiles, chains)
        folders = self._inbox_folders(raw.get("inboxes"))
        state_dir = self._state_dir(raw.get("state_dir"))
        self.problems.extend(chain_problems + param_problems)
        self.problems.extend(self._unknown_inbox_profiles(raw.get("inboxes"), profiles))
        self.problems.extend(layout_problems(folders))
        if prepare_folders:
            self._prepare(folders, state_dir)
        if self.problems or model is None or app_secret is None:
            raise ConfigError(self._rendered(self.problems))
        return Config(
            source=self.source,
            symbl=_symbl_settings(model, app_secret),
            state_dir=state_dir,
            profiles=_profiles(model, chains, params),
            inboxes=tuple(
                _inbox(section, f) for section, f in zip(model.inboxes, folders, strict=True)
            ),
            log_level=model.log_level,
            tracking=TrackingSettings(**model.tracking.model_dump()),
            shutdown_timeout_seconds=float(model.shutdown_timeout_seconds),
            http=_http_settings(model, webhook_secret),
            warnings=tuple(str(problem) for problem in self._rendered(self.warnings)),
        )

    def _rendered(self, problems: Sequence[ParamProblem]) -> list[ConfigProblem]:
        unique = list(dict.fromkeys(self.document.problem(p.loc, p.message) for p in problems))
        return sorted(unique, key=lambda problem: problem.line or 0)

    def _has_problem_under(self, loc: Location) -> bool:
        return any(problem.loc[: len(loc)] == loc for problem in self.problems)

    def _path(self, text: str) -> Path:
        # Relative paths are relative to the configuration file, not to whoever runs the daemon.
        return (self.base / text).resolve()

    def _filing_path(self, text: str | None, inbox: Path, default: str) -> Path:
        """done/ or failed/ as given (or inside the inbox), resolved like any path except
        that no symlink below the inbox is followed: droppers may have made those."""
        if not text:
            return inbox / default
        return resolve_outside(Path(os.path.normpath(self.base / text)), inbox)

    # ------------------------------------------------------------ secrets

    def _secret(self, section: Any, loc: Location, key: str, *, required: bool) -> str | None:
        """The secret given inline or read from ``<key>_file``; exactly one of them."""
        if not isinstance(section, Mapping):
            return None
        file_key = f"{key}_file"
        inline, from_file = section.get(key), section.get(file_key)
        if inline is not None and from_file is not None:
            self.problems.append(
                ParamProblem((*loc, file_key), f"give {key} or {file_key}, not both")
            )
            return None
        if from_file is None:
            if inline is None and required:
                self.problems.append(ParamProblem(loc, f"needs {key} or {file_key}"))
            return inline if isinstance(inline, str) else None
        if not isinstance(from_file, str) or self._has_problem_under((*loc, file_key)):
            return None
        return self._read_secret(self._path(from_file), (*loc, file_key))

    def _read_secret(self, path: Path, loc: Location) -> str | None:
        try:
            # systemd credentials and `echo secret > file` end in a newline that is not the secret.
            secret = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            self.problems.append(ParamProblem(loc, f"cannot read {path}: {exc.strerror or exc}"))
            return None
        except UnicodeDecodeError:
            self.problems.append(ParamProblem(loc, f"{path} is not UTF-8 text"))
            return None
        if not secret.strip():
            self.problems.append(ParamProblem(loc, f"{path} is empty"))
            return None
        masker.register([secret])
        return secret

    # ------------------------------------------------------------ inboxes and folders

    def _unknown_inbox_profiles(
        self, inboxes: Any, profiles: Mapping[Any, Any]
    ) -> list[ParamProblem]:
        return [
            ParamProblem(
                ("inboxes", index, "profile"),
                f"unknown profile {name!r}{suggestion(name, map(str, profiles))}",
            )
            for index, inbox in enumerate(_items(inboxes))
            if isinstance(inbox, Mapping)
            and isinstance(name := inbox.get("profile"), str)
            and name not in profiles
        ]

    def _inbox_folders(self, inboxes: Any) -> list[InboxFolders]:
        """The folders of every inbox whose entry is sound; the others are already reported."""
        folders: list[InboxFolders] = []
        for index, raw in enumerate(_items(inboxes)):
            loc: Location = ("inboxes", index)
            section, _ = validate_section(InboxSection, raw, loc)
            if section is None or self._has_problem_under(loc):
                continue
            path = self._path(section.path)
            folders.append(
                InboxFolders(
                    index=index,
                    path=path,
                    done=self._filing_path(section.done, path, "done"),
                    failed=self._filing_path(section.failed, path, "failed"),
                    recursive=section.recursive,
                    exclude=tuple(section.exclude),
                )
            )
        return folders

    def _state_dir(self, given: Any) -> Path:
        if isinstance(given, str):
            return self._path(given)
        # StateDirectory= may list several folders, separated by colons; ours is the first.
        from_systemd = self.environ.get(STATE_DIRECTORY_ENV, "").split(":")[0]
        return self._path(from_systemd) if from_systemd else DEFAULT_STATE_DIR

    def _prepare(self, folders: Sequence[InboxFolders], state_dir: Path) -> None:
        for inbox in folders:
            self.problems.extend(inbox_problems(inbox) + filing_problems(inbox))
        if not self._has_problem_under(("state_dir",)):
            self.problems.extend(state_dir_problems(state_dir))
        if self.problems:
            return
        for inbox in folders:
            self.problems.extend(create_filing_folders(inbox))
        self.problems.extend(create_folder(state_dir, ("state_dir",)))
        for inbox in folders:
            self.warnings.extend(filesystem_warnings(inbox))
            self.warnings.extend(trust_warnings(inbox))


# ---------------------------------------------------------------- building the result


def _symbl_settings(model: ConfigFile, app_secret: str) -> SymblSettings:
    section = model.symbl
    masker.register([app_secret])
    return SymblSettings(
        base_url=section.base_url.rstrip("/"),
        app_id=section.app_id,
        app_secret=app_secret,
        max_concurrent_jobs=section.max_concurrent_jobs,
        max_concurrent_uploads=section.max_concurrent_uploads,
        connect_timeout_seconds=float(section.connect_timeout_seconds),
        token_refresh_margin_seconds=float(section.token_refresh_margin_seconds),
    )


def _http_settings(model: ConfigFile, webhook_secret: str | None) -> HttpSettings | None:
    if model.http is None:
        return None
    if webhook_secret:
        masker.register([webhook_secret])
    return HttpSettings(
        listen=model.http.listen, public_url=model.http.public_url, webhook_secret=webhook_secret
    )


def _profiles(
    model: ConfigFile, chains: Mapping[str, Chain], params: Mapping[str, dict[str, Any]]
) -> dict[str, Profile]:
    sections = model.profiles
    patterns = {name: section.continuation_pattern for name, section in sections.items()}
    waits = {name: section.continuation_wait_seconds for name, section in sections.items()}
    exports = {name: section.export for name, section in sections.items()}
    profiles: dict[str, Profile] = {}
    for name in sections:
        chain = chains[name]
        pattern = inherited(chain, patterns)
        wait = inherited(chain, waits)
        profiles[name] = Profile(
            name=name,
            params=params[name],
            continuation_pattern=re.compile(pattern) if pattern is not None else None,
            continuation_wait_seconds=(
                float(wait) if wait is not None else DEFAULT_CONTINUATION_WAIT_SECONDS
            ),
            export=tuple(inherited(chain, exports) or ()),
        )
    return profiles


def _inbox(section: InboxSection, folders: InboxFolders) -> Inbox:
    return Inbox(
        path=folders.path,
        profile=section.profile,
        done=folders.done,
        failed=folders.failed,
        watch=section.watch,
        recursive=section.recursive,
        settle_seconds=float(section.settle_seconds),
        rescan_seconds=float(section.rescan_seconds),
        poll_interval_seconds=float(section.poll_interval_seconds),
        on_duplicate=section.on_duplicate,
        exclude=tuple(section.exclude),
    )
