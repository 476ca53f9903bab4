"""Levels: the written forms ``cluster``, ``group:NAME``, ``machine:NAME``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxcluster.config.levels import Level, LevelKind, valid_name
from mxcluster.errors import UsageError

NAMES = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,30}\Z")


@pytest.mark.parametrize(("text", "level"), [
    ("cluster", Level(LevelKind.CLUSTER)),
    ("group:Main_Group", Level(LevelKind.GROUP, "Main_Group")),
    ("machine:mail1.example.com", Level(LevelKind.MACHINE, "mail1.example.com")),
    ("  cluster ", Level(LevelKind.CLUSTER)),
])
def test_parse_written_forms(text: str, level: Level) -> None:
    """Each written form parses to its level (surrounding blanks ignored)."""
    assert Level.parse(text) == level


@given(kind=st.sampled_from(["group", "machine"]), name=NAMES)
def test_print_then_parse_round_trips(kind: str, name: str) -> None:
    """str(level) parses back to the same level, for every valid name."""
    level = Level(LevelKind(kind), name)
    assert str(level) == f"{kind}:{name}"
    assert Level.parse(str(level)) == level
    assert valid_name(name)


@pytest.mark.parametrize("text", [
    "", "Cluster", "cluster:x", "group", "group:", "machine:", "host:mail1",
    "group:-bad", "machine:has space", "group:a/b",
])
def test_bad_level_is_a_usage_error_naming_the_forms(text: str) -> None:
    """A malformed level is a usage error (exit 2) whose hint names the accepted forms."""
    with pytest.raises(UsageError) as err:
        Level.parse(text)
    assert err.value.exit_code == 2
    assert "group:NAME" in str(err.value)


def test_constructors_match_parse() -> None:
    """Level.cluster/group/machine build the same values as parsing."""
    assert Level.cluster() == Level.parse("cluster")
    assert Level.group("g") == Level.parse("group:g")
    assert Level.machine("m") == Level.parse("machine:m")
