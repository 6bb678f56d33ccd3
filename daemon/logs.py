"""Logging, configured in one place: JSON lines for journald, readable lines on a terminal.

Event names are stable snake_case (``file_filed``, ``upload_retry``); values go in keys. Two
guards keep secrets out: keys that name a secret are masked whatever their value, and every
registered secret value is replaced wherever it appears in a string.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import FilteringBoundLogger

MASK = "***"
_SECRET_KEY_PARTS = ("secret", "token", "password", "authorization", "api_key", "apikey")


class SecretMasker:
    """A structlog processor; it also serves error records and result files (``scrub``)."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def register(self, values: Iterable[str]) -> None:
        # Very short values would mask ordinary words; real secrets and tokens are long.
        self._values.update(value for value in values if value and len(value) >= 6)

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._values:
                if secret in value:
                    value = value.replace(secret, MASK)
            return value
        if isinstance(value, dict):
            return {key: self._scrub_item(key, item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub(item) for item in value]
        return value

    def _scrub_item(self, key: Any, item: Any) -> Any:
        if isinstance(key, str) and is_secret_key(key) and item not in (None, ""):
            return MASK
        return self.scrub(item)

    def __call__(
        self, logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, item in list(event_dict.items()):
            event_dict[key] = self._scrub_item(key, item)
        return event_dict


def is_secret_key(key: str) -> bool:
    lowered = key.lower().replace("-", "_")
    return any(part in lowered for part in _SECRET_KEY_PARTS)


# One masker for the process: every component that writes text for people registers with it.
masker = SecretMasker()


_chosen: dict[str, Any] = {}


def configure_logging(
    level: str = "info", *, json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Set up structlog; ``json=None`` chooses JSON when the stream is not a terminal."""
    _chosen.update(json=json, stream=stream)
    out = stream or sys.stdout
    use_json = (not out.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            masker,
            *(() if use_json else (_printable,)),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_level_number(level)),
        logger_factory=_NamedPrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def _printable(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """On a terminal, file names (any bytes a dropper chose) print escaped: no control
    characters, no undecodable bytes. JSON lines escape them already."""
    from daemon.fsboundary import display

    for key, item in list(event_dict.items()):
        if isinstance(item, str) and key != "exception":
            event_dict[key] = display(item)
    return event_dict


def set_level(level: str) -> None:
    """Change the level (a reload), keeping the format and stream chosen at start."""
    configure_logging(level, **_chosen)


def _level_number(level: str) -> int:
    number = logging.getLevelNamesMapping().get(level.upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}")
    return number


def get_logger(name: str) -> FilteringBoundLogger:
    """The logger of one part of the daemon; its name goes out with every line (``logger``).

    Bound lazily: a module's logger, made at import, follows ``configure_logging`` called later.
    """
    logger: FilteringBoundLogger = structlog.get_logger(name)
    return logger


class _NamedPrintLogger(structlog.PrintLogger):
    """A PrintLogger that knows the name it was asked for, for ``add_logger_name``."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedPrintLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedPrintLogger:
        return _NamedPrintLogger(self._file, str(args[0]) if args else "")
