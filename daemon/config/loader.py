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
from daemon.config.journal import cluster_settings, inbox_id_problems, journal_settings
from daemon.config.model import (
    Config,
    Hook,
    HttpSettings,
    Inbox,
    JournalSettings,
    Profile,
    SymblSettings,
    TrackingSettings,
)
from daemon.config.profiles import (
    Chain,
    convert_extra_installed,
    extras_warnings,
    inherited,
    resolve_chains,
    resolve_params,
    stereo_policy,
    suggestion,
)
from daemon.config.schema import (
    ConfigFile,
    HookSection,
    InboxSection,
    ProfileSection,
    validate_file,
    validate_section,
)
from daemon.config.yamlsource import YamlDocument, load_yaml_document
from daemon.logs import masker
from daemon.params import ParamProblem
from daemon.symbl.network import (
    ca_file_problem,
    environment_proxy_problem,
    proxy_password_in,
    without_password,
)

DEFAULT_STATE_DIR = Path("/var/lib/symbl-inbox")
# systemd's StateDirectory= hands the service its state folder in this variable.
STATE_DIRECTORY_ENV = "STATE_DIRECTORY"
DEFAULT_CONTINUATION_WAIT_SECONDS = 86400.0

Location = tuple[str | int, ...]


SECRET_KEYS = frozenset(
    {
        "app_secret",
        "app_secret_file",
        "webhook_secret",
        "webhook_secret_file",
        "proxy_password_file",
    }
)


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
        proxy_password: str | None = None
        if need_secrets:
            app_secret = self._secret(raw.get("symbl"), ("symbl",), "app_secret", required=True)
            webhook_secret = self._secret(
                raw.get("http"), ("http",), "webhook_secret", required=False
            )
            proxy_password = self._proxy_password(_mapping(raw.get("symbl")))
        ca_file = self._ca_file(_mapping(raw.get("symbl")).get("ca_file"))
        # Read even for status and retry: they read the shared journal too.
        journal = self._journal(model)
        self.problems.extend(inbox_id_problems(raw.get("inboxes"), shared=journal is not None))
        # Only for commands that talk to Symbl: status and retry never use the network.
        if need_secrets and model is not None and model.symbl.proxy is None:
            proxy_problem = environment_proxy_problem(model.symbl.base_url, self.environ)
            if proxy_problem is not None:
                self.problems.append(ParamProblem(("symbl",), proxy_problem))
        profiles = _mapping(raw.get("profiles"))
        chains, chain_problems = resolve_chains(profiles)
        params, param_problems = resolve_params(profiles, chains)
        folders = self._inbox_folders(raw.get("inboxes"))
        state_dir = self._state_dir(raw.get("state_dir"))
        self.problems.extend(chain_problems + param_problems)
        self.warnings.extend(extras_warnings(profiles, convert_extra_installed()))
        self.problems.extend(self._unknown_inbox_profiles(raw.get("inboxes"), profiles))
        self.problems.extend(layout_problems(folders))
        self.problems.extend(_notify_url_problems(model))
        if prepare_folders:
            self._prepare(folders, state_dir)
        if model is not None:
            self.warnings.extend(_summary_warnings(model, chains, params))
        if self.problems or model is None or app_secret is None:
            raise ConfigError(self._rendered(self.problems))
        return Config(
            source=self.source,
            symbl=_symbl_settings(model, app_secret, proxy_password, ca_file),
            state_dir=state_dir,
            profiles=_profiles(model, chains, params),
            inboxes=tuple(
                _inbox(section, f) for section, f in zip(model.inboxes, folders, strict=True)
            ),
            log_level=model.log_level,
            tracking=TrackingSettings(**model.tracking.model_dump()),
            shutdown_timeout_seconds=float(model.shutdown_timeout_seconds),
            http=_http_settings(model, webhook_secret),
            hooks=_hooks(model.hooks, "hooks"),
            warnings=tuple(str(problem) for problem in self._rendered(self.warnings)),
            journal=journal,
            cluster=cluster_settings(model.cluster),
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

    def _proxy_password(self, symbl: Mapping[Any, Any]) -> str | None:
        """The password from ``proxy_password_file``, or the one written into ``proxy``."""
        given = symbl.get("proxy_password_file")
        loc: Location = ("symbl", "proxy_password_file")
        if isinstance(given, str) and not self._has_problem_under(loc):
            return self._read_secret(self._path(given), loc)
        proxy = symbl.get("proxy")
        inline = proxy_password_in(proxy) if isinstance(proxy, str) else None
        if inline:
            masker.register([inline])
        return inline

    def _journal(self, model: ConfigFile | None) -> JournalSettings | None:
        """``journal``, its password taken from the URL, ``password`` or ``password_file``."""
        if model is None or model.journal is None:
            return None
        section = model.journal
        given = {"password": section.password, "password_file": section.password_file}
        password = self._secret(given, ("journal",), "password", required=False)
        settings, problems = journal_settings(section, password)
        self.problems.extend(problems)
        return settings

    def _ca_file(self, given: Any) -> Path | None:
        """The CA bundle, checked now: readable PEM with at least one certificate."""
        loc: Location = ("symbl", "ca_file")
        if not isinstance(given, str) or self._has_problem_under(loc):
            return None
        path = self._path(given)
        problem = ca_file_problem(path)
        if problem is not None:
            self.problems.append(ParamProblem(loc, problem))
            return None
        return path

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


def _symbl_settings(
    model: ConfigFile, app_secret: str, proxy_password: str | None, ca_file: Path | None
) -> SymblSettings:
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
        unreachable_after_seconds=float(section.unreachable_after_seconds),
        proxy=without_password(section.proxy) if section.proxy else None,
        proxy_password=proxy_password,
        ca_file=ca_file,
        ca_mode=section.ca_mode,
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
    hooks = {
        name: _hooks(section.hooks, f"profiles.{name}.hooks") if section.hooks is not None else None
        for name, section in sections.items()
    }
    stereos = {name: section.stereo for name, section in sections.items()}
    converts = {name: section.convert for name, section in sections.items()}
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
            hooks=inherited(chain, hooks) or (),
            stereo=stereo_policy(inherited(chain, stereos), params[name]),
            convert=bool(inherited(chain, converts)),
            transcript_options=_transcript_options(chain, sections),
        )
    return profiles


