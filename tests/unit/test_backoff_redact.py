"""Backoff with jitter; credentials scrubbed from URLs and log records."""

from __future__ import annotations

import io
import logging

import pytest

from edged.backoff import Backoff, RestartBudget
from edged.logs import setup_logging
from edged.redact import SecretFilter, redact_url, url_secrets


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    mid = Backoff(1.0, 30.0, rng=lambda: 0.5)
    assert [mid.next() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    low, high = Backoff(1.0, 30.0, rng=lambda: 0.0), Backoff(1.0, 30.0, rng=lambda: 0.999999)
    assert low.next() == pytest.approx(0.75) and high.next() == pytest.approx(1.25, abs=1e-5)
    assert Backoff(1.0, 30.0, rng=lambda: 0.999999, attempts=10).next() == 30.0
    mid.reset()
    assert mid.next() == 1


def test_backoff_never_overflows_however_long_a_camera_is_down() -> None:
    backoff = Backoff(0.001, 0.002, rng=lambda: 0.5)  # a day of failures at the cap
    assert backoff.next() == 0.001
    assert all(backoff.next() == 0.002 for _ in range(100_000))  # 2.0 ** 1024 raised OverflowError


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("rtsp://admin:hunter22@10.0.0.7:554/s", "rtsp://***@10.0.0.7:554/s"),
        ("rtsp://10.0.0.7/s", "rtsp://10.0.0.7/s"),
        ("http://cam/snap?user=a&password=hunter22&x=1", "http://cam/snap?user=a&password=***&x=1"),
        ("failed to open rtsp://u:p@h/s after 3 tries", "failed to open rtsp://***@h/s after 3 tries"),
    ],
)
def test_redact_url(url: str, clean: str) -> None:
    assert redact_url(url) == clean


def test_url_secrets() -> None:
    assert url_secrets("rtsp://admin:hunter22@h/s") == ["hunter22", "admin"]
    assert url_secrets("http://h/s?token=abc123") == ["abc123"]


def test_log_records_are_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    setup_logging("info", "text", ["s3cret-pw"])
    log = logging.getLogger("edged.test")
    log.info("connecting with %s to %s", "s3cret-pw", "rtsp://cam:other@h/s")
    try:
        raise RuntimeError("bad password s3cret-pw")
    except RuntimeError:
        log.exception("failed")
    out = stream.getvalue()
    assert "s3cret-pw" not in out and "other" not in out and "***" in out and "RuntimeError" in out


def test_json_log_format(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    setup_logging("debug", "json")
    logging.getLogger("edged.test").debug("batch %(n)d", {"n": 3}, extra={"fields": {"n": 3}})
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert record["msg"] == "batch 3" and record["n"] == 3 and record["level"] == "debug"


def test_secret_filter_ignores_very_short_values() -> None:
    assert SecretFilter(["ab"]).scrub("about") == "about"


def test_restart_budget_counts_within_its_window() -> None:
    budget = RestartBudget(max_restarts=3, window_s=10)
    for t in (0.0, 1.0):
        budget.record(t)
    assert not budget.exhausted(2.0)
    budget.record(3.0)
    assert budget.exhausted(3.0)
    assert not budget.exhausted(10.5)  # the first restart left the window


def test_a_repeating_message_is_due_once_per_period_per_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from edged.logs import Every

    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    every = Every(60.0)
    assert every.due("disk full") and not every.due("disk full")
    assert every.due("refused")  # another message is its own
    clock[0] += 59.9
    assert not every.due("disk full")
    clock[0] += 0.2
    assert every.due("disk full")
    every.reset()  # the condition ended: the next occurrence is news
    assert every.due("refused")
