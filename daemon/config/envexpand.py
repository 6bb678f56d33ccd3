"""``${VAR}`` in string values, expanded from the environment; ``$$`` stands for a literal ``$``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from daemon.params import ParamProblem

Location = tuple[str | int, ...]
# A lone ``$`` not followed by ``{`` or ``$`` is kept as written, so ``pa$$word`` and ``$5`` read
# naturally; only the ``${...}`` form is a reference.
_REFERENCE = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def expand_env(
    data: Any, environ: Mapping[str, str], loc: Location = ()
) -> tuple[Any, list[ParamProblem]]:
    """A copy of ``data`` with every string expanded, and a problem for each missing variable."""
    problems: list[ParamProblem] = []
    return _expand(data, environ, loc, problems, {}), problems


def _expand(
    data: Any,
    environ: Mapping[str, str],
    loc: Location,
    problems: list[ParamProblem],
    seen: dict[int, Any],
) -> Any:
    # YAML aliases share one object; expanding each once keeps a bomb of aliases from exploding.
    if isinstance(data, dict | list) and id(data) in seen:
        return seen[id(data)]
    if isinstance(data, str):
        return _expand_text(data, environ, loc, problems)
    if isinstance(data, dict):
        expanded: dict[Any, Any] = {}
        seen[id(data)] = expanded
        for key, value in data.items():
            expanded[key] = _expand(value, environ, (*loc, key), problems, seen)
        return expanded
    if isinstance(data, list):
        items: list[Any] = []
        seen[id(data)] = items
        items.extend(
            _expand(item, environ, (*loc, index), problems, seen) for index, item in enumerate(data)
        )
        return items
    return data


def _expand_text(
    text: str, environ: Mapping[str, str], loc: Location, problems: list[ParamProblem]
) -> str:
    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$$":
            return "$"
        name = match.group(1)
        if name is None:
            problems.append(ParamProblem(loc, "unclosed ${ (write $$ for a literal $)"))
        elif not _NAME.fullmatch(name):
            problems.append(ParamProblem(loc, f"${{{name}}} is not a valid variable name"))
        elif name not in environ:
            problems.append(ParamProblem(loc, f"environment variable {name} is not set"))
        else:
            return environ[name]
        return whole

    return _REFERENCE.sub(replace, text)
