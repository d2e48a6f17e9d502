"""``redisched scripts``: the Lua scripts and their headers, for callers in other languages."""

from __future__ import annotations

import json
from dataclasses import asdict
from importlib import resources
from pathlib import Path

import click

from .. import scripts as lua


def lua_dir() -> Path:
    """The folder of the installed ``.lua`` files (and their README.md)."""
    return Path(str(resources.files("redisched") / "lua"))


def header(source: str) -> str:
    """The header of a script: its leading comment lines."""
    lines = []
    for line in source.splitlines(keepends=True):
        if not line.startswith("--"):
            break
        lines.append(line)
    return "".join(lines)


@click.group()
def scripts() -> None:
    """The Lua scripts, to call redisched from any language (see `scripts path`/README.md)."""


@scripts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Names, keys, arguments and SHA1 as JSON.")
def list_scripts(as_json: bool) -> None:
    """List the scripts with their summaries."""
    found = lua.load_all()
    if as_json:
        data = [
            {
                "name": s.name,
                "summary": s.summary,
                "sha1": s.sha,
                "keys": [p.name for p in s.keys],
                "argv": [asdict(p) for p in s.argv],
                "returns": s.returns,
            }
            for s in found.values()
        ]
        click.echo(json.dumps(data, indent=2))
        return
    width = max(len(name) for name in found)
    for s in found.values():
        click.echo(f"{s.name:<{width}}  {len(s.keys):>2} keys  {len(s.argv):>2} args  {s.summary}")


@scripts.command()
@click.argument("name", type=click.Choice(sorted(lua.load_all())), metavar="NAME")
@click.option("--header-only", is_flag=True, help="Print only the header (the contract).")
def show(name: str, header_only: bool) -> None:
    """Print the script NAME, starting with its header."""
    source = lua.get(name).source
    click.echo(header(source) if header_only else source, nl=False)


@scripts.command()
def path() -> None:
    """Print the folder of the .lua files, for loading them from another language."""
    click.echo(str(lua_dir()))
