"""YAML file -> validated Config, or one readable line per problem.

Each problem reads ``FILE:LINE: key.path: message (camera 'name')``. Values never
appear in messages where they could hold a credential.

Substitution in string values, done before validation:
- ``${NAME}`` and ``${NAME:-default}`` from the environment mapping passed in;
- ``${cred:NAME}`` from a systemd credential (``$CREDENTIALS_DIRECTORY/NAME``);
- ``$$`` for a literal ``$``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from edged.config.models import Config
from edged.errors import ConfigError
from edged.redact import loose_secrets, scrub

Loc = tuple[str | int, ...]
# ${...} with one level of ${...} inside (a default that refers on: ${A:-${B}}).
_VAR = re.compile(r"\$\$|\$\{((?:[^{}]|\$\{[^{}]*\})*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SENSITIVE = ("password", "url", "key", "token", "secret")


class _Document:
    """A parsed YAML document with the line of every key and item."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[Loc, int] = {}
        self._problems: list[tuple[int, str]] = []
        self.secrets: set[str] = set()  # substituted values, credentials, user-info: never in a message

    @property
    def problems(self) -> list[str]:
        return [scrub(text, self.secrets) for _, text in sorted(self._problems, key=lambda p: p[0])]

    def collect_secrets(self, value: Any, loc: Loc = ()) -> None:
        """Every credential-looking part of every string, and every value of a secret-named key."""
        if isinstance(value, dict):
            for key, item in value.items():
                self.collect_secrets(item, (*loc, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.collect_secrets(item, (*loc, index))
        elif isinstance(value, str):
            found = loose_secrets(value)
            if loc and any(s in str(loc[-1]).lower() for s in ("password", "token", "secret")) and value:
                found.append(value)
            self.secrets.update(s for s in found if "${" not in s)  # a reference is not its value

    def line_of(self, loc: Loc) -> int | None:
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return None

    def problem(self, loc: Loc, message: str) -> None:
        if len(loc) >= 2 and loc[0] == "fallbacks" and isinstance(loc[1], int) and ("engine", 1) in self.lines:
            loc = ("engine", loc[1] + 1, *loc[2:])  # written as the 'engine' list: say where in it
        line = self.line_of(loc)
        where = f"{self.source}:{line}" if line else self.source
        path = dotted(loc)
        camera = f" (camera '{loc[1]}')" if len(loc) >= 2 and loc[0] == "cameras" else ""
        self._problems.append((line or 0, f"{where}: {path + ': ' if path else ''}{message}{camera}"))

    def walk(self, node: yaml.Node, loc: Loc) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            as_python: dict[Any, str] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
                line = key_node.start_mark.line + 1
                if isinstance(key_node, yaml.ScalarNode):
                    value = yaml.constructor.SafeConstructor().construct_object(key_node)
                    other = as_python.get(value) if isinstance(value, (str, int, float, bool)) else None
                    if other is not None and other != key:  # 1 and true, 1 and 1.0: one key to Python
                        self._problems.append((line, (
                            f"{self.source}:{line}: {dotted((*loc, key))}: keys '{other}' and '{key}' are the same "
                            f"key once read (both {value!r}); quote them to keep them apart")))
                        continue
                    if isinstance(value, (str, int, float, bool)):
                        as_python.setdefault(value, key)
                if key in seen:
                    what = "camera" if loc == ("cameras",) else "key"
                    self.lines.setdefault((*loc, key), line)
                    self._problems.append((line, (
                        f"{self.source}:{line}: {dotted((*loc, key))}: duplicate {what} '{key}' "
                        f"(first defined on line {seen[key]})"
                    )))
                    continue
                seen[key] = line
                self.lines[(*loc, key)] = line
                self.walk(value_node, (*loc, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.lines[(*loc, index)] = item.start_mark.line + 1
                self.walk(item, (*loc, index))


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


MAX_BYTES = 1 << 20  # a config is a few KB; a megabyte is a mistake (or /dev/zero)
MAX_VALUES = 100_000  # values after YAML aliases are expanded: a "billion laughs" file stops here


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values ``node`` becomes once aliases are expanded (composing shares alias nodes)."""
    key = id(node)
    if key not in memo:
        memo[key] = 0  # a cycle counts as nothing more (safe_load refuses recursive aliases itself)
        if isinstance(node, yaml.MappingNode):
            total = sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = sum(_expanded_size(item, memo) for item in node.value)
        else:
            total = 0
        memo[key] = min(1 + total, 10 * MAX_VALUES)
    return memo[key]


def _parse(text: str, doc: _Document) -> Any:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None and _expanded_size(node, {}) > MAX_VALUES:
            raise ConfigError([f"{doc.source}: its YAML aliases expand to more than {MAX_VALUES:,} values "
                               f"(a 'billion laughs' file?)"])
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{doc.source}:{mark.line + 1}:{mark.column + 1}" if mark else doc.source
        reason = exc.problem or "malformed YAML"
        raise ConfigError([f"{where}: malformed YAML: {reason}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{doc.source}: malformed YAML: {exc}"]) from None
    except RecursionError:
        raise ConfigError([f"{doc.source}: nested too deeply to be a config"]) from None
    if node is not None:
        doc.walk(node, ())
    if data is None:
        raise ConfigError([f"{doc.source}: the file is empty; it needs at least 'engine' and 'cameras'"])
    if not isinstance(data, dict):
        raise ConfigError([f"{doc.source}:1: the top level must be a mapping of keys, not {type(data).__name__}"])
    return data


def _substitute(value: Any, loc: Loc, doc: _Document, env: Mapping[str, str], creds: Path | None) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, (*loc, k), doc, env, creds) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, (*loc, i), doc, env, creds) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return expand(match.group(1))

    def expand(expr: str) -> str:
        name, has_default, default = expr.partition(":-")
        if name.startswith("cred:"):
            found = _credential(name[5:], loc, doc, creds)
            doc.secrets.add(found)
            return found
        if not _NAME.match(name):
            forms = "${NAME}, ${NAME:-default} or ${cred:NAME}"
            doc.problem(loc, f"'${{{expr}}}' is not a valid substitution (use {forms})")
            return ""
        if name in env:
            doc.secrets.add(env[name])
            return env[name]
        if has_default:
            return str(_substitute(default, loc, doc, env, creds))  # ${A:-${B}}: the default may refer on
        doc.problem(loc, f"environment variable {name} is not set (referenced as ${{{name}}})")
        return ""

    return _VAR.sub(replace, value)


def _credential(name: str, loc: Loc, doc: _Document, creds: Path | None) -> str:
    if not _NAME.match(name.replace("-", "_").replace(".", "_")):
        doc.problem(loc, f"'{name}' is not a valid credential name")
        return ""
    if creds is None:
        doc.problem(loc, f"${{cred:{name}}} needs CREDENTIALS_DIRECTORY (set by systemd's LoadCredential=)")
        return ""
    try:
        return (creds / name).read_text().rstrip("\r\n")
    except OSError as exc:
        doc.problem(loc, f"cannot read credential '{name}' from {creds}: {exc.strerror}")
        return ""


def _message(error: Any, loc: Loc, doc: _Document, data: Any) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        parent, key = loc[:-1], loc[-1]
        allowed = _allowed_keys(parent, data)
        hint = difflib.get_close_matches(str(key), allowed, n=1)
        if hint:
            suggestion = f"; did you mean '{hint[0]}'?"
        else:
            suggestion = f"; allowed: {', '.join(sorted(allowed))}" if allowed else ""
        return f"unknown key '{key}'{suggestion}"
    if kind == "missing":
        return "required key is missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    value = error.get("input")
    sensitive = any(s in str(part).lower() for part in loc for s in _SENSITIVE)
    shown = isinstance(value, (int, float, str, bool)) and not sensitive and len(str(value)) <= 60
    if shown and kind != "string_too_short" and not msg.startswith("must"):
        msg += f" (got {value!r})"
    return str(msg)


def _allowed_keys(parent: Loc, data: Any) -> list[str]:
    """The keys the model at ``parent`` accepts, for 'did you mean' hints."""
    from edged.config.models import CameraConfig

    model: type[BaseModel] | None = Config
    node, in_map = data, False
    for part in parent:
        child = node.get(part) if isinstance(node, dict) else None
        if in_map:
            model, in_map = CameraConfig, False
        elif model is not None and str(part) in model.model_fields:
            annotation = model.model_fields[str(part)].annotation
            in_map = get_origin(annotation) is dict
            model = None if in_map else _field_model(annotation, child)
        else:
            return []
        node = child
    return sorted(model.model_fields) if model is not None and not in_map else []


def _field_model(annotation: Any, node: Any) -> type[BaseModel] | None:
    from edged.config.models import OnnxRuntimeConfig, OpenVinoConfig, TensorRtConfig

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = [a for a in get_args(annotation) if a is not type(None)]
    if OpenVinoConfig in args or any(OpenVinoConfig in get_args(a) for a in args):
        backend = node.get("backend") if isinstance(node, dict) else None
        by_backend: dict[str, type[BaseModel]] = {"onnxruntime": OnnxRuntimeConfig, "tensorrt": TensorRtConfig}
        return by_backend.get(str(backend), OpenVinoConfig)
    for candidate in args:
        found = _field_model(candidate, node)
        if found is not None:
            return found
    return None


def load_config(
    path: Path,
    env: Mapping[str, str],
    credentials_dir: Path | None = None,
    text: str | None = None,
) -> Config:
    """Read, substitute and validate a config file; ConfigError lists every problem."""
    source = str(path)
    if text is None:
        try:
            if not path.is_file():
                what = "no such file" if not path.exists() else "not a regular file"
                raise ConfigError([f"{source}: {what}"])
            with path.open("rb") as handle:
                raw = handle.read(MAX_BYTES + 1)
            if len(raw) > MAX_BYTES:
                raise ConfigError([f"{source}: larger than {MAX_BYTES // 1024} KiB; not a config file"])
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{source}: cannot read: {exc}"]) from None
    doc = _Document(source)
    data = _parse(text, doc)
    doc.collect_secrets(data)
    data = _substitute(data, (), doc, env, credentials_dir)
    doc.collect_secrets(data)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = _clean_loc(tuple(error["loc"]))
            doc.problem(loc, _message(error, loc, doc, data))
        raise ConfigError(doc.problems) from None
    if doc.problems:
        raise ConfigError(doc.problems)
    _check_paths(config, doc)
    if doc.problems:
        raise ConfigError(doc.problems)
    config.remember_secrets(frozenset(s for s in doc.secrets if s))
    return config


def _clean_loc(loc: Loc) -> Loc:
    """Drop pydantic's union-member tags (``openvino``) and key markers from a location."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if part == "[key]":
            continue
        if i > 0 and loc[i - 1] == "engine" and part in ("openvino", "onnxruntime", "tensorrt"):
            continue
        out.append(part)
    return tuple(out)


def _check_paths(config: Config, doc: _Document) -> None:
    from edged.config.names import is_model_name

    for index, engine in enumerate(config.engines):
        at: Loc = ("engine",) if index == 0 else ("fallbacks", index - 1)
        if not is_model_name(engine.model) and not Path(engine.model).is_file():
            doc.problem((*at, "model"), f"model file not found: {engine.model}")
        if engine.labels is not None and not engine.labels.is_file():
            doc.problem((*at, "labels"), f"labels file not found: {engine.labels}")
        engine_tls = getattr(engine, "tls", None)
        for key in ("ca", "cert", "key"):
            value = getattr(engine_tls, key, None) if engine_tls is not None else None
            if value is not None and not value.is_file():
                doc.problem((*at, "tls", key), f"file not found: {value}")
    tls = config.mqtt.tls
    if tls is not None:
        for key in ("ca", "cert", "key"):
            value = getattr(tls, key)
            if value is not None and not value.is_file():
                doc.problem(("mqtt", "tls", key), f"file not found: {value}")
    for name, camera in config.cameras.items():
        if camera.kind == "file" and not Path(camera.url).is_file():
            doc.problem(("cameras", name, "url"), f"video file not found: {camera.url}")
