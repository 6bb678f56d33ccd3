"""The configuration file's keys and their rules, as pydantic models.

These models check the shape of the file (types, ranges, unknown keys). Rules that need the whole
file (``extends`` chains, merged Symbl parameters, secrets on disk, folders) live in the loader.
Pydantic's errors are translated into our own short messages by ``translate_errors``.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from daemon.config.model import (
    EXPORT_KINDS,
    PROXY_SCHEMES,
    CaMode,
    DuplicatePolicy,
    StereoPolicy,
    WatchMode,
)
from daemon.params import NonBlank, ParamProblem, PositiveInt, unknown_key_message

DEFAULT_BASE_URL = "https://api.symbl.ai"
CONTINUATION_GROUPS = ("conversation", "part")
LogLevel = Literal["debug", "info", "warning", "error"]
_AT_KEY = "config_at_key"
M = TypeVar("M", bound=BaseModel)


def at_key(key: str, message: str) -> PydanticCustomError:
    """An error a model-level rule raises about one of its keys (the loc then names that key)."""
    return PydanticCustomError(_AT_KEY, message, {"key": key})


def _positive(value: float) -> float:
    if value <= 0:
        raise PydanticCustomError("positive", "must be greater than 0")
    return value


def _not_negative(value: float) -> float:
    if value < 0:
        raise PydanticCustomError("not_negative", "must be 0 or more")
    return value


def _at_least_one(value: float) -> float:
    if value < 1:
        raise PydanticCustomError("at_least_one", "must be 1 or more")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PydanticCustomError("url", "must be an http:// or https:// URL")
    return value


def _proxy_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        raise PydanticCustomError(
            "proxy", "must be a proxy URL such as http://proxy.example.com:3128"
        )
    try:
        _ = parts.port  # urlsplit checks the port only when it is read
    except ValueError:
        raise PydanticCustomError("proxy", "has a port that is not a number 1-65535") from None
    return value


def _listen_address(value: str) -> str:
    host, colon, port = value.rpartition(":")
    host_ok = bool(host.strip("[]")) and " " not in host
    if not (colon and host_ok and port.isdigit() and 1 <= int(port) <= 65535):
        raise PydanticCustomError("listen", "must be HOST:PORT, e.g. 127.0.0.1:8080")
    return value


def _postgres_url(value: str) -> str:
    from daemon.config.pgurl import url_problem

    problem = url_problem(value)
    if problem is not None:
        raise PydanticCustomError("postgres_url", problem)
    return value


def _continuation_pattern(value: str) -> str:
    try:
        compiled = re.compile(value)
    except re.error as exc:
        raise PydanticCustomError(
            "regex", "is not a valid regular expression: {reason}", {"reason": str(exc)}
        ) from None
    missing = [name for name in CONTINUATION_GROUPS if name not in compiled.groupindex]
    if missing:
        raise PydanticCustomError(
            "regex_groups",
            "needs the named groups (?P<conversation>...) and (?P<part>...); missing: {missing}",
            {"missing": ", ".join(missing)},
        )
    return value


def _export_kind(value: str) -> str:
    if value not in EXPORT_KINDS:
        raise PydanticCustomError(
            "export",
            "unknown export {value}; choose from {choices}",
            {"value": repr(value), "choices": ", ".join(EXPORT_KINDS)},
        )
    return value


PositiveSeconds = Annotated[float, AfterValidator(_positive)]
NonNegativeInt = Annotated[int, AfterValidator(_not_negative)]
NonNegativeSeconds = Annotated[float, AfterValidator(_not_negative)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
ProxyUrl = Annotated[str, AfterValidator(_proxy_url)]
ListenAddress = Annotated[str, AfterValidator(_listen_address)]
PostgresUrl = Annotated[str, AfterValidator(_postgres_url)]
ContinuationPattern = Annotated[str, AfterValidator(_continuation_pattern)]
ExportKind = Annotated[str, AfterValidator(_export_kind)]


class _Section(BaseModel):
    # strict: a quoted "true" is not a boolean and "10" is not a number; YAML says what it means.
    model_config = ConfigDict(extra="forbid", strict=True)


class SymblSection(_Section):
    """``symbl``: the account and how hard the daemon may use it."""

    base_url: HttpUrl = DEFAULT_BASE_URL
    app_id: NonBlank
    app_secret: NonBlank | None = None
    app_secret_file: NonBlank | None = None
    max_concurrent_jobs: PositiveInt = 50
    max_concurrent_uploads: PositiveInt = 4
    connect_timeout_seconds: PositiveSeconds = 10.0
    token_refresh_margin_seconds: NonNegativeSeconds = 300.0
    unreachable_after_seconds: PositiveSeconds = 120.0
    proxy: ProxyUrl | None = None
    proxy_password_file: NonBlank | None = None
    ca_file: NonBlank | None = None
    ca_mode: CaMode = "add"

    @model_validator(mode="after")
    def _keys_that_need_another(self) -> SymblSection:
        if self.proxy_password_file is not None and self.proxy is None:
            raise at_key("proxy_password_file", "needs symbl.proxy")
        if self.ca_mode == "replace" and self.ca_file is None:
            raise at_key("ca_mode", "replace needs symbl.ca_file")
        return self


class TrackingSection(_Section):
    """``tracking``: how job status is polled."""

    poll_initial_seconds: PositiveSeconds = 1.0
    poll_max_seconds: PositiveSeconds = 30.0
    poll_backoff_factor: Annotated[float, AfterValidator(_at_least_one)] = 1.5

    @model_validator(mode="after")
    def _max_not_below_initial(self) -> TrackingSection:
        if self.poll_max_seconds < self.poll_initial_seconds:
            raise at_key("poll_max_seconds", "must not be less than poll_initial_seconds")
        return self


class HttpSection(_Section):
    """``http``: the endpoint for webhooks and metrics."""

    listen: ListenAddress
    public_url: HttpUrl | None = None
    webhook_secret: NonBlank | None = None
    webhook_secret_file: NonBlank | None = None


class JournalSection(_Section):
    """``journal``: a PostgreSQL journal shared by several hosts (absent: SQLite in state_dir)."""

    url: PostgresUrl
    password: NonBlank | None = None
    password_file: NonBlank | None = None
    connect_timeout_seconds: PositiveSeconds = 10.0


class ClusterSection(_Section):
    """``cluster``: this host's name among the hosts that share a journal, and its lease."""

    host_id: NonBlank | None = None
    lease_seconds: PositiveSeconds = 30.0
    heartbeat_seconds: PositiveSeconds = 10.0

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> ClusterSection:
        if self.heartbeat_seconds >= self.lease_seconds:
            raise at_key(
                "heartbeat_seconds",
                "must be less than lease_seconds (a host renews its lease by its heartbeat)",
            )
        return self


