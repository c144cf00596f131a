"""Names that become MQTT topic levels, payload labels, HTML and file names: camera, zone and line names from the
config, and model labels from wherever they come (a labels file, a sidecar, ONNX or Ultralytics metadata). One
rule, checked where a name enters."""

from __future__ import annotations

import re

FORBIDDEN = re.compile(r"[+#/\x00-\x1f\x7f]")
MAX_LENGTH = 64


def check_name(value: str) -> str:
    """``value`` unchanged, or ValueError saying what is wrong with it."""
    if not value or value != value.strip():
        raise ValueError("must be non-empty with no leading or trailing spaces")
    if value in (".", ".."):
        raise ValueError(f"must not be '{value}' (names become URL path segments and file names, where "
                         f"'{value}' means a directory)")
    bad = FORBIDDEN.search(value)
    if bad:
        shown = repr(bad.group())[1:-1]
        raise ValueError(
            f"must not contain '{shown}' (names become MQTT topic levels; "
            "'+', '#', '/' and control characters are not allowed)"
        )
    if len(value) > MAX_LENGTH:
        raise ValueError(f"must be at most {MAX_LENGTH} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid UTF-8 text (it holds a lone surrogate such as \\ud800)") from None
    return value
