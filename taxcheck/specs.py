"""Model specs (``PROVIDER:MODEL``) and the endpoints they name.

A spec names an *endpoint* (where to send, with which key, in which wire format) and a
model. Endpoints come from three places, later ones overriding earlier ones:
built-ins (``openai``, ``anthropic`` and the local presets), ``[endpoints.NAME]`` tables in
``taxcheck.toml``, and ``--endpoint NAME=URL`` flags. Keys are read from the environment
only, so that no key is ever written into a config file, a run file or a command line we
record.

A spec may end in ``#completions`` to reach a base model (no chat template) over the
OpenAI completions API; an endpoint can make that its default with ``api = "completions"``.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from taxcheck.errors import SpecError

Wire = Literal["openai", "anthropic"]
Api = Literal["chat", "completions"]

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
ANTHROPIC_DEFAULT_URL = "https://api.anthropic.com"
# A placeholder key for servers that ignore keys (vLLM, Ollama, llama.cpp without --api-key);
# the SDKs refuse to start without one.
NO_KEY = "no-key"


@dataclass(frozen=True)
class Endpoint:
    """Where requests go. ``api_key`` is a secret: it is never printed, logged or stored."""

    name: str
    wire: Wire
    base_url: str
    key_env: str | None
    api: Api = "chat"
    api_key: str = field(default=NO_KEY, repr=False)
    key_required: bool = False

    @property
    def display_url(self) -> str:
        return redact_url(self.base_url)


@dataclass(frozen=True)
class ModelSpec:
    """One ``-m``/``-b``/``--judge`` argument, resolved."""

    spec: str  # as the user wrote it (minus nothing): the name used in tables and JSON
    endpoint: Endpoint
    model: str
    api: Api

    def __str__(self) -> str:
        return self.spec


# name -> (wire, default URL, env var for the URL, env var for the key, key required)
_BUILTINS: dict[str, tuple[Wire, str, str | None, str | None, bool]] = {
    "openai": ("openai", OPENAI_DEFAULT_URL, "OPENAI_BASE_URL", "OPENAI_API_KEY", True),
    "anthropic": ("anthropic", ANTHROPIC_DEFAULT_URL, "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", True),
    "ollama": ("openai", "http://localhost:11434/v1", None, "OLLAMA_API_KEY", False),
    "vllm": ("openai", "http://localhost:8000/v1", None, "VLLM_API_KEY", False),
    "llamacpp": ("openai", "http://localhost:8080/v1", None, "LLAMACPP_API_KEY", False),
    "lmstudio": ("openai", "http://localhost:1234/v1", None, "LMSTUDIO_API_KEY", False),
}
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def redact_url(url: str) -> str:
    """Drop credentials from a URL (``https://user:secret@host`` -> ``https://***@host``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def key_env_for(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper()) + "_API_KEY"


@dataclass
class Registry:
    """All endpoints known to this invocation."""

    endpoints: dict[str, Endpoint]

    @classmethod
    def load(
        cls,
        endpoint_flags: list[str] | None = None,
        config_path: Path | None = None,
        environ: dict[str, str] | None = None,
    ) -> "Registry":
        env = dict(os.environ if environ is None else environ)
        eps: dict[str, Endpoint] = {}
        for name, (wire, url, url_env, key_env, required) in _BUILTINS.items():
            custom_url = env.get(url_env) if url_env else None
            eps[name] = Endpoint(
                name=name,
                wire=wire,
                base_url=(custom_url or url).rstrip("/"),
                key_env=key_env,
                # a user who points the SDK at their own server may not have a key
                key_required=required and not custom_url,
            )
        for name, table in _config_endpoints(config_path).items():
            eps[name] = _endpoint_from_table(name, table, eps.get(name), config_path)
        for flag in endpoint_flags or []:
            name, sep, url = flag.partition("=")
            if not sep or not _NAME_RE.match(name.strip()) or not url.strip():
                raise SpecError(f"--endpoint {flag!r}: expected NAME=URL, e.g. --endpoint mylab=http://gpu-box:8000/v1")
            name, url = name.strip(), url.strip()
            _check_url(url, f"--endpoint {name}")
            base = eps.get(name)
            eps[name] = Endpoint(
                name=name,
                wire=base.wire if base else "openai",
                base_url=url.rstrip("/"),
                key_env=base.key_env if base else key_env_for(name),
                api=base.api if base else "chat",
            )
        return cls({n: _with_key(ep, env) for n, ep in eps.items()})

    def resolve(self, spec: str) -> ModelSpec:
        provider, sep, model = spec.partition(":")
        if not sep or not provider or not model:
            raise SpecError(
                f"model spec {spec!r}: expected PROVIDER:MODEL, e.g. openai:gpt-4o-mini "
                f"(providers: {', '.join(sorted(self.endpoints))})"
            )
        ep = self.endpoints.get(provider)
        if ep is None:
            raise SpecError(
                f"unknown provider {provider!r} in {spec!r}; known: {', '.join(sorted(self.endpoints))}. "
                f"Define others with --endpoint {provider}=URL or [endpoints.{provider}] in taxcheck.toml"
            )
        api: Api = ep.api
        model, hash_, suffix = model.partition("#")
        if hash_:
            if suffix not in ("chat", "completions"):
                raise SpecError(f"model spec {spec!r}: the suffix after # must be chat or completions")
            api = suffix  # type: ignore[assignment]
        if not model:
            raise SpecError(f"model spec {spec!r}: the model name is empty")
        if api == "completions" and ep.wire != "openai":
            raise SpecError(f"model spec {spec!r}: #completions needs an OpenAI-compatible endpoint")
        if ep.key_required and ep.api_key == NO_KEY:
            raise SpecError(
                f"{spec}: no API key; set {ep.key_env}"
                + (f" (or point {ep.name.upper()}_BASE_URL at a server that needs none)" if ep.name in ("openai", "anthropic") else "")
            )
        return ModelSpec(spec=spec, endpoint=ep, model=model, api=api)


def _with_key(ep: Endpoint, env: dict[str, str]) -> Endpoint:
    key = env.get(ep.key_env or "", "").strip() if ep.key_env else ""
    return replace(ep, api_key=key or NO_KEY)


def _check_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SpecError(f"{where}: {redact_url(url)!r} is not an http(s) URL")


def _config_endpoints(path: Path | None) -> dict[str, dict]:
    if path is None:
        default = Path("taxcheck.toml")
        if not default.exists():
            return {}
        path = default
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: config file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from None
    eps = data.get("endpoints", {})
    if not isinstance(eps, dict) or not all(isinstance(v, dict) for v in eps.values()):
        raise SpecError(f"{path}: [endpoints.NAME] must be tables with url = \"...\"")
    return eps


def _endpoint_from_table(name: str, table: dict, base: Endpoint | None, path: Path | None) -> Endpoint:
    where = f"{path or 'taxcheck.toml'}: [endpoints.{name}]"
    if "api_key" in table:
        raise SpecError(f"{where}: keys are never read from files; set {table.get('api_key_env') or key_env_for(name)} in the environment")
    unknown = set(table) - {"url", "wire", "api", "api_key_env"}
    if unknown:
        raise SpecError(f"{where}: unknown keys {sorted(unknown)} (allowed: url, wire, api, api_key_env)")
    if not _NAME_RE.match(name):
        raise SpecError(f"{where}: endpoint names are letters, digits, - and _")
    url = table.get("url", base.base_url if base else None)
    if not isinstance(url, str):
        raise SpecError(f"{where}: needs url = \"http://host:port/v1\"")
    _check_url(url, where)
    wire = table.get("wire", base.wire if base else "openai")
    api = table.get("api", base.api if base else "chat")
    if wire not in ("openai", "anthropic"):
        raise SpecError(f"{where}: wire must be \"openai\" or \"anthropic\"")
    if api not in ("chat", "completions"):
        raise SpecError(f"{where}: api must be \"chat\" or \"completions\"")
    key_env = table.get("api_key_env", base.key_env if base else key_env_for(name))
    return Endpoint(name=name, wire=wire, base_url=url.rstrip("/"), key_env=key_env, api=api)
