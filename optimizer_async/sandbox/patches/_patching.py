"""Monkey-patching helpers: wrap a moto method once per patch, loudly failing if moto changed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_APPLIED = "__sandbox_patches__"


def wrap_method(cls: type, name: str) -> Callable[[Callable[..., Any]], None]:
    """Replace `cls.name` by `wrapper(original, self, *args, **kwargs)`.

    Several patches may wrap one method; applying the same patch twice is a no-op.
    """

    def install(wrapper: Callable[..., Any]) -> None:
        original = cls.__dict__.get(name)
        if original is None:
            raise RuntimeError(f"moto changed: {cls.__qualname__}.{name} is gone; update the patch")
        patch_id = f"{wrapper.__module__}.{wrapper.__qualname__}"
        applied: frozenset[str] = getattr(original, _APPLIED, frozenset())
        if patch_id in applied:
            return

        def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
            return wrapper(original, self, *args, **kwargs)

        patched.__name__ = name
        patched.__doc__ = wrapper.__doc__
        setattr(patched, _APPLIED, applied | {patch_id})
        setattr(cls, name, patched)

    return install