HookEvent = Literal["done", "failed", "stalled", "recovered"]


class HookSection(_Section):
    """``hooks[]`` and ``profiles.<name>.hooks[]``: a command, notification URLs or a ping."""

    on: list[HookEvent] | None = None
    notify: list[NonBlank] | None = None
    command: list[NonBlank] | None = None
    timeout_seconds: PositiveSeconds = 60.0
    ping: HttpUrl | None = None
    interval_seconds: PositiveSeconds = 300.0
    retries: NonNegativeInt = 3
    group_seconds: NonNegativeSeconds = 60.0

    @model_validator(mode="after")
    def _one_kind(self) -> HookSection:
        given = [key for key in ("notify", "command", "ping") if getattr(self, key) is not None]
        if len(given) != 1:
            raise at_key(
                given[1] if len(given) > 1 else "notify",
                "a hook has exactly one of notify, command or ping",
            )
        if self.ping is not None and self.on is not None:
            raise at_key("on", "a ping hook reports at its interval; it takes no on:")
        if self.ping is None and not self.on:
            raise at_key("on", "needs the events to act on: done, failed, stalled, recovered")
        if self.command is not None and not self.command:
            raise at_key("command", "needs the program to run, as a list: [program, arg...]")
        if self.notify is not None and not self.notify:
            raise at_key("notify", "needs at least one notification URL")
        return self


class TranscriptOptionsSection(_Section):
    """``profiles.<name>.transcript_options``: Symbl's formatting flags for markdown and srt."""

    createParagraphs: bool | None = None  # Symbl's own names, as in params
    showSpeakerSeparation: bool | None = None
    highlightOnlyInsightKeyPhrases: bool | None = None
    highlightAllKeyPhrases: bool | None = None


class ProfileSection(_Section):
    """``profiles.<name>``: Symbl parameters and file handling for one team; ``None`` inherits."""

    extends: NonBlank | None = None
    params: dict[str, Any] | None = None
    continuation_pattern: ContinuationPattern | None = None
    continuation_wait_seconds: PositiveSeconds | None = None
    export: list[ExportKind] | None = None
    hooks: list[HookSection] | None = None
    stereo: StereoPolicy | None = None
    convert: bool | None = None
    transcript_options: TranscriptOptionsSection | None = None


class InboxSection(_Section):
    """``inboxes[]``: one watched folder."""

    id: NonBlank | None = None
    path: NonBlank
    profile: NonBlank
    done: NonBlank | None = None
    failed: NonBlank | None = None
    watch: WatchMode = "auto"
    recursive: bool = False
    settle_seconds: NonNegativeSeconds = 2.0
    rescan_seconds: PositiveSeconds = 300.0
    poll_interval_seconds: PositiveSeconds = 1.0
    on_duplicate: DuplicatePolicy = "upload"
    exclude: list[NonBlank] = Field(default_factory=list)


