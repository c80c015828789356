"""Counts in words for messages: "1 shard", "2 shards"."""

from __future__ import annotations


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``count`` and the noun, in the singular for exactly one."""
    if count == 1:
        return f"{count} {singular}"
    return f"{count} {plural_form or singular + 's'}"


__all__ = ["plural"]
