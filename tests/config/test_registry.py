"""The registry of setting blocks: schemas, defaults, levels, validation, redaction."""

from __future__ import annotations

from typing import Any

import pytest

from mxcluster.config import registry
from mxcluster.config.levels import LevelKind
from mxcluster.errors import NotFoundError, ValidationError

SPEC_BLOCKS = {"interfaces", "hostname", "listeners", "smtproutes", "destconfig",
               "unsubscribe", "certificates", "bounceconfig", "updateconfig", "users"}


def test_registry_lists_every_block_of_the_spec() -> None:
    """Every block of SPEC §2 is registered, with help text."""
    assert set(registry.BLOCKS) >= SPEC_BLOCKS
    assert all(spec.help for spec in registry.BLOCKS.values())


@pytest.mark.parametrize("name", sorted(registry.BLOCKS))
def test_every_block_validates_its_default(name: str) -> None:
    """A block's built-in default is valid and already in normal form."""
    spec = registry.BLOCKS[name]
    assert spec.validate(spec.default) == spec.default


@pytest.mark.parametrize(("name", "levels"), [
    ("interfaces", {LevelKind.MACHINE}),
    ("hostname", {LevelKind.MACHINE}),
    ("users", {LevelKind.CLUSTER}),
    ("smtproutes", set(LevelKind)),
    ("unsubscribe", set(LevelKind)),
])
def test_blocks_live_at_the_levels_of_the_spec(name: str, levels: set[LevelKind]) -> None:
    """Machine-only, cluster-only and any-level blocks are declared as SPEC §2 says."""
    assert registry.BLOCKS[name].levels == levels


def test_unknown_block_names_the_known_ones() -> None:
    """Asking for an unknown block is NotFoundError listing the known blocks."""
    with pytest.raises(NotFoundError) as err:
        registry.get("smtproute")
    assert "smtproutes" in str(err.value)


def problems(block: str, value: Any) -> list[str]:
    with pytest.raises(ValidationError) as err:
        registry.get(block).validate(value)
    return err.value.problems


def test_invalid_value_reports_every_problem_at_once() -> None:
    """Every bad field of every item is reported in one ValidationError, each with its path."""
    found = problems("listeners", [
        {"name": "in", "type": "sideways", "interface": "Management", "port": 0},
        {"name": "-x", "type": "public", "interface": "Management", "rat": ["bad..domain"],
         "relay_from": ["10.0.0.0/33"], "surprise": 1},
    ])
    joined = "\n".join(found)
    for where in ("listeners.0.type", "listeners.0.port", "listeners.1.name",
                  "listeners.1.rat.0", "listeners.1.relay_from.0", "listeners.1.surprise"):
        assert where in joined
    assert len(found) >= 6


@pytest.mark.parametrize(("block", "value", "where"), [
    ("smtproutes", [{"domain": "a.com", "hops": []}], "smtproutes.0.hops"),
    ("smtproutes", [{"domain": "a.com", "hops": ["/dev/null", "mx.a.com"]}], "/dev/null"),
    ("smtproutes", [{"domain": "a.com", "hops": ["mx.a.com:99999"]}], "port"),
    ("smtproutes", [{"domain": "a.com", "hops": ["x"]}, {"domain": "A.com", "hops": ["y"]}],
     "duplicate"),
    ("interfaces", [{"name": "M", "ip": "300.1.1.1"}], "not an IPv4 or IPv6 address"),
    ("hostname", "bad_host!", "not a valid host name"),
    ("bounceconfig", {"retry_schedule": [0]}, "bounceconfig.retry_schedule.0"),
    ("destconfig", {"domains": [{"domain": "a.com"}, {"domain": "a.com"}]}, "duplicate"),
    ("certificates", [{"name": "c", "certificate": "x", "key": "y"}], "PEM"),
    ("users", [{"name": "bob", "role": "root"}], "users.0.role"),
    ("unsubscribe", {"action": "reject"}, "unsubscribe.action"),
])
def test_bad_values_are_refused_with_their_location(block: str, value: Any, where: str) -> None:
    """Each kind of bad value is refused, and the problem says where or why."""
    assert any(where in p for p in problems(block, value))


def test_values_are_normalised() -> None:
    """Domains and hops are lower-cased, IPs and CIDRs written canonically, defaults filled."""
    spec = registry.get("smtproutes")
    assert spec.validate([{"domain": "Example.COM.", "hops": ["MX1.Example.com:2525"]}]) == [
        {"domain": "example.com", "hops": ["mx1.example.com:2525"]}]
    listener = registry.get("listeners").validate([
        {"name": "out", "type": "private", "interface": "M", "relay_from": ["10.1.2.3/8"]}])[0]
    assert listener["relay_from"] == ["10.0.0.0/8"]
    assert listener["port"] == 25 and listener["tls"] == "off"


@pytest.mark.parametrize(("block", "field"), [("certificates", "key"),
                                              ("users", "password_hash")])
def test_secret_fields_are_redacted(block: str, field: str) -> None:
    """Redaction hides private keys and password hashes and keeps everything else."""
    value = [{"name": "x", field: "SECRET", "other": 1}]
    shown = registry.get(block).redact(value)
    assert shown == [{"name": "x", field: "<hidden>", "other": 1}]
    assert value[0][field] == "SECRET"


def test_blocks_without_secrets_are_not_redacted() -> None:
    """Redaction leaves blocks without secret fields untouched."""
    value = [{"domain": "a.com", "hops": ["mx"]}]
    assert registry.get("smtproutes").redact(value) == value
