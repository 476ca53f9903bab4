"""``mxcluster``: create a machine, run it, or administer one (SPEC §3)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mxcluster import __version__
from mxcluster.errors import MxclusterError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mxcluster")
def main() -> None:
    """mxcluster: a peer-to-peer cluster manager for SMTP mail gateways."""


def _fail(exc: MxclusterError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


@main.command()
@click.option("--data-dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--hostname", required=True, help="The machine's FQDN; commands name it by this.")
@click.option("--address", required=True, help="Management IP address.")
@click.option("--ssh-port", default=2222, show_default=True, type=click.IntRange(1, 65535))
@click.option("--https-port", default=8443, show_default=True, type=click.IntRange(1, 65535))
@click.option("--admin-password-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File whose first line is the admin password (default: generate one).")
def setup(data_dir: Path, hostname: str, address: str, ssh_port: int, https_port: int,
          admin_password_file: Path | None) -> None:
    """Create a new machine in DATA_DIR (refuses to overwrite an existing one)."""
    from mxcluster.provision.setup import setup_machine

    password = None
    if admin_password_file is not None:
        lines = admin_password_file.read_text(encoding="utf-8").splitlines()
        password = lines[0] if lines else ""
    try:
        generated = setup_machine(data_dir, hostname, address, ssh_port=ssh_port,
                                  https_port=https_port, admin_password=password)
    except MxclusterError as exc:
        _fail(exc)
    click.echo(f"Machine {hostname} created in {data_dir}.")
    if generated:
        click.echo(f"Admin password (shown once, write it down): {generated}")
    click.echo(f"Start it with: mxcluster serve --data-dir {data_dir}")
    click.echo(f"Then log in:   ssh -p {ssh_port} admin@{address}")


@main.command()
@click.option("--data-dir", required=True, type=click.Path(file_okay=False, path_type=Path))
def serve(data_dir: Path) -> None:
    """Run the machine stored in DATA_DIR until SIGTERM or SIGINT."""
    from mxcluster.daemon.app import serve as run

    try:
        run(data_dir)
    except MxclusterError as exc:
        _fail(exc)


def _add_cli() -> None:
    try:
        from mxcluster.cli.client import cli_command
    except ImportError:  # the client is optional while it is being built
        return
    main.add_command(cli_command, "cli")


_add_cli()