class ConfigFile(_Section):
    """The whole file."""

    symbl: SymblSection
    state_dir: NonBlank | None = None
    profiles: Annotated[dict[str, ProfileSection], Field(min_length=1)]
    inboxes: Annotated[list[InboxSection], Field(min_length=1)]
    log_level: LogLevel = "info"
    tracking: TrackingSection = Field(default_factory=TrackingSection)
    shutdown_timeout_seconds: PositiveSeconds = 20.0
    http: HttpSection | None = None
    hooks: list[HookSection] = Field(default_factory=list)
    journal: JournalSection | None = None
    cluster: ClusterSection = Field(default_factory=ClusterSection)


# ---------------------------------------------------------------- error translation

_TYPE_MESSAGES: dict[str, str] = {
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "missing": "is required",
    "too_short": "must not be empty",
}


def validate_file(data: Any) -> tuple[ConfigFile | None, list[ParamProblem]]:
    """The validated file, or ``None`` and every shape problem in it."""
    if not isinstance(data, Mapping):
        return None, [ParamProblem((), f"must be a mapping of settings, not {_kind_of(data)}")]
    return validate_section(ConfigFile, data, ())


def _kind_of(data: Any) -> str:
    if data is None:
        return "empty"
    if isinstance(data, list):
        return "a list"
    return "a single value"


def validate_section(
    model: type[M], data: Any, loc: tuple[str | int, ...]
) -> tuple[M | None, list[ParamProblem]]:
    """Validate one part of the file found at ``loc``; problems carry full locations."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, translate_errors(exc.errors(), root=model, prefix=loc)


def translate_errors(
    errors: Sequence[Mapping[str, Any]], *, root: type[BaseModel], prefix: tuple[str | int, ...]
) -> list[ParamProblem]:
    return [_translate(error, root, prefix) for error in errors]


def _translate(
    error: Mapping[str, Any], root: type[BaseModel], prefix: tuple[str | int, ...]
) -> ParamProblem:
    loc = tuple(part for part in error["loc"] if isinstance(part, str | int))
    kind = error["type"]
    if kind == "extra_forbidden":
        choices = _field_names_at(root, loc[:-1])
        return ParamProblem((*prefix, *loc), unknown_key_message(str(loc[-1]), choices))
    if kind == _AT_KEY:
        return ParamProblem((*prefix, *loc, error["ctx"]["key"]), error["msg"])
    return ParamProblem((*prefix, *loc), _message(error))


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    given = error.get("input")
    if kind == "literal_error":
        return f"must be one of {error.get('ctx', {}).get('expected', '')}"
    if kind.endswith("_type") and given is None:
        return "needs a value"
    if kind == "int_type" and isinstance(given, float):
        return "must be a whole number"
    return _TYPE_MESSAGES.get(kind, str(error["msg"]))


# ---------------------------------------------------------------- walking the models


def _inner_annotations(annotation: Any) -> tuple[Any, ...]:
    """The annotations one level inside ``X | None``, ``list[X]`` and ``dict[str, X]``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return (args[0],)
    if origin in (typing.Union, types.UnionType):
        return tuple(arg for arg in args if arg is not type(None))
    return ()


def _model_of(annotation: Any) -> tuple[str, type[BaseModel]] | None:
    """``("", M)``, ``("[]", M)`` or ``(".<name>", M)`` when the annotation holds model M."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "", annotation
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is list and args:
        found = _model_of(args[0])
        return ("[]", found[1]) if found else None
    if origin is dict and len(args) == 2:
        found = _model_of(args[1])
        return (".<name>", found[1]) if found else None
    for inner in _inner_annotations(annotation):
        found = _model_of(inner)
        if found:
            return found
    return None


def _field_names_at(root: type[BaseModel], loc: Sequence[str | int]) -> tuple[str, ...]:
    """The keys allowed at ``loc`` (for did-you-mean), or none when that is not a model."""
    model = root
    parts = list(loc)
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        found = _model_of(field.annotation) if field else None
        if found is None:
            return ()
        container, model = found
        if container and parts:
            parts.pop(0)  # the list index or the mapping's name
    return tuple(model.model_fields)


def schema_keys(model: type[BaseModel] = ConfigFile, prefix: str = "") -> Iterator[str]:
    """Every key of the file as the reference writes it: ``inboxes[].path``, ``profiles.<name>``."""
    for name, field in model.model_fields.items():
        key = f"{prefix}.{name}" if prefix else name
        yield key
        found = _model_of(field.annotation)
        if found is not None:
            container, inner = found
            yield from schema_keys(inner, key + container)
