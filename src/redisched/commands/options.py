"""Click options generated from a settings class's declarations (:mod:`redisched.setting`).

An option reads its value with the setting's own parser (so ``--port 8080`` and
``REDISCHED_PORT=8080`` give the same value) and has no default of its own: an option left
out passes None, and the settings class takes the variable's value, else its default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from .. import setting
from ..errors import InvalidArgument
from ..setting import Spec

F = TypeVar("F", bound=Callable[..., Any])


class SettingType(click.ParamType[Any, Any]):
    """Reads an option's text with its setting's parser."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        choices = getattr(spec.parse, "choices", None)
        self.name = spec.metavar or (
            "[" + "|".join(choices) + "]"
            if choices
            else getattr(spec.parse, "metavar", None) or _METAVARS.get(spec.parse, "TEXT")
        )

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The setting's value of ``value``; a usage error naming the option if refused."""
        if not isinstance(value, str):
            return value
        name = param.opts[0] if param is not None and param.opts else "value"
        try:
            return self.spec.parse(name, value)
        except InvalidArgument as exc:
            self.fail(exc.message, param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        """The value's name in ``--help``."""
        return self.name


_METAVARS: dict[Any, str] = {setting.path: "DIRECTORY"}


def _default_text(spec: Spec, value: Any) -> str | None:
    if spec.default_text is not None:
        return spec.default_text
    if value is None or spec.flag or value == ():
        return None
    return str(value)


def option(
    name: str, spec: Spec, default: Any = None, *, help: str | None = None
) -> Callable[[F], F]:
    """The click option of the setting ``name`` (its default shown in the help only)."""
    shown = _default_text(spec, default)
    tail = f"env {spec.env}" + (f"; default {shown}" if shown else "")
    decls = [*([spec.short] if spec.short else []), setting.option_of(name, spec), name]
    text = f"{help or spec.help} [{tail}]"
    if spec.flag:
        return click.option(*decls, is_flag=True, default=None, help=text)
    return click.option(
        *decls, type=SettingType(spec), multiple=spec.multiple, default=None, help=text
    )


def options(cls: type) -> Callable[[F], F]:
    """Every declared setting of ``cls`` as a click option."""
    made = [
        option(name, spec, setting.default(cls, name)) for name, spec in setting.specs(cls).items()
    ]

    def decorate(function: F) -> F:
        for make in reversed(made):
            function = make(function)
        return function

    return decorate


def chosen(values: Mapping[str, Any]) -> dict[str, Any]:
    """The options given on the command line: those that are not None or empty."""
    return {k: v for k, v in values.items() if v is not None and v != ()}


def option_name(cls: type, argument: str) -> str:
    """The option of a setting named in an error (``redis_url`` -> ``--redis-url``); other
    names (``--redis-url``, ``REDISCHED_PORT``) as they are."""
    found = setting.specs(cls).get(argument)
    if found is None:
        return argument
    return setting.option_of(argument, found)


def fail(exc: InvalidArgument, cls: type, given: Mapping[str, Any]) -> click.ClickException:
    """The error of a refused setting, naming its option or variable.

    A value given as an option (in ``given``, the command's options) is a usage error (exit
    2, with the command's usage), as click's own type errors are; a value from an environment
    variable or a default is one line (exit 1).
    """
    text = f"{option_name(cls, exc.argument)}: {exc.message}"
    if exc.argument in chosen(given):
        return click.UsageError(text)
    return click.ClickException(text)


__all__ = ["SettingType", "chosen", "fail", "option", "option_name", "options"]
