"""The generated reference (docs/reference/) matches the code it is generated from."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import click
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_reference.py"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


@pytest.mark.parametrize("path", sorted(gen.PAGES))
def test_reference_page_is_up_to_date(path: str) -> None:
    """Each generated reference page on disk equals what the generator makes from the code."""
    expected = gen.PAGES[path]()
    target = ROOT / path
    actual = target.read_text(encoding="utf-8") if target.is_file() else None
    assert actual == expected, f"{path} is stale: run `make docs` and commit the result"


def test_generation_is_deterministic() -> None:
    """Generating twice in one process gives identical pages (no time, order or width)."""
    assert gen.generate() == gen.generate()


def test_check_names_stale_pages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--check` exits 1 naming the stale pages, and 0 once they are written."""
    assert gen.main(["--check"], root=tmp_path) == 1
    assert "docs/reference/commands.md" in capsys.readouterr().err
    assert gen.main([], root=tmp_path) == 0
    assert gen.main(["--check"], root=tmp_path) == 0


def _commands() -> list[tuple[str, click.Command]]:
    import mxcluster.shell.commands  # noqa: F401  (registers every command)
    from mxcluster.shell.core import REGISTRY

    def walk(path: str, cmd: click.Command) -> list[tuple[str, click.Command]]:
        found = [(path, cmd)]
        if isinstance(cmd, click.Group):
            for sub, sub_cmd in sorted(cmd.commands.items()):
                if not sub_cmd.hidden:  # internal (e.g. 'clusterconfig admit')
                    found += walk(f"{path} {sub}", sub_cmd)
        return found

    return [item for name, info in sorted(REGISTRY.items()) for item in walk(name, info.command)]


def test_every_shell_command_has_help() -> None:
    """Every shell command and sub-command has help text (it is its reference entry)."""
    missing = [name for name, cmd in _commands() if not (cmd.help or "").strip()]
    assert not missing, f"shell commands without help text: {missing}"


def test_every_block_has_help() -> None:
    """Every setting block in the registry has help text."""
    from mxcluster.config.registry import BLOCKS

    missing = [name for name, spec in BLOCKS.items() if not spec.help.strip()]
    assert not missing, f"setting blocks without help text: {missing}"


def test_every_command_and_block_is_in_the_reference() -> None:
    """Each command, sub-command and block has a heading in the generated pages."""
    from mxcluster.config.registry import BLOCKS

    commands = gen.render_commands()
    blocks = gen.render_blocks()
    assert all(f"# {name}\n" in commands for name, _ in _commands())
    assert all(f"## {name}\n" in blocks for name in BLOCKS)


_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def test_relative_links_in_docs_resolve() -> None:
    """Every relative link in README.md, CONTRIBUTING.md and docs/ points to an existing file."""
    pages = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
    broken = []
    for md in pages:
        for target in _LINK.findall(md.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (md.parent / target).exists():
                broken.append(f"{md.relative_to(ROOT)} -> {target}")
    assert not broken, f"broken links: {broken}"
