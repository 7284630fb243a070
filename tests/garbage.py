"""What a request leaves for the cyclic garbage collector: objects held only by reference cycles wait for its full
collections, which pause some later request for tens of milliseconds."""

import gc
from collections.abc import Callable


def left_for_the_collector(request: Callable[[], None], kinds: type | tuple[type, ...]) -> list:
    """The objects of `kinds` that only the cycle collector frees once `request()` (which keeps nothing) has run."""
    gc.collect()
    gc.disable()
    try:
        request()
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        return [found for found in gc.garbage if isinstance(found, kinds)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def done_with(response) -> None:
    """Undoes the test client's own cycle on `response` (its json attribute is a partial of the response)."""
    vars(response).pop("json", None)
