"""No secret values in git: a scan of built objects for anything that looks like a credential, never repeating it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from gen.validate.objects import ident

# A key is a credential's when its name, lower-cased without separators, ends in one of
# these: `client_secret`, `bearerToken` and `PGPASSWORD` do; `secretName`, `tokenFile`
# and `password_file` (references, not values) do not.
CREDENTIAL_SUFFIXES = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "credential",
    "credentials",
)

# The Pyroscope Java agent's auth settings, as system properties (their environment
# variable names follow by upper-casing and replacing '.' with '_').
PYROSCOPE_AUTH_PROPERTIES = (
    "pyroscope.basic.auth.user",
    "pyroscope.basic.auth.password",
    "pyroscope.auth.token",
    "pyroscope.tenant.id",
)
_PYROSCOPE_AUTH = {p.replace(".", "") for p in PYROSCOPE_AUTH_PROPERTIES}

_REFERENCE = re.compile(r"^(\$[{(]?[A-Za-z_]|sys\.env\(|env\(|\{\{)")
_EMPTY_WORDS = {"", "true", "false", "null", "none", "~", '""', "''"}

_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
_AUTH_HEADER = re.compile(r"(?i)\bauthorization\b[\"']?\s*[:=]\s*[\"']?(?:basic|bearer)\s+(?P<value>[^\s\"']+)")
_URL_PASSWORD = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@\"']+:(?P<value>[^\s/@\"']*)@")
# A user part alone in an http(s) URL is how tokens are passed (`https://<token>@host/`);
# `git@host:org/repo` and `ssh://git@host/` name a user whose key is elsewhere.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/@\"']+@")
_URL_TOKEN = re.compile(r"\bhttps?://(?P<value>[^\s/:@\"']+)@")
_JVM_PROPERTY = re.compile(r"(?<![\w-])-D(?P<key>[A-Za-z0-9_.-]+)=(?P<value>\"[^\"]*\"|'[^']*'|[^\s\"']*)")
# `key: value` (YAML, JSON), `KEY=value` (shell, env files, properties) and
# `key = "value"` (Alloy, HCL); for the last, only a quoted value is a literal, since an
# unquoted one is an expression.
_ASSIGNMENT = re.compile(
    r"""(?:^|(?<=[\s{,;(\[?&]))["']?(?P<key>[A-Za-z_][\w.-]*)["']?"""
    r"""(?P<sep>\s*:\s+|\s*:$|=|\s+=\s*)"""
    r"""(?P<value>"[^"\n]*"|'[^'\n]*'|[^\s#;,}\]\n]*)""",
    re.MULTILINE,
)
_TEXT_RULES = (
    (_PRIVATE_KEY, "a PEM private key block"),
    (_AWS_KEY_ID, "an AWS access key id"),
    (_AUTH_HEADER, "an Authorization header with a literal credential"),
    (_URL_PASSWORD, "a URL with a password in it"),
    (_URL_TOKEN, "a URL with credentials in it"),
)


def scan_objects(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every finding in the built objects, one line each: `Kind/name: where: what`."""
    return [f"{ident(obj)}: {f}" for obj in objects for f in scan_object(obj)]


def scan_object(obj: Mapping[str, Any]) -> list[str]:
    skip = {f for f in ("data", "stringData") if obj.get("kind") == "Secret" and obj.get(f)}
    found = [
        f"{field}: a Secret with values is a secret in git; create it outside the repository and reference it by name"
        for field in sorted(skip)
    ]
    for path, key, value in _walk({k: v for k, v in obj.items() if k not in skip}):
        if key is not None and is_credential_key(key) and is_literal(value):
            found.append(f"{path}: a literal value under a credential's name ({key})")
        lines = "\n" in value  # a line number only where there is more than one line
        found += [f"{path}{f' line {n}' if lines else ''}: {what}" for n, what in scan_text(value)]
    return found


def scan_text(text: str) -> list[tuple[int, str]]:
    """The findings in a piece of text, as (line number, what), in order."""
    found: list[tuple[int, str]] = []
    for pattern, what in _TEXT_RULES:
        for match in pattern.finditer(text):
            # A pattern with a `value` group matches a credential only when that value is written out.
            if "value" not in pattern.groupindex or is_literal(match["value"]):
                found.append((_line(text, match.start()), what))
    for pattern, prefix in ((_JVM_PROPERTY, "-D"), (_ASSIGNMENT, "")):
        for match in pattern.finditer(text):
            key, sep, value = match["key"], match.groupdict().get("sep", ""), match["value"]
            # `key = value` unquoted is an expression (Alloy, HCL), not a literal.
            expression = "=" in sep and sep != "=" and value[:1] not in ("'", '"')
            if is_credential_key(key) and not expression and is_literal(_unquote(value)):
                found.append((_line(text, match.start()), f"a literal value for {prefix}{key}"))
    return sorted(set(found))


def redact_url(url: str, mask: str = "***") -> str:
    """A URL as a finding may show it: whatever stands before its host replaced by mask."""
    return _URL_USERINFO.sub(lambda m: f"{m['scheme']}{mask}@", url)


def is_credential_key(name: str) -> bool:
    flat = re.sub(r"[^a-z0-9]", "", name.lower())
    return flat.endswith(CREDENTIAL_SUFFIXES) or flat in _PYROSCOPE_AUTH


def is_literal(value: str) -> bool:
    """Whether a value is written out, rather than empty or a reference to somewhere else."""
    text = value.strip()
    return text.lower() not in _EMPTY_WORDS and not _REFERENCE.match(text)


def _walk(node: Any, path: str = "", key: str | None = None) -> Iterator[tuple[str, str | None, str]]:
    """(path, the key that names the value, value) for every string leaf."""
    if isinstance(node, Mapping):
        # An environment variable or a parameter names its value with `name`.
        named = node.get("name") if isinstance(node.get("value"), str) else None
        for k, v in node.items():
            here = f"{path}.{k}" if path else str(k)
            yield from _walk(v, here, named if k == "value" and isinstance(named, str) else str(k))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk(item, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, key, node


def _unquote(value: str) -> str:
    quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in ("'", '"')
    return value[1:-1] if quoted else value


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1
