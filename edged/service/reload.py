"""SIGHUP: the config file read again and, if valid, applied; if not, rejected and the running one stays.

One reload at a time; a burst of SIGHUPs during one becomes a single reload after it, which reads the file as it is
then: the last file written wins. Settings fixed at start (``FIXED_ON_RELOAD``) keep their running value, with a
warning that a restart applies them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from edged.config.models import Config
from edged.errors import EdgedError
from edged.pipeline.cameras import ConfigDiff
from edged.service.sdnotify import Notifier

log = logging.getLogger(__name__)

FIXED_ON_RELOAD = ("device_id", "mqtt", "engine", "http", "homeassistant", "snapshots")


class Reloader:
    def __init__(self, read: Callable[[], Config] | None, running: Callable[[], Config],
                 check: Callable[[Config], None], apply: Callable[[Config], Awaitable[ConfigDiff]],
                 notifier: Notifier, summary: Callable[[], str]) -> None:
        self.read, self.running, self.check, self.apply = read, running, check, apply
        self.notifier, self.summary = notifier, summary
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def asked(self) -> asyncio.Task[None] | None:
        """A SIGHUP (on the loop): the reload task it started, or None when one runs (it goes again after)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._while_asked(), name="reload")
            return self._task
        self._again = True
        return None

    async def _while_asked(self) -> None:
        self._again = True
        while self._again:
            self._again = False
            await self.reload()

    async def reload(self) -> None:
        if self.read is None:
            log.warning("SIGHUP: nothing to reload")
            return
        self.notifier.reloading()
        try:
            new = await asyncio.get_running_loop().run_in_executor(None, self.read)
            self.check(new)
        except EdgedError as exc:
            log.error("SIGHUP: the new config was rejected; the running one stays: %s", " | ".join(exc.lines()))
            self.notifier.ready(self.summary())
            return
        running = self.running()
        for key in FIXED_ON_RELOAD:
            if getattr(running, key) != getattr(new, key):
                log.warning("SIGHUP: '%s' changed; restart edged to apply it (the running value stays)", key)
        merged = new.model_copy(update={key: getattr(running, key) for key in FIXED_ON_RELOAD})
        change = await self.apply(merged)
        log.info("SIGHUP: reloaded; %s", change.describe())
        self.notifier.ready(self.summary())
