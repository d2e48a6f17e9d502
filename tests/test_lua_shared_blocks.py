"""The helper functions copied into several scripts stay identical copies.

Each script is self-contained (the ``.lua`` files are the cross-language interface, see
docs/design.md section 1), so helpers such as ``add_event``, ``flush_feed``, ``finish`` or
``advance_schedule`` are copied into every script that needs them. A fix made to one copy
must reach them all: every ``local function NAME`` defined in more than one script has one
text, byte for byte. A script that needs another variant gives it another name.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

LUA_DIR = Path(__file__).resolve().parents[1] / "src" / "redisched" / "lua"
"""The scripts as written (the installed package may be an older copy)."""
_START = re.compile(r"^local function (\w+)\(")
_ONE_LINE = re.compile(r"^local function \w+\([^)]*\) .* end$")

KNOWN_VARIANTS: dict[tuple[str, str], str] = {}
"""(function, script) pairs whose copy differs today, waiting for the lead's decision (rename
or align). The test fails when one of them is gone, so the list only shrinks."""


def definitions(source: str) -> dict[str, str]:
    """The text of each top-level ``local function`` of a script, by name.

    A definition is one line (``local function f(x) return x end``) or runs to the first
    line that is exactly ``end`` (the bodies are indented).
    """
    lines = source.splitlines()
    found: dict[str, str] = {}
    i = 0
    while i < len(lines):
        match = _START.match(lines[i])
        if match:
            end = i
            if not _ONE_LINE.match(lines[i]):
                end = lines.index("end", i + 1)
            name = match.group(1)
            assert name not in found, f"{name} is defined twice in one script"
            found[name] = "\n".join(lines[i : end + 1])
            i = end
        i += 1
    return found


def copies(sources: dict[str, str]) -> dict[str, dict[str, str]]:
    """For each function name: the text of its definition in each script that has one."""
    by_name: dict[str, dict[str, str]] = defaultdict(dict)
    for script, source in sources.items():
        for name, text in definitions(source).items():
            by_name[name][script] = text
    return by_name


def divergent(sources: dict[str, str]) -> set[tuple[str, str]]:
    """(function, script) pairs whose copy differs from the one most scripts share."""
    out: set[tuple[str, str]] = set()
    for name, texts in copies(sources).items():
        if len(texts) < 2:
            continue
        counts: dict[str, int] = defaultdict(int)
        for text in texts.values():
            counts[text] += 1
        common = max(counts, key=lambda t: (counts[t], t))
        out |= {(name, script) for script, text in texts.items() if text != common}
    return out


def _sources() -> dict[str, str]:
    return {path.stem: path.read_text("utf-8") for path in sorted(LUA_DIR.glob("*.lua"))}


SOURCES = _sources()


def test_definitions_are_found() -> None:
    shared = {name for name, texts in copies(SOURCES).items() if len(texts) > 1}
    assert {"add_event", "flush_feed", "finish", "trim_dead", "materialize"} <= shared
    assert "advance_schedule" in shared
    one_liner = definitions(SOURCES["get"])["decode"]
    assert one_liner == "local function decode(raw) return {cmsgpack.unpack(raw)} end"
    assert definitions(SOURCES["ack"])["flush_feed"].endswith("\nend")


@pytest.mark.parametrize("name", sorted(n for n, t in copies(SOURCES).items() if len(t) > 1))
def test_copies_are_identical(name: str) -> None:
    texts = copies(SOURCES)[name]
    differing = {s for f, s in divergent(SOURCES) if f == name} - {
        s for f, s in KNOWN_VARIANTS if f == name
    }
    groups: dict[str, list[str]] = defaultdict(list)
    for script, text in sorted(texts.items()):
        groups[text].append(script)
    assert not differing, (
        f"local function {name} has {len(groups)} different texts, in the scripts "
        f"{' / '.join(str(g) for g in groups.values())}: make the copies identical, or give "
        "the variant its own name"
    )


def test_known_variants_still_differ() -> None:
    gone = set(KNOWN_VARIANTS) - divergent(SOURCES)
    assert not gone, f"no longer divergent, drop them from KNOWN_VARIANTS: {sorted(gone)}"


def test_a_mutated_copy_is_caught() -> None:
    mutated = dict(SOURCES)
    mutated["ack"] = mutated["ack"].replace(
        "  if #feed == 0 then return feed_epoch end", "  if #feed < 1 then return feed_epoch end", 1
    )
    assert mutated["ack"] != SOURCES["ack"]
    assert divergent(mutated) - divergent(SOURCES) == {("flush_feed", "ack")}
    spaced = dict(SOURCES)
    spaced["refill"] = spaced["refill"].replace(
        "local function decode(raw) return {cmsgpack.unpack(raw)} end",
        "local function decode(raw)  return {cmsgpack.unpack(raw)} end",
        1,
    )
    assert divergent(spaced) - divergent(SOURCES) == {("decode", "refill")}


INLINE_EVENTS = ("reserve", "ack")
"""Scripts that add their one event inline instead of calling ``add_event`` (its closure,
made on every call, costs more than the event: docs/design.md section 21)."""


def _code_lines(text: str) -> list[str]:
    """Each line stripped, without its trailing ``--`` comment."""
    return [line.split(" -- ")[0].strip() for line in text.splitlines()]


def event_log_lines(add_event: str) -> tuple[list[str], str]:
    """What add_event does to a log, as the inline copies write it (its ``count`` named
    ``events``: in reserve.lua, ``count`` is the lease's): the lines that drop the oldest event
    but the put past MAX_EVENTS, and the line that appends the new event."""
    lines = [line.replace("count", "events") for line in _code_lines(add_event)]
    start = lines.index("local events = string.byte(log)")
    end = lines.index("end", lines.index("events = events - 1", start))
    append = "job[LOG] = string.char(events + 1) .. string.sub(log, 2) .. event"
    assert append in lines
    return lines[start : end + 1], append


def inline_copy_follows(script: str, trim: list[str], append: str) -> bool:
    """True when ``script`` holds the lines of ``trim`` one after another, and ``append``."""
    lines = _code_lines(script)
    starts = [i for i, line in enumerate(lines) if line == trim[0]]
    return append in lines and any(lines[i : i + len(trim)] == trim for i in starts)


@pytest.mark.parametrize("script", INLINE_EVENTS)
def test_inline_events_keep_in_step_with_add_event(script: str) -> None:
    add_event = next(iter(copies(SOURCES)["add_event"].values()))
    trim, append = event_log_lines(add_event)
    assert len(trim) == 7
    assert inline_copy_follows(SOURCES[script], trim, append), (
        f"{script}.lua adds its event inline: make it do what add_event does"
    )
    changed = SOURCES[script].replace("events = events - 1", "events = events - 2", 1)
    assert not inline_copy_follows(changed, trim, append)
