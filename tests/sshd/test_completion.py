"""Completion of the interactive shell comes from the command registry."""

from __future__ import annotations

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

import mxcluster.shell.commands  # noqa: F401  (registers the commands)
from mxcluster.shell.core import REGISTRY
from mxcluster.shell.interactive import RegistryCompleter, candidates


def complete(text: str) -> list[str]:
    found = RegistryCompleter().get_completions(Document(text), CompleteEvent())
    return [c.text for c in found]


def test_first_word_lists_every_command() -> None:
    """At the start of a line every registered command (and exit) is offered."""
    offered = candidates([], "")
    assert set(REGISTRY) <= set(offered)
    assert "exit" in offered


def test_prefix_narrows_command_names() -> None:
    """A typed prefix offers only the commands starting with it."""
    assert complete("vers") == ["version"]


def test_sub_commands_of_a_group() -> None:
    """After a group command its sub-commands are offered."""
    assert {"new", "delete", "print"} <= set(complete("smtproutes "))


def test_options_of_a_sub_command() -> None:
    """A word starting with '-' offers the options of the sub-command, and --json."""
    offered = complete("smtproutes new example.org --")
    assert "--to" in offered
    assert "--json" in offered


def test_help_completes_command_names() -> None:
    """'help' is followed by a command name."""
    assert "smtproutes" in complete("help smt")


def test_unknown_command_offers_nothing() -> None:
    """Nothing is offered after an unknown command."""
    assert complete("frobnicate --") == []
