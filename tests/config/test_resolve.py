"""Effective configuration: machine > group > cluster > default; an empty override wins."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxcluster.config import registry
from mxcluster.config.levels import Level, LevelKind
from mxcluster.config.resolve import chain, resolve

MACHINE, GROUP, CLUSTER = Level.machine("m1"), Level.group("g1"), Level.cluster()
#: a level's value: absent (None), or a list (possibly empty: an empty override)
VALUES = st.none() | st.lists(st.integers(0, 9), max_size=2)


def model(spec: registry.BlockSpec, at: dict[Level, Any], group: bool,
          standalone: bool) -> tuple[Any, Level | None]:
    """The rule as SPEC §1 states it, written out by hand."""
    if standalone:
        order = [MACHINE]
    else:
        order = [MACHINE, GROUP, CLUSTER] if group else [MACHINE, CLUSTER]
        order = [lv for lv in order if lv.kind in spec.levels]
    for level in order:
        if at.get(level) is not None:
            return at[level], level
    return spec.default, None


@settings(max_examples=300, deadline=None)
@given(block=st.sampled_from(["smtproutes", "interfaces", "users"]),
       machine=VALUES, group_value=VALUES, cluster=VALUES,
       group=st.booleans(), standalone=st.booleans())
def test_resolve_matches_the_model(block: str, machine: Any, group_value: Any, cluster: Any,
                                   group: bool, standalone: bool) -> None:
    """For any assignment of values to levels, resolve() picks what the rule says."""
    spec = registry.get(block)
    at = {MACHINE: machine, GROUP: group_value, CLUSTER: cluster}
    levels = chain("m1", "g1" if group else None, clustered=not standalone)
    got = resolve(spec, levels, lambda lv, _: at.get(lv), standalone=standalone)
    assert (got.value, got.source) == model(spec, at, group, standalone)


def test_empty_machine_override_beats_the_cluster_value() -> None:
    """An empty list defined at machine level replaces a non-empty cluster block."""
    at = {CLUSTER: [{"domain": "a.com", "hops": ["mx"]}], MACHINE: []}
    got = resolve(registry.get("smtproutes"), [MACHINE, CLUSTER], lambda lv, _: at.get(lv))
    assert got.value == [] and got.source == MACHINE


def test_undefined_everywhere_gives_the_built_in_default() -> None:
    """With no level defining the block, the default applies and the source is None."""
    spec = registry.get("bounceconfig")
    got = resolve(spec, [MACHINE, GROUP, CLUSTER], lambda lv, _: None)
    assert got.value == spec.default and got.source is None


@pytest.mark.parametrize(("group", "clustered", "expected"), [
    ("g1", True, [MACHINE, GROUP, CLUSTER]),
    (None, True, [MACHINE, CLUSTER]),
    ("g1", False, [MACHINE]),
])
def test_chain_is_most_specific_first(group: str | None, clustered: bool,
                                      expected: list[Level]) -> None:
    """The lookup chain runs machine, group, cluster; a standalone machine has only its own."""
    assert chain("m1", group, clustered) == expected


def test_machine_only_block_ignores_a_cluster_value() -> None:
    """A machine-only block stored at cluster level (it cannot live there) is not inherited."""
    got = resolve(registry.get("interfaces"), [MACHINE, CLUSTER],
                  lambda lv, _: [{"name": "x", "ip": "192.0.2.1"}] if lv == CLUSTER else None)
    assert got.source is None and got.value == []
    assert LevelKind.CLUSTER not in registry.get("interfaces").levels
