"""moto's response serializer works out each member's candidate attribute names once.

moto 5.2.5's XFormedAttributePicker asks six alias providers, per member of every response
structure, which attribute names might hold the value, building a provider object for each
(a fifth of the cost of writing a response). The answer depends only on the picker's
providers, the value's class, the member's name, its shape and its parent structure, so it
is remembered under those. A value carrying its own `Meta` (not its class's) is asked
afresh, as moto would.
"""

from __future__ import annotations

from typing import Any, Final

from moto.core.serialize import XFormedAttributePicker

from optimizer_async.sandbox.patches._patching import wrap_method

_MAX_ENTRIES: Final = 100_000  # shapes are cached per service: far fewer in practice
_keys: dict[tuple[object, ...], tuple[str, ...]] = {}


def apply() -> None:
    @wrap_method(XFormedAttributePicker, "get_possible_keys")
    def get_possible_keys(original: Any, picker: Any, context: Any) -> tuple[str, ...]:
        value, shape = context.obj, context.shape
        kind = type(value)
        if getattr(value, "Meta", None) is not getattr(kind, "Meta", None):
            return tuple(original(picker, context))
        key = (
            type(picker),
            tuple(picker.alias_providers),
            kind,
            context.key,
            shape,
            getattr(shape, "parent", None),
        )
        found = _keys.get(key)
        if found is None:
            if len(_keys) >= _MAX_ENTRIES:
                _keys.clear()
            found = _keys[key] = tuple(original(picker, context))
        return found
