"""Server settings: the configured models, the bearer token, and the safety limits."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from explainlm.errors import UserError

LOOPBACK_NAMES = {"localhost"}


@dataclass(frozen=True)
class Limits:
    """Hard limits on what one request may ask for (each refused with a clear JSON error)."""

    max_body_bytes: int = 256 * 1024
    max_text_chars: int = 4000
    max_texts: int = 32
    max_new_tokens: int = 64
    max_methods: int = 4
    max_method_param: int = 2000
    max_batch_tokens: int = 16384
    max_benchmark_examples: int = 200
    max_search_budget: int = 5000  # what-if query and sample budgets
    max_audit_items: int = 2000  # texts, pairs or items one web audit may read
    max_resamples: int = 10_000  # bootstrap resamples and permutations of an audit
    max_compare_variants: int = 4
    max_uploads: int = 200  # distinct uploaded files kept (each at most max_body_bytes)
    async_threshold: int = 16  # texts × methods above this run as a background job


@dataclass(frozen=True)
class ModelSpec:
    """A model the server offers: the name requests use, and where it loads from."""

    name: str
    source: str


@dataclass
class ServerConfig:
    """Everything :func:`explainlm.server.create_app` needs."""

    models: list[ModelSpec] = field(
        default_factory=lambda: [ModelSpec("smollm2-135m", "smollm2-135m")]
    )
    token: str | None = None
    workers: int = 2
    queue_size: int = 8
    device: str | None = None
    limits: Limits = field(default_factory=Limits)
    retry_after_s: int = 5
    static_dir: Path | None = None

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]


def parse_models(value: str | None) -> list[ModelSpec]:
    """``"smollm2-135m,models/minilm-sst2,triage=/srv/m"`` → model specs.

    A built-in name keeps its name; a directory is offered under its folder name unless it is given
    as ``NAME=PATH``. Requests only ever name a model; they never pass a path or hub id.
    """
    if value is None or not value.strip():
        return [ModelSpec("smollm2-135m", "smollm2-135m")]
    out: list[ModelSpec] = []
    for raw in (v.strip() for v in value.split(",")):
        if not raw:
            continue
        name, sep, source = raw.partition("=")
        if not sep:
            source = raw
            path = Path(raw).expanduser()
            name = path.resolve().name if ("/" in raw or path.exists()) else raw
        name, source = name.strip(), source.strip()
        if not name or not source:
            raise UserError(f"--models: cannot read {raw!r}; use NAME, PATH or NAME=PATH")
        if any(m.name == name for m in out):
            raise UserError(f"--models: the name {name!r} is used twice; use NAME=PATH to rename")
        out.append(ModelSpec(name, source))
    if not out:
        raise UserError("--models: no model given")
    return out


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a bearer token."""
    if not is_loopback(host) and not token:
        raise UserError(
            f"refusing to listen on {host} without --token: anyone on the network could run models "
            "and read the run store. Pass --token SECRET (clients send 'Authorization: Bearer "
            "SECRET'), or bind 127.0.0.1"
        )
    if token is not None and len(token) < 8:
        raise UserError("--token must be at least 8 characters long")
