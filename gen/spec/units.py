"""Parsing of the durations, sizes and names that specs carry, in the forms their consumers accept."""

from __future__ import annotations

import difflib
import ipaddress
import re

_GO_UNITS_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_GO_DURATION = re.compile(r"^(?:\d+(?:ns|us|µs|ms|s|m|h))+$")
_GO_PART = re.compile(r"(\d+)(ns|us|µs|ms|s|m|h)")

# The Pyroscope server reads retention as a Prometheus duration (integer parts, units in
# decreasing order), which is stricter than Go's; accept only what both understand.
RETENTION = re.compile(r"^(0|(?=\d)(\d+h)?(\d+m)?(\d+s)?)$")
# The Java agent's upload interval, as its IntervalParser reads it (see the domain reference);
# 18 digits at most, so that the number fits a Java long.
AGENT_INTERVAL = re.compile(r"^[1-9]\d{0,17}(us|ms|s)?$")
# The lock threshold goes to async-profiler, which reads ns, us, ms, s or bare nanoseconds.
AGENT_LOCK = re.compile(r"^[1-9]\d{0,17}(ns|us|ms|s)?$")
# async-profiler's allocation threshold: bytes, optionally with k, m or g.
AGENT_SIZE = re.compile(r"^[1-9]\d*[kmg]?$")

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", re.I)
# A label key (a taint's key too): an optional DNS subdomain prefix of at most 253 characters and '/',
# then a name of at most 63.
LABEL_NAME = re.compile(
    r"^((?=[^/]{1,253}/)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
# Profile label values end up in one word of JVM_EXTRA_OPTS: no separators, no shell syntax.
PROFILE_TOKEN = re.compile(r"^[A-Za-z0-9_.:/@+-]+$")
PROFILE_LABEL_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
# The Java agent sends its application name ahead of the labels in /ingest?name=, where the
# server (labelset.ValidateServiceName) refuses every upload whose name holds another character.
SERVICE_NAME = re.compile(r"^[A-Za-z0-9_./-]+$")

# What the Pyroscope server accepts by default (validation.max-length-label-name,
# validation.max-length-label-value; the latter also bounds service_name, the application
# name): a profile with a longer label is refused at every upload.
MAX_LABEL_KEY = 1024
MAX_LABEL_VALUE = 2048
# The server refuses a series with more than 30 label names (validation.max-label-names-per-series);
# the agent adds cluster and hostname, the server service_name, __name__ and its own.
MAX_PROFILE_LABELS = 16
# Every word gen adds to JVM_EXTRA_OPTS together. Linux refuses one argument or environment
# string over 128 KiB (MAX_ARG_STRLEN) and the whole command line and environment over
# 2 MiB or less, and JVM_EXTRA_OPTS may also be exported whole: a quarter of the first
# leaves room for the host's own options.
MAX_JVM_OPTIONS = 32 * 1024
# The longest host name Linux gives (HOST_NAME_MAX): the hostname label is filled in on the host.
HOST_NAME_MAX = 64
# The longest path Linux takes (PATH_MAX, with its terminating NUL).
MAX_PATH = 4095


def agent_interval_ns(text: str) -> int:
    """Nanoseconds of an interval the Java agent reads (one `AGENT_INTERVAL` matches; a bare number is ns)."""
    digits = text.rstrip("usm")
    unit = text[len(digits) :]
    return int(digits) * (_GO_UNITS_NS[unit] if unit else 1)


def go_duration_ns(text: str) -> int | None:
    """Nanoseconds of a Go duration made of integer parts (`1m30s`), or None when malformed."""
    if not _GO_DURATION.fullmatch(text):
        return None
    return sum(int(n) * _GO_UNITS_NS[u] for n, u in _GO_PART.findall(text))


def is_host_address(text: str) -> bool:
    """An IPv4/IPv6 address or a DNS name, as host processes would dial it."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return bool(_DNS_NAME.fullmatch(text)) and not text.replace(".", "").isdigit()


def close_match(word: str, choices: list[str], cutoff: float = 0.6) -> str | None:
    # The same name in another case or spelling style (repo_url, RepoUrl) first.
    normalised = {c.lower().replace("_", "").replace("-", ""): c for c in choices}
    same = normalised.get(word.lower().replace("_", "").replace("-", ""))
    return same or next(iter(difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)), None)
