"""The fields of a settings dataclass (TrainConfig) as options: the CLI flags and the Train panel's controls are
generated from them, so a new training option is written once, in the config, with its docstring as help."""
from __future__ import annotations

import ast
import inspect
import textwrap
import types
import typing
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Option:
    name: str
    kind: type
    """bool, int, float or str."""
    optional: bool
    """None is allowed (and means: decided elsewhere, e.g. by the run's length or the machine)."""
    default: Any
    help: str


def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of a class: the string literal right below each annotated field."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    return {field.target.id: " ".join(doc.value.value.split()) for field, doc in zip(body, body[1:])
            if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)
            and isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str)}


def options_of(cls: type) -> list[Option]:
    """Every field of the dataclass `cls`, in declaration order."""
    docs, hints = field_docs(cls), typing.get_type_hints(cls)
    return [Option(f.name, *_kind(hints[f.name]), default=f.default, help=docs.get(f.name, "")) for f in fields(cls)]


def _kind(hint: Any) -> tuple[type, bool]:
    """(the value's type, whether None is allowed) of a hint such as `int` or `int | None`."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        kinds = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return kinds[0], len(kinds) < len(typing.get_args(hint))
    return hint, False
