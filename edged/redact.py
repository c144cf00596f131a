"""Keep credentials out of logs, topics, telemetry and exceptions.

``redact_url`` hides the user-info part and secret-looking query parameters of a
URL. ``SecretFilter`` is a logging filter that scrubs every log record: any
registered secret value (MQTT password, a camera password substituted from the
environment) and anything that looks like URL credentials.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# The user-info runs to the last '@' before the host: a password may hold '@' itself.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s]+)@")
# 'user:password@' anywhere (a scheme typo with one slash, no scheme at all): for finding secrets.
_LOOSE_USERINFO = re.compile(r"(?:^|[/\s])(?P<user>[^/\s@:]+):(?P<password>[^/\s]+)@")
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pwd|pass|token|key|secret|auth|access_token|apikey|api_key)=)[^&;\s]*",
    re.IGNORECASE,
)
_PIPELINE_SECRET = re.compile(r'(?P<key>\buser-pw=)(?:"(?:[^"\\]|\\.)*"|\S+)')
MASK = "***"


def redact_url(text: str) -> str:
    """Hide ``user:password@`` and secret query values in every URL inside ``text``."""
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    text = _PIPELINE_SECRET.sub(lambda m: f"{m.group('key')}{MASK}", text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group('key')}{MASK}", text)


def url_secrets(url: str) -> list[str]:
    """The credential strings inside a URL (user, password, secret query values)."""
    found: list[str] = []
    match = _USERINFO.search(url)
    if match:
        user, _, password = match.group("userinfo").partition(":")
        found.extend(p for p in (password, user) if p)
    for q in _QUERY_SECRET.finditer(url):
        value = url[q.end("key"):q.end()]
        if value:
            found.append(value)
    return found


def loose_secrets(text: str) -> list[str]:
    """Credentials in any string that looks like it holds a URL, well formed or not."""
    found = url_secrets(text)
    for match in _LOOSE_USERINFO.finditer(text):
        found.extend(p for p in (match.group("password"), match.group("user")) if p)
    return found


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with URL credentials and every given secret masked, and control characters escaped."""
    text = redact_url(text)
    for secret in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in text)


class SecretFilter(logging.Filter):
    """Scrubs secrets from log records before any handler formats them."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        # Very short values (a 1-3 character user name) would mangle ordinary words.
        new = {s for s in secrets if len(s) >= 4} - set(self._secrets)
        self._secrets = sorted(set(self._secrets) | new, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        text = redact_url(text)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.scrub(message)
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if clean != message or record.args:
            record.msg, record.args = clean, None
        return True
