"""The YAML form of the configuration: ``cluster``, ``groups`` and ``machines`` sections.

``write`` streams a deterministic document (sorted keys, no timestamps; unsubscribe
entries one per line in sort order) so that a million entries never sit in memory as one
YAML tree. ``parse`` validates a loaded document against the registry and reports every
problem at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import yaml

from mxcluster.config import registry
from mxcluster.config.levels import Level, LevelKind
from mxcluster.errors import ValidationError
from mxcluster.unsubscribe import normalise

SECTIONS = {"cluster": LevelKind.CLUSTER, "groups": LevelKind.GROUP, "machines": LevelKind.MACHINE}

class _Dumper(yaml.SafeDumper):
    """Safe dumper writing multi-line strings (PEM certificates) as literal blocks."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def dump(data: Any) -> str:
    """Deterministic YAML for one value (sorted keys, block style)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=True, default_flow_style=False,
                     allow_unicode=True, width=100)


try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # libyaml not compiled in
    _Loader = yaml.SafeLoader


@dataclass
class LevelConfig:
    """The blocks defined at one level, and (if defined there) its unsubscribe entries."""

    level: Level
    blocks: dict[str, Any]
    entries: Iterable[str] = ()
    #: when set, the entries are summarised as a count instead of listed (showconfig)
    entry_count: int | None = None


def write(out: IO[str], levels: list[LevelConfig], *, header: str = "") -> None:
    """Write LEVELS as one YAML document."""
    if header:
        out.write(f"# {header}\n")
    by_section: dict[str, list[LevelConfig]] = {}
    for lc in levels:
        section = next(k for k, v in SECTIONS.items() if v is lc.level.kind)
        by_section.setdefault(section, []).append(lc)
    for section in SECTIONS:
        chunk = sorted(by_section.get(section, []), key=lambda c: c.level.name)
        if not chunk:
            continue
        out.write(f"{section}:\n")
        for lc in chunk:
            indent = 2
            if section != "cluster":
                out.write(f"  {json.dumps(lc.level.name)}:\n")
                indent = 4
            _write_level(out, lc, indent)


def _write_level(out: IO[str], lc: LevelConfig, indent: int) -> None:
    pad = " " * indent
    plain = {k: v for k, v in lc.blocks.items() if k != "unsubscribe"}
    if not plain and "unsubscribe" not in lc.blocks:
        out.write(f"{pad}{{}}\n")
    if plain:
        text = dump(plain)
        out.writelines(pad + line + "\n" for line in text.splitlines())
    if "unsubscribe" in lc.blocks:
        out.write(f"{pad}unsubscribe:\n")
        for key, value in sorted(lc.blocks["unsubscribe"].items()):
            out.write(f"{pad}  {key}: {json.dumps(value)}\n")
        if lc.entry_count is not None:
            out.write(f"{pad}  entry_count: {lc.entry_count}\n")
            return
        out.write(f"{pad}  entries:\n")
        out.writelines(f"{pad}  - {json.dumps(e)}\n" for e in lc.entries)


def load(text: IO[str] | str) -> Any:
    """Parse YAML text; a syntax error becomes a ValidationError with line and column."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationError([f"YAML syntax error{where}: {problem}"]) from None


@dataclass
class Plan:
    """A validated document: per level, the blocks to set and unsubscribe entries."""

    levels: list[LevelConfig] = field(default_factory=list)


def parse(doc: Any, level_exists: Callable[[Level], bool], standalone: bool) -> Plan:
    """Validate DOC; raise ValidationError listing every problem, else return the plan."""
    problems: list[str] = []
    plan = Plan()
    if not isinstance(doc, dict):
        raise ValidationError(["the file must be a mapping with cluster/groups/machines"])
    for key in doc:
        if key not in SECTIONS:
            problems.append(f"unknown section {key!r} (use cluster, groups, machines)")
    for section, kind in SECTIONS.items():
        if section in doc:
            plan.levels += _parse_section(section, kind, doc[section], problems)
    for lc in plan.levels:
        if not level_exists(lc.level):
            problems.append(f"{lc.level}: no such level on this machine"
                            + (" (it is standalone)" if standalone else ""))
        _check_blocks(lc, standalone, problems)
    if problems:
        raise ValidationError(problems, hint="nothing was changed")
    return plan


def _parse_section(section: str, kind: LevelKind, body: Any,
                   problems: list[str]) -> list[LevelConfig]:
    if kind is LevelKind.CLUSTER:
        named: dict[str, Any] = {"": body}
    elif isinstance(body, dict):
        named = body
    else:
        problems.append(f"{section}: must map names to blocks")
        return []
    out = []
    for name, blocks in named.items():
        level = Level(kind, str(name))
        if not isinstance(blocks, dict):
            problems.append(f"{level}: must be a mapping of block names to values")
            continue
        out.append(LevelConfig(level, dict(blocks)))
    return out


def _check_blocks(lc: LevelConfig, standalone: bool, problems: list[str]) -> None:
    for name in list(lc.blocks):
        spec = registry.BLOCKS.get(name)
        if spec is None:
            problems.append(f"{lc.level}: unknown block {name!r}")
            continue
        if lc.level.kind not in spec.levels and not standalone:
            problems.append(f"{lc.level}: block {name!r} cannot live at this level")
            continue
        value = lc.blocks[name]
        if spec.table:
            value, lc.entries = _split_entries(lc.level, value, problems)
        try:
            lc.blocks[name] = spec.validate(value)
        except ValidationError as exc:
            problems += [f"{lc.level}: {p}" for p in exc.problems]


def _split_entries(level: Level, value: Any, problems: list[str]) -> tuple[Any, list[str]]:
    if not isinstance(value, dict):
        return value, []
    value = dict(value)
    raw = value.pop("entries", []) or []
    if not isinstance(raw, list):
        problems.append(f"{level}: unsubscribe.entries must be a list")
        return value, []
    entries = []
    for i, item in enumerate(raw):
        try:
            entries.append(normalise(str(item)))
        except ValueError as exc:
            problems.append(f"{level}: unsubscribe.entries.{i}: {exc}")
    return value, entries


def iter_lines(levels: list[LevelConfig]) -> Iterator[str]:
    """The document as lines (for tests and small outputs)."""
    import io

    buf = io.StringIO()
    write(buf, levels)
    yield from buf.getvalue().splitlines()
