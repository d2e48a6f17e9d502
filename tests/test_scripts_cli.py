"""``redisched scripts list|show|path``, and the redis-cli session of lua/README.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from redisched import scripts
from redisched.cli import main
from redisched.commands.scripts import lua_dir
from redisched.embedded import EmbeddedRedis, companion_tool

README = lua_dir() / "README.md"
MARKER = "<!-- tests/test_scripts_cli.py runs this session"


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, ["scripts", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_list_names_every_script_with_its_summary() -> None:
    lines = invoke("list").splitlines()
    assert [line.split()[0] for line in lines] == sorted(scripts.load_all())
    put = next(line for line in lines if line.startswith("put "))
    assert put.endswith(scripts.get("put").summary) and " 10 keys " in put


def test_list_json_gives_each_header() -> None:
    data = json.loads(invoke("list", "--json"))
    assert [d["name"] for d in data] == sorted(scripts.load_all())
    for entry in data:
        script = scripts.get(entry["name"])
        assert entry["keys"] == [p.name for p in script.keys]
        assert [a["name"] for a in entry["argv"]] == [p.name for p in script.argv]
        assert entry["sha1"] == script.sha
    put = next(d for d in data if d["name"] == "put")
    assert [a["name"] for a in put["argv"] if a["repeats"]] == ["id", "body"]


def test_show_prints_the_script_with_its_header() -> None:
    shown = invoke("show", "reserve")
    assert shown == scripts.get("reserve").source
    assert shown.startswith("-- reserve: ") and "-- KEYS[1] jobs hash\n" in shown


def test_show_header_only_stops_at_the_code() -> None:
    shown = invoke("show", "touch", "--header-only")
    lines = shown.splitlines()
    assert all(line.startswith("--") for line in lines)
    assert lines[0].startswith("-- touch: ") and lines[-1].startswith("-- Complexity:")


def test_show_an_unknown_script_names_the_choices() -> None:
    result = CliRunner().invoke(main, ["scripts", "show", "nope"])
    assert result.exit_code == 2
    assert "'nope' is not one of" in result.output and "'put'" in result.output


def test_path_is_the_folder_the_package_loads() -> None:
    folder = Path(invoke("path").strip())
    assert folder == lua_dir()
    assert (folder / "put.lua").read_text(encoding="utf-8") == scripts.get("put").source
    assert (folder / "README.md").is_file()


def _session() -> list[tuple[str, str]]:
    """The (command, expected output) pairs of the README's redis-cli session."""
    text = README.read_text(encoding="utf-8")
    block = text.split(MARKER, 1)[1].split("```console\n", 1)[1].split("```", 1)[0]
    pairs: list[tuple[str, str]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            pairs.append((line[2:], ""))
        else:
            command, output = pairs[-1]
            pairs[-1] = (command, output + line + "\n")
    return pairs


def _redis_cli() -> str:
    found = companion_tool("redis-cli")
    if found is None:
        pytest.fail("redis-cli is not installed")
    return found


def test_readme_redis_cli_session_puts_and_gets_a_job(
    redis_server: EmbeddedRedis, topic: str
) -> None:
    pairs = _session()
    assert len(pairs) >= 4
    separator = "@@@ end of command @@@"
    script = [
        # The README's redis-cli, pointed at this test's server; redisched from this venv.
        f'redis-cli() {{ "{_redis_cli()}" -p {redis_server.port} --no-raw "$@"; }}',
        f'export PATH="{Path(sys.executable).parent}:$PATH"',
    ]
    for command, _ in pairs:
        script += [command.replace("emails", topic), f"echo '{separator}'"]
    proc = subprocess.run(
        ["bash", "-euc", "\n".join(script)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    outputs = proc.stdout.split(separator + "\n")[:-1]

    def normal(text: str) -> str:  # run_at_ms comes from the server clock
        return re.sub(r"\b\d{13}\b", "<epoch ms>", text)

    assert [normal(out) for out in outputs] == [normal(expected) for _, expected in pairs]
