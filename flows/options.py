"""Command-line options generated from RunParameters (the Prefect UI's form model)."""

from __future__ import annotations

import argparse
import logging
import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo

from flows.models import RunParameters

logger = logging.getLogger(__name__)


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _base_type(annotation: Any) -> Any:
    """``Annotated[str, ...]`` -> ``str``."""
    while hasattr(annotation, "__metadata__"):
        annotation = get_args(annotation)[0]
    return annotation


def _add_parameter(parser: argparse.ArgumentParser, name: str, info: FieldInfo) -> None:
    flag = "--" + name.replace("_", "-")
    default = info.get_default(call_default_factory=True)
    # argparse %-formats help strings; descriptions may say "98 %".
    help_text = f"{info.description} (default: {default!r})".replace("%", "%%")
    annotation = _strip_optional(info.annotation)
    kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
    if annotation is bool:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        return
    if get_origin(annotation) is list:
        parser.add_argument(flag, nargs="+", action="extend", metavar="VALUE", **kwargs)
        return
    if get_origin(annotation) is Literal:
        parser.add_argument(flag, choices=[str(a) for a in get_args(annotation)], **kwargs)
        return
    base = _base_type(annotation)
    parser.add_argument(
        flag, type=base if base in (int, float) else str, metavar=name.upper(), **kwargs
    )


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML or JSON file of run parameters.")
    for name, info in RunParameters.model_fields.items():
        _add_parameter(parser, name, info)


def resolve_parameters(args: argparse.Namespace) -> RunParameters:
    """Defaults < config file < command-line options."""
    from flows.settings import load_config_file, parameters

    values: dict[str, Any] = load_config_file(args.config) if args.config else {}
    values.update({k: v for k, v in vars(args).items() if k in RunParameters.model_fields})
    return parameters(values, where=f"config {args.config}" if args.config else "options")
