"""The sandbox's shared caches build each value once, however many server threads ask at once.

A cold sandbox meets its first burst of requests on many threads. With `functools.cache`
each of them built moto's Lambda router (and the sandbox's own routes and models) for
itself; a cold 500-function dry run cost the sandbox over a minute of CPU.
"""

from __future__ import annotations

import threading

from moto.core import responses as moto_responses
from moto.core import routing as moto_routing

from optimizer_async.sandbox import dispatch
from optimizer_async.sandbox.once import built_once

# How long a first builder waits for a second caller to finish building for itself: long
# enough for a thread to start on a loaded machine; a correct cache always waits it out.
_RACE_S = 1.0


def test_a_value_asked_for_while_it_is_built_is_built_once() -> None:
    """Another thread asks while the first caller is still building: it waits for that value
    (functools.cache lets it build its own, and this test then fails)."""
    built: list[str] = []
    results: list[object] = []
    others: list[threading.Thread] = []

    @built_once
    def build(key: str) -> object:
        built.append(key)
        if len(built) == 1:
            other = threading.Thread(target=lambda: results.append(build(key)))
            other.start()
            other.join(_RACE_S)  # returns at once if the other caller may build for itself
            others.append(other)
        return object()

    results.append(build("lambda"))
    for other in others:
        other.join()
    assert built == ["lambda"]
    assert len(results) == 2
    assert results[0] is results[1]


def test_moto_routes_through_one_router_per_service_with_its_url_map_built() -> None:
    dispatch.speed_up_moto()
    route = vars(moto_responses)["get_service_router"]  # what moto's responses call
    router = route("lambda")
    assert router is route("lambda")
    assert router is moto_routing.get_service_router("lambda")
    assert set(router._routers) == {"rest-json"}  # built before any request is matched
