"""Web endpoint labels, host names and URLs: pure rules, no I/O.

A host name is `<workspace>[-<env>]--<label>[-dev].<domain>`. The default label is
`<app>-<function>`, lowercased, every character other than a-z, 0-9 and '-' turned into '-'.
DNS allows 63 characters in one label, so a longer subdomain is cut deterministically: its first
56 characters, trailing dashes dropped, then '-' and the first 6 hex digits of the SHA-256 of
the whole uncut subdomain. Two long names that share a prefix therefore still differ.
"""

from __future__ import annotations

import hashlib
import re

MAX_DNS_LABEL = 63
_CUT_KEEP = 56
_HASH_DIGITS = 6
_NOT_LABEL_CHAR = re.compile(r"[^a-z0-9-]")
_VALID_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_VALID_DOMAIN = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def normalize_label(text: str) -> str:
    return _NOT_LABEL_CHAR.sub("-", text.lower()).strip("-")


def default_label(app_name: str, function_name: str) -> str:
    return normalize_label(f"{app_name}-{function_name}")


def is_valid_label(label: str) -> bool:
    return len(label) <= MAX_DNS_LABEL and bool(_VALID_LABEL.match(label))


def is_valid_domain(domain: str) -> bool:
    return len(domain) <= 253 and bool(_VALID_DOMAIN.match(domain.lower()))


def subdomain(workspace: str, environment: str, label: str, ephemeral: bool) -> str:
    """The first DNS label of an endpoint's host name, cut to 63 characters by the rule above."""
    owner = f"{workspace}-{environment}" if environment else workspace
    full = f"{owner}--{label}{'-dev' if ephemeral else ''}"
    if len(full) <= MAX_DNS_LABEL:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:_HASH_DIGITS]
    return f"{full[:_CUT_KEEP].rstrip('-')}-{digest}"


def web_url(scheme: str, host: str, port: int) -> str:
    default_port = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" if port in (0, default_port) else f"{scheme}://{host}:{port}"
