"""A run the service's API is asked for: checked against the service's own configuration.

A request may narrow what the service runs - some of its environments, a dry run, fewer
steps - never widen it: its suffixes must be the service's (or pass its globs), its steps a
subset of the service's. The same check runs when the request is accepted and again when a
restarted service takes up the requests it had queued (its configuration may have changed
since: a request it no longer admits is cancelled with the reason).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from optimizer_async.definitions.naming import InvalidNameError, validate_suffix
from optimizer_async.fleet.finder import Filters
from optimizer_async.runs.configs import RunConfig
from optimizer_async.steps.registry import REGISTRY, SelectionError

FIELDS: Final = frozenset({"suffixes", "dry_run", "only", "skip"})


def requested(config: RunConfig, asked: Mapping[str, Any]) -> RunConfig:
    """The run `asked` for (its JSON fields, each optional) within `config`, the service's;
    ValueError: why not."""
    unknown = sorted(set(asked) - FIELDS)
    if unknown:
        raise ValueError(
            f"unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(FIELDS))})"
        )
    changes: dict[str, Any] = {}
    if "suffixes" in asked:
        suffixes = _strings(asked["suffixes"], "suffixes")
        if not suffixes:
            raise ValueError("suffixes must name at least one environment")
        try:
            wanted = tuple(dict.fromkeys(validate_suffix(s) for s in suffixes))  # each once
        except InvalidNameError as error:
            raise ValueError(str(error)) from None
        for suffix in wanted:
            if config.find_all:
                refusal = Filters(config.match, config.exclude).refusal(suffix)
                if refusal is not None:
                    raise ValueError(f"{suffix}: outside what this service runs ({refusal})")
            elif suffix not in config.suffixes:
                raise ValueError(f"{suffix} is not one of this service's environments")
        changes |= {"suffixes": wanted, "find_all": False, "match": (), "exclude": ()}
    if "dry_run" in asked:
        if not isinstance(asked["dry_run"], bool):
            raise ValueError("dry_run must be true or false")
        changes["dry_run"] = asked["dry_run"] or config.dry_run  # a dry-run service stays one
    # Steps narrow what the service runs, never widen it.
    only = tuple(_strings(asked.get("only", []), "only"))
    skip = tuple(dict.fromkeys((*config.skip, *_strings(asked.get("skip", []), "skip"))))
    if config.only and only and not set(only) <= set(config.only):
        raise ValueError(f"only: this service runs only {', '.join(config.only)}")
    only = only or config.only
    try:
        REGISTRY.select(only, skip)
    except SelectionError as error:
        raise ValueError(str(error)) from None
    return replace(config, **changes, only=only, skip=skip)


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name} must be a list of strings")
    return value
