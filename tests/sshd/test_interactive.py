"""The interactive shell over an SSH PTY: prompt, commands, wizards, leaving."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncssh
from tests.sshd.harness import ADMIN_PASSWORD, HOSTNAME, Harness
from tests.sshd.terminal import Terminal

# the trailing space of the prompt is drawn as a cursor move
PROMPT = f"{HOSTNAME}>"


def interact(h: Harness, script: Callable[[Terminal], Awaitable[None]]) -> None:
    async def session() -> None:
        async with asyncssh.connect(
            "127.0.0.1", h.port, username="admin", password=ADMIN_PASSWORD,
            known_hosts=None, client_keys=None, agent_path=None, config=None,
        ) as conn:
            await script(await Terminal.open(conn))

    asyncio.run(session())


def test_prompt_shows_the_host(harness: Harness) -> None:
    """The shell greets and prompts with the machine's host name."""

    async def script(t: Terminal) -> None:
        greeting = await t.expect(PROMPT)
        assert "help" in greeting

    interact(harness, script)


def test_runs_commands_and_prompts_again(harness: Harness) -> None:
    """A typed command prints its output, then the prompt comes back."""

    async def script(t: Terminal) -> None:
        await t.expect(PROMPT)
        t.send("version\r")
        await t.expect(harness.fingerprint)
        await t.expect(PROMPT)
        t.send("nosuchcommand\r")
        await t.expect("unknown command")
        await t.expect(PROMPT)

    interact(harness, script)


def test_exit_ends_the_session_with_status_0(harness: Harness) -> None:
    """'exit' ends the session and the channel's exit status is 0."""

    async def script(t: Terminal) -> None:
        await t.expect(PROMPT)
        t.send("exit\r")
        assert await t.finish() == 0

    interact(harness, script)


def test_ctrl_d_ends_the_session(harness: Harness) -> None:
    """Ctrl-D at an empty prompt ends the session."""

    async def script(t: Terminal) -> None:
        await t.expect(PROMPT)
        t.send("\x04")
        assert await t.finish() == 0

    interact(harness, script)


def test_session_keeps_staged_edits_between_lines(harness: Harness) -> None:
    """Edits typed on separate lines are committed together by 'commit'."""

    async def script(t: Terminal) -> None:
        await t.expect(PROMPT)
        t.send("smtproutes new example.org --to mx.example.net\r")
        await t.expect("staged")
        await t.expect(PROMPT)
        t.send("commit\r")
        await t.expect("committed")

    interact(harness, script)
    assert harness.call(lambda: harness.machine.effective("smtproutes").value)


def test_wizard_asks_on_the_terminal(harness: Harness) -> None:
    """A command missing an argument asks for it interactively."""

    async def script(t: Terminal) -> None:
        await t.expect(PROMPT)
        t.send("smtproutes new example.org\r")
        await t.expect("Next hops")
        t.send("mx.example.net\r")
        await t.expect("staged")
        await t.expect(PROMPT)
        t.send("commit\r")
        await t.expect("committed")

    interact(harness, script)
    routes = harness.call(lambda: harness.machine.effective("smtproutes").value)
    assert "mx.example.net" in str(routes)


def test_tab_completes_command_names(harness: Harness) -> None:
    """Tab completes a unique command prefix."""

    async def script(t: Terminal) -> None:
        await t.expect(PROMPT)
        t.send("vers\t")
        await t.expect("version")
        t.send("\r")
        await t.expect(harness.fingerprint)

    interact(harness, script)


def test_uncommitted_edits_are_reported_on_exit(harness: Harness) -> None:
    """Leaving with staged edits says they were discarded."""

    async def script(t: Terminal) -> None:
        await t.expect(PROMPT)
        t.send("smtproutes new example.org --to mx.example.net\r")
        await t.expect("staged")
        await t.expect(PROMPT)
        t.send("exit\r")
        await t.expect("uncommitted change(s) discarded")

    interact(harness, script)
