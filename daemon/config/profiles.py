"""Profile inheritance: ``extends`` chains and the Symbl parameters merged along them.

A profile's parameters are its parents' merged with its own, parent first. A problem with a
merged value is reported where that value was written: in the ancestor that set it, unless the
ancestor is fine on its own and only the combination in the child is wrong.
"""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Iterable, Mapping
from typing import Any

from daemon.config.model import StereoPolicy
from daemon.params import ParamProblem, merge_params, validate_params

Location = tuple[str | int, ...]
# Parent first: ("default", "sales", "sales-emea").
Chain = tuple[str, ...]
_PER_CHANNEL = "enableSeparateRecognitionPerChannel"


def suggestion(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the nearest choice, or nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _parent_of(raw: Any) -> str | None:
    parent = raw.get("extends") if isinstance(raw, Mapping) else None
    return parent if isinstance(parent, str) else None


def resolve_chains(profiles: Mapping[str, Any]) -> tuple[dict[str, Chain], list[ParamProblem]]:
    """The ``extends`` chain of every profile whose chain is sound, and a problem for each break.

    An unknown parent is reported at the ``extends`` that names it; a cycle once, at its member
    written first. Profiles that lead into a break get no chain and no further complaint.
    """
    problems = [
        ParamProblem(
            ("profiles", name, "extends"),
            f"unknown profile {parent!r}{suggestion(parent, map(str, profiles))}",
        )
        for name, raw in profiles.items()
        if (parent := _parent_of(raw)) is not None and parent not in profiles
    ]
    chains: dict[str, Chain] = {}
    reported_cycles: set[frozenset[str]] = set()
    for name in profiles:
        chain, cycle = _walk(name, profiles)
        if cycle:
            members = frozenset(cycle)
            if name in members and members not in reported_cycles:
                reported_cycles.add(members)
                path = " -> ".join((*cycle, cycle[0]))
                problems.append(
                    ParamProblem(
                        ("profiles", name, "extends"),
                        f"profiles extend each other in a cycle: {path}",
                    )
                )
        elif chain is not None:
            chains[name] = chain
    return chains, problems


def _walk(name: str, profiles: Mapping[str, Any]) -> tuple[Chain | None, Chain]:
    """``(chain, ())`` when sound, ``(None, ())`` at an unknown parent, ``(None, cycle)``."""
    child_first: list[str] = [name]
    while (parent := _parent_of(profiles[child_first[-1]])) is not None:
        if parent not in profiles:
            return None, ()
        if parent in child_first:
            start = child_first.index(parent)
            return None, tuple(child_first[start:])
        child_first.append(parent)
    return tuple(reversed(child_first)), ()


def _own_params(raw: Any) -> Mapping[str, Any]:
    params = raw.get("params") if isinstance(raw, Mapping) else None
    # A ``params`` that is not a mapping is a shape problem reported elsewhere.
    return params if isinstance(params, Mapping) else {}


def resolve_params(
    profiles: Mapping[str, Any], chains: Mapping[str, Chain]
) -> tuple[dict[str, dict[str, Any]], list[ParamProblem]]:
    """Merged, validated parameters per profile, and every problem placed where it was written."""
    resolved: dict[str, dict[str, Any]] = {}
    found: dict[str, list[ParamProblem]] = {}
    problems: list[ParamProblem] = []
    for name, chain in chains.items():
        merged = merge_params(*(_own_params(profiles[member]) for member in chain))
        problems.extend(_with_stereo(name, chain, profiles, merged))
        resolved[name], found[name] = validate_params(merged)
    for name, chain in chains.items():
        for problem in found[name]:
            located = _locate(problem, name, chain, profiles, found)
            if located not in problems:
                problems.append(located)
    return resolved, problems


def stereo_policy(given: StereoPolicy | None, params: Mapping[str, Any]) -> StereoPolicy:
    """A profile's ``stereo`` policy; when no profile in its chain sets one, ``reject`` (see the
    README), unless its parameters ask for per-channel recognition, as configurations did before."""
    if given is not None:
        return given
    return "per_channel" if params.get(_PER_CHANNEL) is True else "reject"


def _with_stereo(
    name: str, chain: Chain, profiles: Mapping[str, Any], merged: dict[str, Any]
) -> list[ParamProblem]:
    """``stereo: per_channel`` turns per-channel recognition on in the parameters (the daemon
    leaves it out for mono files); ``reject`` and ``downmix`` cannot go with it."""
    stereo = inherited(chain, {member: _own(profiles[member], "stereo") for member in chain})
    if stereo == "per_channel":
        merged.setdefault(_PER_CHANNEL, True)
    elif stereo in ("reject", "downmix") and merged.get(_PER_CHANNEL) is True:
        return [
            ParamProblem(
                ("profiles", name, "stereo"),
                f"{stereo} contradicts params.{_PER_CHANNEL}: true; "
                "use stereo: per_channel to send stereo files with a transcript per channel",
            )
        ]
    return []


def convert_extra_installed() -> bool:
    """Whether the ``convert`` extra (PyAV, with FFmpeg in its wheels) can be imported."""
    return importlib.util.find_spec("av") is not None


_EXTRA = "the optional 'convert' extra (pip install 'symbl-inbox[convert]'), which is not installed"


def extras_warnings(profiles: Mapping[str, Any], installed: bool) -> list[ParamProblem]:
    """What profiles ask for that the installed extras cannot do, said where they ask it."""
    if installed:
        return []
    found: list[ParamProblem] = []
    for name, raw in profiles.items():
        if _own(raw, "convert") is True:
            message = (
                f"convert: true needs {_EXTRA}; files in other formats will go to failed/ "
                "as unsupported_format"
            )
            found.append(ParamProblem(("profiles", name, "convert"), message))
        if _own(raw, "stereo") == "downmix":
            message = (
                "stereo: downmix mixes PCM, float, µ-law and A-law WAVs down as they are, but "
                f"MP3 and other coded audio need {_EXTRA}; such stereo files will go to "
                "failed/ as stereo_audio"
            )
            found.append(ParamProblem(("profiles", name, "stereo"), message))
    return found


def _own(raw: Any, key: str) -> Any:
    return raw.get(key) if isinstance(raw, Mapping) else None


def _locate(
    problem: ParamProblem,
    name: str,
    chain: Chain,
    profiles: Mapping[str, Any],
    found: Mapping[str, list[ParamProblem]],
) -> ParamProblem:
    writer = _writer(problem.loc, name, chain, profiles)
    place = writer if problem in found.get(writer, ()) else name
    return ParamProblem(("profiles", place, "params", *problem.loc), problem.message)


def _writer(loc: Location, name: str, chain: Chain, profiles: Mapping[str, Any]) -> str:
    """The nearest profile in the chain that set the parameter at ``loc``."""
    if not loc:
        return name
    for member in reversed(chain):
        if loc[0] in _own_params(profiles[member]):
            return member
    return name


def inherited(chain: Chain, values: Mapping[str, Any]) -> Any:
    """The value the nearest profile in the chain gives (``None`` meaning "not set here")."""
    for member in reversed(chain):
        if values.get(member) is not None:
            return values[member]
    return None
