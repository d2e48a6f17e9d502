"""One declaration per setting: its default, environment variable, option, help and parser.

A settings class is a frozen dataclass whose fields are made with :func:`setting`; the
environment loader (:func:`from_env`) and the command line options
(:func:`redisched.commands.options.options`) are both generated from those fields, and both
read a value's text with the same parser, so ``REDISCHED_PORT=8080`` and ``--port 8080`` give
the same value (model: Starlette's ``Config``). The default lives in the field, nowhere else.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from . import validate
from .errors import InvalidArgument

Parser = Callable[[str, str], Any]
"""Reads one value's text; called with the name to blame (a variable or an option) and the
text; raises InvalidArgument naming it."""
T = TypeVar("T")
SPEC = "redisched.setting"
"""The key of a field's :class:`Spec` in its metadata."""

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def text(_name: str, value: str) -> str:
    """The text, stripped of surrounding spaces."""
    return value.strip()


def path(_name: str, value: str) -> Path:
    """A file system path."""
    return Path(value)


def flag(name: str, value: str) -> bool:
    """1/0, true/false, yes/no or on/off."""
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise InvalidArgument(name, f"must be one of 1/0, true/false, yes/no, on/off, not {value!r}")


def integer(low: int | None = None, high: int | None = None) -> Parser:
    """A parser of whole numbers in digits 0-9, within ``low``..``high`` when given."""

    def parse(name: str, value: str) -> int:
        number = validate.integer_text(value.strip(), name)
        if (low is not None and number < low) or (high is not None and number > high):
            raise InvalidArgument(name, f"must be between {low} and {high}, not {number}")
        return number

    parse.metavar = "INTEGER"  # type: ignore[attr-defined]
    return parse


def number(low: float | None = None, high: float | None = None) -> Parser:
    """A parser of numbers written as in JSON, at least ``low`` and at most ``high``."""

    def parse(name: str, value: str) -> float:
        found = validate.number_text(value.strip(), name)
        if low is not None and found < low:
            raise InvalidArgument(name, f"must be at least {low:g}, not {found:g}")
        if high is not None and found > high:
            raise InvalidArgument(name, f"must be at most {high:g}, not {found:g}")
        return found

    parse.metavar = "NUMBER"  # type: ignore[attr-defined]
    return parse


def choice(*choices: str) -> Parser:
    """A parser accepting one of ``choices``."""

    def parse(name: str, value: str) -> str:
        word = value.strip()
        if word not in choices:
            raise InvalidArgument(name, f"must be one of {', '.join(choices)}, not {value!r}")
        return word

    parse.choices = choices  # type: ignore[attr-defined]
    return parse


@dataclass(frozen=True, slots=True)
class Spec:
    """How a setting is read besides its default.

    Attributes:
        env: the environment variable.
        help: one sentence for ``--help``.
        parse: reads one value's text (the variable's, or the option's).
        option: the long option (None: ``--`` and the field's name with dashes).
        short: a short option such as ``-c``, if any.
        flag: the option takes no value (``--insecure``); the variable takes 1/0, yes/no...
        multiple: the option may be repeated; the variable holds the values separated by
            whitespace or ``separator``.
        separator: a separator of a multiple variable's values besides whitespace.
        metavar: the value's name in ``--help`` (None: from the parser).
        default_text: the default as ``--help`` says it (None: the field's default).
    """

    env: str
    help: str
    parse: Parser = text
    option: str | None = None
    short: str | None = None
    flag: bool = False
    multiple: bool = False
    separator: str | None = None
    metavar: str | None = None
    default_text: str | None = None

    def read(self, name: str, value: str) -> Any:
        """The value of the text ``value`` (a multiple setting's: a tuple of its items)."""
        if self.flag:
            return flag(name, value)
        if not self.multiple:
            return self.parse(name, value)
        if self.separator:
            value = value.replace(self.separator, " ")
        return tuple(self.parse(name, item) for item in value.split())


def setting(default: Any, spec: Spec) -> Any:
    """A dataclass field with ``default`` read as ``spec`` says."""
    return dataclasses.field(default=default, metadata={SPEC: spec})


def specs(cls: type) -> dict[str, Spec]:
    """Each declared setting of the dataclass ``cls``, by field name, in field order."""
    return {f.name: f.metadata[SPEC] for f in dataclasses.fields(cls) if SPEC in f.metadata}


def default(cls: type, name: str) -> Any:
    """The default of ``cls``'s field ``name``."""
    found = {f.name: f for f in dataclasses.fields(cls)}[name]
    if found.default_factory is not dataclasses.MISSING:
        return found.default_factory()
    return found.default


def option_of(name: str, spec: Spec) -> str:
    """The long option of the setting ``name``."""
    return spec.option or "--" + name.replace("_", "-")


def env_value(spec: Spec, environ: Mapping[str, str] | None = None) -> Any:
    """The value of ``spec``'s variable in ``environ`` (default: the process's); None if unset.

    Raises:
        InvalidArgument: naming the variable if its text is not a valid value.
    """
    value = (os.environ if environ is None else environ).get(spec.env)
    return spec.read(spec.env, value) if value is not None and value.strip() else None


def read_env(cls: type, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The values that ``environ`` (default: the process's) sets for ``cls``'s settings.

    Raises:
        InvalidArgument: naming the variable whose text is not a valid value.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, spec in specs(cls).items():
        value = env.get(spec.env)
        if value is not None and value.strip():
            values[name] = spec.read(spec.env, value)
    return values


def from_env(
    cls: type[T], environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] = {}
) -> T:
    """``cls`` from its variables in ``environ``, then ``overrides`` (None values ignored).

    Raises:
        InvalidArgument: naming the variable when a variable's value is refused (even by the
            class's own checks), else the setting.
    """
    values = read_env(cls, environ)
    chosen = {k: v for k, v in overrides.items() if v is not None}
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(chosen) - known
    if unknown:
        raise InvalidArgument(sorted(unknown)[0], "is not a setting")
    from_environment = set(values) - set(chosen)
    values.update(chosen)
    try:
        return cls(**values)
    except InvalidArgument as exc:
        if exc.argument in from_environment:
            raise InvalidArgument(specs(cls)[exc.argument].env, exc.message) from None
        raise


def check_numbers(settings: Any) -> None:
    """Raise InvalidArgument naming the first numeric setting of the dataclass instance
    ``settings`` that is not a number within its parser's bounds (None passes: unset).

    A value given in code gets the same bounds as the same value given as text.
    """
    for name, spec in specs(type(settings)).items():
        value = getattr(settings, name)
        kind = getattr(spec.parse, "metavar", None)
        if value is None or kind not in ("INTEGER", "NUMBER"):
            continue
        whole = kind == "INTEGER"
        if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
            raise InvalidArgument(name, "must be an integer" if whole else "must be a number")
        spec.parse(name, repr(value))


def env_names(cls: type) -> dict[str, str]:
    """Each setting's environment variable, by field name."""
    return {name: spec.env for name, spec in specs(cls).items()}


__all__ = [
    "Parser",
    "Spec",
    "check_numbers",
    "choice",
    "default",
    "env_names",
    "env_value",
    "flag",
    "from_env",
    "integer",
    "number",
    "option_of",
    "path",
    "read_env",
    "setting",
    "specs",
    "text",
]