def _hooks(sections: Sequence[HookSection], where: str) -> tuple[Hook, ...]:
    # Notification and ping URLs carry passwords and tokens: never logged, printed or sent.
    masker.register(url for section in sections for url in section.notify or ())
    masker.register(section.ping for section in sections if section.ping)
    return tuple(
        Hook(
            events=tuple(section.on or ()),
            notify=tuple(section.notify or ()),
            command=tuple(section.command or ()),
            timeout_seconds=float(section.timeout_seconds),
            ping=section.ping,
            interval_seconds=float(section.interval_seconds),
            retries=section.retries,
            group_seconds=float(section.group_seconds),
            where=f"{where}[{index}]",
        )
        for index, section in enumerate(sections)
    )


def _notify_url_problems(model: ConfigFile | None) -> list[ParamProblem]:
    """Notification URLs Apprise does not understand (checked only when there are some)."""
    if model is None:
        return []
    located: list[tuple[Location, str]] = []
    lists: list[tuple[Location, list[HookSection]]] = [(("hooks",), model.hooks)] + [
        (("profiles", name, "hooks"), section.hooks or [])
        for name, section in model.profiles.items()
    ]
    for loc, hooks in lists:
        for index, hook in enumerate(hooks):
            for position, url in enumerate(hook.notify or ()):
                located.append(((*loc, index, "notify", position), url))
    if not located:
        return []
    from daemon.hooks import notify_url_problem  # imports Apprise, a third of a second

    problems = []
    for loc, url in located:
        message = notify_url_problem(url)
        if message is not None:
            problems.append(ParamProblem(loc, message))
    return problems


def _summary_warnings(
    model: ConfigFile, chains: Mapping[str, Chain], params: Mapping[str, dict[str, Any]]
) -> list[ParamProblem]:
    """Symbl summarises only conversations submitted with enableSummary: say so up front."""
    exports = {name: section.export for name, section in model.profiles.items()}
    return [
        ParamProblem(
            ("profiles", name, "export"),
            "exports summary, but params.enableSummary is not true: Symbl will have none",
        )
        for name, chain in chains.items()
        if name in params
        and "summary" in (inherited(chain, exports) or ())
        and params[name].get("enableSummary") is not True
    ]


def _transcript_options(chain: Chain, sections: Mapping[str, ProfileSection]) -> dict[str, bool]:
    """The formatting flags set along the ``extends`` chain, each from the nearest profile."""
    options: dict[str, bool] = {}
    for name in chain:  # parent first, so the child's own flags win
        section = sections[name].transcript_options
        if section is not None:
            options.update(section.model_dump(exclude_none=True))
    return options


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
        id=section.id or "",
    )
