"""The policy file as YAML: its data, the line of every key path (for messages), and keys written twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from include.policy.errors import PolicyError

FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path, text: str) -> tuple[Any, dict[str, int], list[tuple[str, str]]]:
    """The data of a policy file, the line of every key path, and every key written twice in one mapping."""
    try:
        try:  # libyaml when PyYAML has it: the same nodes and values, a tenth of the time
            node = yaml.compose(text, Loader=FAST_LOADER)
            data = yaml.load(text, Loader=FAST_LOADER)  # noqa: S506 - a safe loader (C or Python)
        except yaml.YAMLError:  # the message of the pure-Python parser, as before
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise PolicyError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from exc
    lines: dict[str, int] = {}
    duplicates: list[tuple[str, str]] = []
    if node is not None:
        walk(node, "", lines, duplicates)
    return data, lines, duplicates


def walk(node: yaml.Node, path: str, lines: dict[str, int], duplicates: list[tuple[str, str]]) -> None:
    """Record the line of every key path, and every key written twice in one mapping."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key == "<<":
                continue
            child = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in seen:
                duplicates.append(
                    (
                        child,
                        f"defined twice (lines {seen[key]} and {line}); YAML would silently keep the last",
                    )
                )
            else:
                seen[key] = line
                lines[child] = line
            walk(value_node, child, lines, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            walk(item, f"{path}[{index}]", lines, duplicates)
