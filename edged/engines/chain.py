"""An engine chain: a primary and fallbacks, all loaded and warmed at start; inference on the first that works.

The chain is an Engine to the scheduler. Its input buffers are those of the first
engine that loaded (the home engine), so the normal case costs nothing: the
letterbox writes where that engine reads. On another engine a batch is copied into
that engine's buffer first (one tensor-sized copy, about 0.03 ms for 416x416).

An engine fails when it cannot load, when ``submit`` raises or its callback brings an
exception, or when a batch has not come back within ``timeout_s`` (a hang: the
batches it holds are abandoned and its late answers ignored). The batches it was
working on are sent again to the next engine that works, so a failover loses none
of them; the chain says so once (``on_change``, which the pipeline turns into the
``engine_failover`` alert). Engines before the one in use are probed with a batch of
their own, with backoff (``probe_min_s`` doubling to ``probe_max_s``; an engine that
never loaded is loaded again); the first that answers in time takes over again and
the alert resolves. With no engine left the batch's callback gets the error, and
the daemon stops as it would with a single engine.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edged.engines.base import Done, Engine, InputSpec
from edged.errors import EngineError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    """The engine in use changed: ``failed`` (the one left, and why) or a return to ``now``."""

    now: str
    before: str
    reason: str
    returned: bool
    down_s: float = 0.0  # on a return: how long the chain ran without it


@dataclass
class _Link:
    name: str
    engine: Engine
    loaded: bool = False
    failed: str = ""  # why, while failed
    failed_at: float = 0.0
    next_probe: float = 0.0
    backoff_s: float = 0.0
    probing: bool = False
    misfit: str = ""  # loaded late, but cannot serve this chain (shape, requests): never probed again


@dataclass
class _Flight:
    slot: int
    done: Done
    link: int
    submitted: float
    token: int


class EngineChain:
    def __init__(self, engines: Sequence[tuple[str, Engine]], *, timeout_s: float,
                 on_change: Callable[[Change], None] | None = None, probe_min_s: float = 1.0,
                 probe_max_s: float = 60.0) -> None:
        if not engines:
            raise EngineError("an engine chain needs at least one engine")
        self.links = [_Link(name, engine) for name, engine in engines]
        self.timeout_s = timeout_s
        self.on_change = on_change
        self.probe_min_s = probe_min_s
        self.probe_max_s = probe_max_s
        self.input_spec = InputSpec(1, 1, 1)
        self.num_slots = 0
        self.output_shape: tuple[int, ...] = ()
        self.failovers = 0  # switches away from a failed engine
        self.returns = 0  # switches back to an engine before the one in use
        self.resubmitted = 0  # batches sent again to the next engine (none is lost)
        self._home = 0
        self._active = 0
        self._lock = threading.Lock()
        self._flights: dict[int, _Flight] = {}  # token -> a batch out on some engine
        self._token = 0
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Load and warm every engine; the chain runs if one of them loads."""
        reasons = []
        for link in self.links:
            try:
                link.engine.start()
                link.loaded = True
            except Exception as exc:  # an engine that cannot load is a failed link, not a failed daemon
                link.failed, link.failed_at = _why(exc), time.monotonic()
                link.next_probe = link.failed_at + self.probe_min_s
                link.backoff_s = self.probe_min_s
                reasons.append(f"{link.name}: {link.failed}")
                log.warning("engine %s did not load: %s", link.name, link.failed)
        loaded = [i for i, link in enumerate(self.links) if link.loaded]
        if not loaded:
            raise EngineError("no engine of the chain loaded: " + "; ".join(reasons))
        self._home = self._active = loaded[0]
        home = self.links[self._home].engine
        self.input_spec, self.output_shape = home.input_spec, home.output_shape
        for index in loaded[1:]:
            self._check_same(self.links[index])
        # Engines that did not load but say how many requests they run (a remote one: num_requests) count too, so
        # one that comes up later fits the chain's slots instead of failing on a slot it does not have.
        declared = [link.engine.num_slots for link in self.links if not link.loaded and link.engine.num_slots > 0]
        self.num_slots = min([self.links[i].engine.num_slots for i in loaded] + declared)
        if self._active != 0:
            first = self.links[0]
            self._announce(Change(self.links[self._active].name, first.name, first.failed, returned=False))
        self._watch = threading.Thread(target=self._watch_loop, name="engine-chain", daemon=True)
        self._watch.start()

    def _check_same(self, link: _Link) -> None:
        engine = link.engine
        home = self.links[self._home]
        if self.num_slots and engine.num_slots < self.num_slots:
            raise EngineError(f"engine {link.name} has {engine.num_slots} requests, the chain uses {self.num_slots}: "
                              f"set its num_requests to at least {self.num_slots}")
        if engine.input_spec != self.input_spec or engine.output_shape != self.output_shape:
            raise EngineError(
                f"engine {link.name} takes {engine.input_spec.shape} and gives {engine.output_shape}, but "
                f"{home.name} takes {self.input_spec.shape} and gives {self.output_shape}: every engine of a chain "
                f"must run the same model at the same input size and batch")

    def close(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.join(5)
        for link in self.links:
            if link.loaded:
                try:
                    link.engine.close()
                except Exception as exc:
                    log.warning("engine %s did not close cleanly: %s", link.name, _why(exc))

    # -- the Engine protocol -------------------------------------------------------------

    def input_buffer(self, slot: int) -> np.ndarray:
        return self.links[self._home].engine.input_buffer(slot)

    def describe(self) -> dict[str, Any]:
        with self._lock:
            active = self.links[self._active]
        info = dict(active.engine.describe()) if active.loaded else {}
        info["chain"] = [link.name for link in self.links]
        info["in_use"] = active.name
        info.update(failovers=self.failovers, returns=self.returns, resubmitted=self.resubmitted)
        failed = {link.name: link.failed for link in self.links if link.failed}
        if failed:
            info["failed"] = failed
        return info

    def submit(self, slot: int, done: Done) -> None:
        with self._lock:
            self._token += 1
            flight = _Flight(slot, done, self._active, time.monotonic(), self._token)
            self._flights[flight.token] = flight
        self._send(flight)

    # -- sending and failing over ----------------------------------------------------------

    def _send(self, flight: _Flight) -> None:
        link = self.links[flight.link]
        token = flight.token
        try:
            if flight.link != self._home:
                target = link.engine.input_buffer(flight.slot)
                np.copyto(target, self.links[self._home].engine.input_buffer(flight.slot))
            link.engine.submit(flight.slot, lambda result: self._answer(token, flight.link, result))
        except Exception as exc:
            self._fail(flight.link, _why(exc))

    def _answer(self, token: int, link_index: int, result: np.ndarray | BaseException) -> None:
        """An engine's callback (its thread)."""
        with self._lock:
            flight = self._flights.get(token)
            if flight is None or flight.link != link_index:
                return  # abandoned: that engine was given up on, the batch went elsewhere
            if not isinstance(result, BaseException):
                del self._flights[token]
        if isinstance(result, BaseException):
            self._fail(link_index, _why(result))
            return
        flight.done(result)

    def _fail(self, index: int, reason: str) -> None:
        """Give up on engine ``index``: its batches go to the next engine that works."""
        now = time.monotonic()
        lost: list[_Flight] | None = None  # set when no engine is left: the batches that get the error
        with self._lock:
            link = self.links[index]
            if not link.failed:
                link.failed, link.failed_at = reason, now
                link.backoff_s = self.probe_min_s
                link.next_probe = now + self.probe_min_s
            moved = [f for f in self._flights.values() if f.link == index]
            changed = index == self._active
            if changed:
                nxt = self._next_working(index)
                if nxt is None:
                    lost, moved = moved, []
                    for flight in lost:
                        del self._flights[flight.token]
                else:
                    self._active = nxt
                    self.failovers += 1
            target = self._active
            for flight in moved:
                flight.link, flight.submitted = target, now
            self.resubmitted += len(moved)
        if lost is not None:
            log.error("engine %s failed (%s) and no engine of the chain is left", link.name, reason)
            error = EngineError(f"engine {link.name} failed: {reason}; no other engine of the chain works")
            for flight in lost:
                flight.done(error)
            return
        if changed:
            self._announce(Change(self.links[target].name, link.name, reason, returned=False))
        for flight in moved:
            self._send(flight)

    def _next_working(self, after: int) -> int | None:
        for index, link in enumerate(self.links):
            if index != after and link.loaded and not link.failed:
                return index
        return None

    def _announce(self, change: Change) -> None:
        if change.returned:
            log.info("engine %s is back (after %.1f s on %s): inference returns to it", change.now, change.down_s,
                     change.before)
        else:
            log.warning("engine %s failed (%s): inference goes on on %s", change.before, change.reason, change.now)
        if self.on_change is not None:
            self.on_change(change)

    # -- the watch: hangs and probes ---------------------------------------------------------

    def _watch_loop(self) -> None:
        while not self._stop.wait(min(0.2, self.timeout_s / 4)):
            now = time.monotonic()
            with self._lock:
                hung = {f.link for f in self._flights.values() if now - f.submitted > self.timeout_s}
            for index in hung:
                self._fail(index, f"no answer within {self.timeout_s:g} s (hung)")
            self._probe_due(now)

    def _probe_due(self, now: float) -> None:
        with self._lock:
            candidates = [i for i in range(self._active) if self.links[i].failed and not self.links[i].probing
                          and not self.links[i].misfit and now >= self.links[i].next_probe]
        for index in candidates[:1]:
            link = self.links[index]
            link.probing = True
            threading.Thread(target=self._probe, args=(index,), name=f"engine-probe-{index}", daemon=True).start()

    def _probe(self, index: int) -> None:
        link = self.links[index]
        try:
            if not link.loaded:
                link.engine.start()
                try:
                    self._check_same(link)  # loaded only once it fits: a later probe must not skip this
                except EngineError as exc:
                    self._misfit(link, str(exc))
                    return
                link.loaded = True
            elif hasattr(link.engine, "reconnect"):
                link.engine.reconnect()  # a remote engine: a fresh connection, not one backing off
            self._probe_once(link)
        except Exception as exc:
            with self._lock:
                link.backoff_s = min(self.probe_max_s, link.backoff_s * 2)
                link.next_probe = time.monotonic() + link.backoff_s
                link.probing = False
            log.debug("engine %s still failing: %s (next try in %g s)", link.name, _why(exc), link.backoff_s)
            return
        with self._lock:
            before = self.links[self._active].name
            down_s = time.monotonic() - link.failed_at
            link.failed, link.probing = "", False
            if index < self._active:
                self._active = index
                self.returns += 1
                returned = True
            else:
                returned = False
        if returned:
            self._announce(Change(link.name, before, "", returned=True, down_s=down_s))

    def _misfit(self, link: _Link, reason: str) -> None:
        """Loaded, but it can never serve this chain as configured: said once, closed, not probed again."""
        log.error("engine %s came up but cannot rejoin the chain: %s; it stays out until edged restarts", link.name,
                  reason)
        try:
            link.engine.close()
        except Exception as exc:
            log.warning("engine %s did not close cleanly: %s", link.name, _why(exc))
        with self._lock:
            link.misfit, link.failed, link.probing = reason, f"cannot rejoin: {reason}", False

    def _probe_once(self, link: _Link) -> None:
        """One batch on the engine's last slot, answered within the timeout with the chain's output shape."""
        answered = threading.Event()
        outcome: list[np.ndarray | BaseException] = []

        def done(result: np.ndarray | BaseException) -> None:
            outcome.append(result)
            answered.set()

        # Whatever the buffer holds: the answer's arrival is the test. (The home engine's buffers are the
        # scheduler's; they are only read here.)
        slot = link.engine.num_slots - 1
        link.engine.submit(slot, done)
        if not answered.wait(self.timeout_s):
            raise EngineError(f"no answer within {self.timeout_s:g} s")
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        if outcome[0].shape != self.output_shape:
            raise EngineError(f"answered with shape {outcome[0].shape}, not {self.output_shape}")

def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
