"""Safe YAML that remembers where every value was written.

``load_yaml_document`` parses with PyYAML's safe loader and keeps the 1-based line of every
mapping key and list item, so a problem found later at a location such as
``("profiles", "sales", "params", "mode")`` can name its line. The configuration loader and the
sidecar reader both use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from daemon.config.errors import ConfigError, ConfigProblem
from daemon.params import dotted

Location = tuple[str | int, ...]
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class YamlDocument:
    """Parsed data plus the line of every location in it."""

    filename: str
    data: Any
    lines: dict[Location, int] = field(default_factory=dict, repr=False)

    def line_of(self, loc: Location) -> int | None:
        """The line of ``loc``; for a location that was not written, the line of its parent."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None

    def problem(self, loc: Location, message: str) -> ConfigProblem:
        """A problem at ``loc``, pointing at its line."""
        return ConfigProblem(self.filename, self.line_of(loc), dotted(loc), message)


def load_yaml_document(
    text: str, filename: str, *, loader_class: type[TextKeyLoader] | None = None
) -> YamlDocument:
    """Parse one YAML document; a syntax error or a duplicate key raises ``ConfigError``.

    ``loader_class`` may be a subclass of ``TextKeyLoader`` with limits (sidecars use one).
    """
    try:
        loader = (loader_class or _TextKeyLoader)(text)
    except yaml.reader.ReaderError as exc:
        raise ConfigError([_reader_problem(filename, text, exc)]) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return YamlDocument(filename, None)
        duplicates = list(_duplicate_keys(root, (), set()))
        if duplicates:
            raise ConfigError(
                ConfigProblem(filename, line, dotted(loc), message)
                for loc, line, message in duplicates
            )
        data = loader.construct_document(root)
        lines: dict[Location, int] = {(): root.start_mark.line + 1}
        _index_lines(root, (), lines, set())
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_problem(filename, exc)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem(filename, None, "", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    return YamlDocument(filename, data, lines)


def _syntax_problem(filename: str, exc: yaml.MarkedYAMLError) -> ConfigProblem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    message = f"YAML syntax error: {exc.problem or 'cannot parse'}"
    if exc.context:
        message += f" ({exc.context})"
    return ConfigProblem(filename, line, "", message)


def _reader_problem(filename: str, text: str, exc: yaml.reader.ReaderError) -> ConfigProblem:
    # The reader rejects control characters before parsing starts; it knows only an offset.
    line = text.count("\n", 0, exc.position) + 1
    return ConfigProblem(
        filename, line, "", f"YAML syntax error: unacceptable character #x{exc.character:04x}"
    )


def _key_of(node: Node) -> str:
    if not isinstance(node, ScalarNode):
        raise yaml.constructor.ConstructorError(
            None, None, "mapping keys must be plain values, not lists or mappings", node.start_mark
        )
    return str(node.value)


class _TextKeyLoader(yaml.SafeLoader):
    """The safe loader, with every mapping key kept as the text written.

    Keys are names here (settings, profiles, parameters), so ``1:``, ``2024-05-01:`` or ``no:``
    mean the names "1", "2024-05-01" and "no", not an integer, a date and ``False``.
    """

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            mapping[_key_of(key_node)] = self.construct_object(value_node, deep=deep)
        return mapping


# For loaders with limits of their own (sidecars): subclass this one.
TextKeyLoader = _TextKeyLoader


def _entries(node: MappingNode) -> Iterator[tuple[str, Node, Node]]:
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        yield _key_of(key_node), key_node, value_node


def _duplicate_keys(
    node: Node, loc: Location, seen: set[int]
) -> Iterator[tuple[Location, int, str]]:
    """Keys given twice in one mapping: PyYAML would silently keep the last one."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        first_lines: dict[str, int] = {}
        for key, key_node, value_node in _entries(node):
            line = key_node.start_mark.line + 1
            if key in first_lines:
                message = f"duplicate key; first given on line {first_lines[key]}"
                yield (*loc, key), line, message
            else:
                first_lines[key] = line
            yield from _duplicate_keys(value_node, (*loc, key), seen)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*loc, index), seen)


def _index_lines(node: Node, loc: Location, lines: dict[Location, int], seen: set[int]) -> None:
    # An alias is indexed once, where its anchor was written; this also stops recursive anchors.
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        # After construction, merged (``<<``) entries come first, so later ones win as in the data.
        for key, key_node, value_node in _entries(node):
            lines[(*loc, key)] = key_node.start_mark.line + 1
            _index_lines(value_node, (*loc, key), lines, seen)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*loc, index)] = item.start_mark.line + 1
            _index_lines(item, (*loc, index), lines, seen)
