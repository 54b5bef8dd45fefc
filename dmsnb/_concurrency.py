"""How many list pages dmsnb asks for at once: a bound that backs off on 429.

:class:`AdaptiveLimit` lets at most :attr:`~AdaptiveLimit.limit` requests
hold a slot at the same time. The limit starts at its maximum (the client's
``max_workers``) and moves like TCP's congestion window (additive increase,
multiplicative decrease):

==================================  =========================================
what the service answered           the limit
==================================  =========================================
429 to a request sent since the     halves (never below ``minimum``)
last decrease
429 to a request sent before the    stays: that request was sent at the old
last decrease                       pace, which was already halved
any other answer                    after ``limit`` answers since the last
                                    change, one more slot, up to the maximum
==================================  =========================================

The 429 itself is retried by the retry policy (``Retry-After`` honoured);
this module only decides how many requests may be out at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class AdaptiveLimit:
    """At most ``limit`` slots held at once; the limit backs off on 429.

    Take a slot with ``with limit.slot(): ...`` around one request (its
    retries included). In the thread holding it, call :meth:`throttled`
    when the service answers 429 and :meth:`succeeded` when the request
    is answered.
    """

    def __init__(self, maximum: int, *, minimum: int = 1) -> None:
        if minimum < 1 or maximum < minimum:
            raise ValueError(
                f"need 1 <= minimum <= maximum, not minimum={minimum}, "
                f"maximum={maximum}"
            )
        self.maximum = maximum
        self.minimum = minimum
        self._limit = maximum
        self._answers = 0
        self._generation = 0
        self._in_flight = 0
        self._changed = threading.Condition()
        self._held = threading.local()

    def __repr__(self) -> str:
        return (
            f"<AdaptiveLimit limit={self.limit} in_flight={self._in_flight} "
            f"maximum={self.maximum}>"
        )

    @property
    def limit(self) -> int:
        """How many slots may be held at once now."""
        return self._limit

    @property
    def in_flight(self) -> int:
        """How many slots are held now."""
        return self._in_flight

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Wait for a free slot, hold it for the block, then give it back."""
        with self._changed:
            while self._in_flight >= self.limit:
                self._changed.wait()
            self._in_flight += 1
            self._held.generation = self._generation
        try:
            yield
        finally:
            with self._changed:
                self._in_flight -= 1
                self._held.generation = None
                self._changed.notify_all()

    def throttled(self) -> None:
        """The request of this thread's slot was answered 429: back off.

        Only the first 429 of each round counts: requests sent before the
        last decrease do not halve the limit again. A call from a thread
        that holds no slot changes nothing.
        """
        with self._changed:
            sent_in = getattr(self._held, "generation", None)
            if sent_in is None:
                return
            if sent_in == self._generation:
                self._limit = max(self.minimum, self._limit // 2)
                self._answers = 0
                self._generation += 1
            # This thread's retry goes out at the new pace.
            self._held.generation = self._generation

    def succeeded(self) -> None:
        """The request of this thread's slot was answered: grow a little."""
        with self._changed:
            if self._limit >= self.maximum:
                return
            self._answers += 1
            if self._answers >= self._limit:
                self._limit += 1
                self._answers = 0
                self._changed.notify_all()
