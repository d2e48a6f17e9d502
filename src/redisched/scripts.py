"""Load the Lua scripts shipped in ``redisched/lua`` and parse their headers.

The header of each script is its contract (STYLE.md): summary, ``KEYS[i] name type``,
``ARGV[i] name type``, ``Returns:``, ``Complexity:``. ``ops`` builds every call from it, so
the key list of a script has exactly one source of truth.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from importlib import resources

_PARAM = re.compile(r"^-- (KEYS|ARGV)\[(\d+)\] (\w+) (\S+)$")


@dataclass(frozen=True, slots=True)
class Param:
    """One KEYS or ARGV entry of a script header.

    ``repeats`` marks the entries that form a group repeated once per item (``type...``).
    """

    index: int
    name: str
    type: str
    repeats: bool


@dataclass(frozen=True, slots=True)
class Script:
    """A script's source and its parsed header."""

    name: str
    summary: str
    keys: tuple[Param, ...]
    argv: tuple[Param, ...]
    returns: str
    complexity: str
    source: str
    sha: str
    """The SHA1 that EVALSHA takes."""


class HeaderError(ValueError):
    """A script header does not follow the format of STYLE.md."""


def parse(name: str, source: str) -> Script:
    """Parse the header of one script; raise HeaderError when it breaks the format."""
    lines = source.splitlines()
    header: list[str] = []
    for line in lines:
        if not line.startswith("--"):
            break
        header.append(line)
    if not header or not header[0].startswith(f"-- {name}: "):
        raise HeaderError(f"{name}.lua must start with '-- {name}: <summary>'")
    summary = header[0].removeprefix(f"-- {name}: ")
    params: dict[str, list[Param]] = {"KEYS": [], "ARGV": []}
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in header[1:]:
        match = _PARAM.match(line)
        if match:
            kind, index, pname, ptype = match.groups()
            repeats = ptype.endswith("...")
            params[kind].append(Param(int(index), pname, ptype.removesuffix("..."), repeats))
            continue
        text = line.removeprefix("--").strip()
        for section in ("Returns:", "Complexity:"):
            if text.startswith(section):
                current = section
                sections[section] = [text.removeprefix(section).strip()]
                break
        else:
            if current is None:
                raise HeaderError(f"{name}.lua: unexpected header line {line!r}")
            sections[current].append(text)
    for kind, entries in params.items():
        if [p.index for p in entries] != list(range(1, len(entries) + 1)):
            raise HeaderError(f"{name}.lua: {kind} must be numbered 1..n in order")
    for section in ("Returns:", "Complexity:"):
        if section not in sections:
            raise HeaderError(f"{name}.lua: header lacks {section!r}")
    return Script(
        name=name,
        summary=summary,
        keys=tuple(params["KEYS"]),
        argv=tuple(params["ARGV"]),
        returns=" ".join(sections["Returns:"]),
        complexity=" ".join(sections["Complexity:"]),
        source=source,
        sha=hashlib.sha1(source.encode()).hexdigest(),
    )


@functools.cache
def load_all() -> dict[str, Script]:
    """Every script shipped with the package, by name (read and parsed once per process)."""
    folder = resources.files("redisched") / "lua"
    found: dict[str, Script] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".lua"):
            name = entry.name.removesuffix(".lua")
            found[name] = parse(name, entry.read_text(encoding="utf-8"))
    return found


def names() -> list[str]:
    """The name of every shipped script, sorted."""
    return sorted(load_all())


def get(name: str) -> Script:
    """One script by name (``put``, ``reserve``...)."""
    return load_all()[name]
