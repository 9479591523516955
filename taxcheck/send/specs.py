"""Model specs (``PROVIDER:MODEL``) and the endpoints they name.

A spec names an *endpoint* (where to send, with which key, in which wire format) and a
model. Endpoints come from three places, later ones overriding earlier ones:
built-ins (``openai``, ``anthropic`` and the local presets), ``[endpoints.NAME]`` tables in
``taxcheck.toml``, and ``--endpoint NAME=URL`` flags. Keys are read from the environment
only, so that no key is ever written into a config file, a run file or a command line we
record.

A spec may end in ``#completions`` to reach a base model (no chat template) over the
OpenAI completions API; an endpoint can make that its default with ``api = "completions"``.

**Variants** (DESIGN §5): a product team deploys a model *with* its system prompt and
settings, so ``[models.NAME]`` tables of taxcheck.toml name a spec plus any of ``system`` /
``system_file``, ``temperature``, ``max_tokens``, ``reasoning_effort``, ``thinking_budget``,
``extra_body`` and ``extra_headers``, and ``-m NAME`` / ``-b NAME`` / ``--judge NAME`` take the
name wherever a spec goes. A variant is a model like any other: its own column, cache key
(its system prompt is in the messages, its settings in the parameters), run-file identity
and paired tax. Two variants of one spec share that endpoint's client and rate limit.

A variant's system prompt comes *first* and an item's own system prompt (a suite's
``system`` field) after it, joined by a blank line: the deployment's instructions frame
the conversation, and the item's context still reaches the model.

Every resolved model carries its profile (``profiles.py``): what its requests look like.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from taxcheck.errors import SpecError
from taxcheck.send.profiles import Profile, ProfileRow, config_profiles, profile_for

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
class Variant:
    """A ``[models.NAME]`` table: a spec plus the settings a deployment sends with it."""

    name: str
    spec: str
    system: str | None = None
    system_file: str | None = None  # as written in the table (the text is in ``system``)
    temperature: float | None = None
    max_tokens: int | None = None
    reasoning_effort: str | None = None
    thinking_budget: int | None = None
    extra_body: tuple[tuple[str, Any], ...] = ()
    extra_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # values may be secrets

    def record(self) -> dict[str, Any]:
        """The definition as the run header records it: header *values* are left out."""
        out: dict[str, Any] = {"spec": self.spec}
        for name in ("system", "system_file", "temperature", "max_tokens", "reasoning_effort", "thinking_budget"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.extra_body:
            out["extra_body"] = dict(self.extra_body)
        if self.extra_headers:
            out["extra_headers"] = {k: "***" for k, _ in self.extra_headers}
        return out


@dataclass(frozen=True)
class ModelSpec:
    """One ``-m``/``-b``/``--judge`` argument, resolved."""

    spec: str  # as the user wrote it (a spec or a variant name): the name used in tables and JSON
    endpoint: Endpoint
    model: str
    api: Api
    profile: Profile = Profile()
    variant: Variant | None = None

    def __str__(self) -> str:
        return self.spec

    def messages(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        """``messages`` with the variant's system prompt first (see the module docstring)."""
        system = self.variant.system if self.variant is not None else None
        if not system:
            return messages
        if messages and messages[0]["role"] == "system":
            return [{"role": "system", "content": system + "\n\n" + messages[0]["content"]}, *messages[1:]]
        return [{"role": "system", "content": system}, *messages]

    def params(self, temperature: float, max_tokens: int | None) -> "Any":
        """The request parameters of this model for a run at ``temperature`` with ``--max-tokens``
        (None: the profile's default cap). The variant's own settings win over the run's; a
        profile that takes no temperature sends none (the provider default, said in the header)."""
        from taxcheck.send.wire import Params

        v = self.variant
        t = v.temperature if v is not None and v.temperature is not None else temperature
        cap = v.max_tokens if v is not None and v.max_tokens is not None else (max_tokens or self.profile.max_tokens)
        return Params(
            temperature=t if self.profile.temperature else None,
            max_tokens=cap,
            token_field=None if self.profile.token_field == "auto" else self.profile.token_field,
            reasoning_effort=v.reasoning_effort if v is not None else None,
            thinking_budget=v.thinking_budget if v is not None else None,
            extra_body=v.extra_body if v is not None else (),
            extra_headers=v.extra_headers if v is not None else (),
        )


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


# Query parameters that carry credentials (Azure's api-key, signed URLs' sig, OAuth tokens ...).
_SECRET_QUERY = re.compile(r"(?:^|[-_])(?:key|apikey|token|secret|password|passwd|pwd|sig|signature|auth|authorization|"
                           r"credential|credentials|session|access[-_]?token|client[-_]?secret)$", re.I)


def redact_url(url: str) -> str:
    """Drop credentials from a URL: userinfo (``https://user:secret@host`` -> ``https://***@host``)
    and query parameters that carry them (``?api-key=…`` -> ``?api-key=***``; a value may hold
    ``=``, as base64 does, so each parameter is split at its first ``=`` only)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if parts.username is not None or parts.password is not None:
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"***@{host}" + (f":{port}" if port else "")
    query = parts.query
    if query:
        pieces = []
        for piece in query.split("&"):
            name, sep, _value = piece.partition("=")
            pieces.append(f"{name}=***" if sep and _SECRET_QUERY.search(name) else piece)
        query = "&".join(pieces)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def key_env_for(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper()) + "_API_KEY"


@dataclass
class Registry:
    """All endpoints, variants and user profiles known to this invocation."""

    endpoints: dict[str, Endpoint]
    variants: dict[str, Variant] = field(default_factory=dict)
    profiles: tuple[ProfileRow, ...] = ()

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
        variants = _config_variants(config_path)
        return cls({n: _with_key(ep, env) for n, ep in eps.items()}, variants, config_profiles(config_path))

    def resolve(self, spec: str) -> ModelSpec:
        """A spec or a variant name, resolved to its endpoint, model, profile and settings."""
        variant = self.variants.get(spec)
        if variant is not None:
            base = self._resolve_spec(variant.spec)
            return replace(base, spec=spec, variant=variant)
        if ":" not in spec and self.variants:
            raise SpecError(f"{spec!r} is neither PROVIDER:MODEL nor a variant; variants in taxcheck.toml: {', '.join(sorted(self.variants))}")
        return self._resolve_spec(spec)

    def _resolve_spec(self, spec: str) -> ModelSpec:
        provider, sep, model = spec.partition(":")
        if not sep or not provider or not model:
            raise SpecError(
                f"model spec {spec!r}: expected PROVIDER:MODEL, e.g. openai:gpt-5.4-mini "
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
        if ep.name in _BUILTINS and _BUILTINS[ep.name][2] and ep.base_url != _BUILTINS[ep.name][1].rstrip("/"):
            _check_url(ep.base_url, f"{spec}: {_BUILTINS[ep.name][2]}")  # the SDK's variable, set by hand
        if ep.key_required and ep.api_key == NO_KEY:
            raise SpecError(
                f"{spec}: no API key; set {ep.key_env}"
                + (f" (or point {ep.name.upper()}_BASE_URL at a server that needs none)" if ep.name in ("openai", "anthropic") else "")
            )
        return ModelSpec(spec=spec, endpoint=ep, model=model, api=api, profile=profile_for(ep.wire, model, self.profiles))


def _with_key(ep: Endpoint, env: dict[str, str]) -> Endpoint:
    key = env.get(ep.key_env or "", "").strip() if ep.key_env else ""
    return replace(ep, api_key=key or NO_KEY)


def _check_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SpecError(f"{where}: {redact_url(url)!r} is not an http(s) URL")


def _config(path: Path | None) -> tuple[dict[str, Any], Path | None]:
    """taxcheck.toml as a dict (empty when there is none) and where it was read from."""
    if path is None:
        default = Path("taxcheck.toml")
        if not default.exists():
            return {}, None
        path = default
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")), path
    except FileNotFoundError:
        raise SpecError(f"{path}: config file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from None


def _config_endpoints(path: Path | None) -> dict[str, dict]:
    data, path = _config(path)
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


_VARIANT_KEYS = {"spec", "system", "system_file", "temperature", "max_tokens", "reasoning_effort", "thinking_budget",
                 "extra_body", "extra_headers"}
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


def _config_variants(path: Path | None) -> dict[str, Variant]:
    data, where = _config(path)
    table = data.get("models", {})
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise SpecError(f"{where}: [models.NAME] must be tables with spec = \"PROVIDER:MODEL\"")
    return {name: variant_from_table(name, t, where) for name, t in table.items()}


def variant_from_table(name: str, table: dict[str, Any], path: Path | None) -> Variant:
    """One ``[models.NAME]`` table, checked field by field (``system_file`` is read here,
    relative to the toml, so a missing file fails before the first request)."""
    where = f"{path or 'taxcheck.toml'}: [models.{name}]"
    if not _NAME_RE.match(name) or ":" in name:
        raise SpecError(f"{where}: variant names are letters, digits, - and _ (no ':', which marks PROVIDER:MODEL)")
    unknown = set(table) - _VARIANT_KEYS
    if unknown:
        raise SpecError(f"{where}: unknown keys {sorted(unknown)} (allowed: {', '.join(sorted(_VARIANT_KEYS))})")
    spec = table.get("spec")
    if not isinstance(spec, str) or ":" not in spec:
        raise SpecError(f"{where}: needs spec = \"PROVIDER:MODEL\"")
    if "system" in table and "system_file" in table:
        raise SpecError(f"{where}: give system or system_file, not both")
    system = table.get("system")
    system_file = table.get("system_file")
    if system is not None and (not isinstance(system, str) or not system.strip()):
        raise SpecError(f"{where}: system must be non-empty text")
    if system_file is not None:
        if not isinstance(system_file, str):
            raise SpecError(f"{where}: system_file must be a path")
        file = (path.parent if path else Path(".")) / system_file
        try:
            system = file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"{where}: cannot read system_file {file} ({getattr(exc, 'strerror', None) or exc})") from None
        if not system:
            raise SpecError(f"{where}: system_file {file} is empty")
    t = table.get("temperature")
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 2):
        raise SpecError(f"{where}: temperature must be a number from 0 to 2")
    for key in ("max_tokens", "thinking_budget"):
        v = table.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise SpecError(f"{where}: {key} must be a positive whole number")
    if table.get("thinking_budget") is not None and table["thinking_budget"] < 1024:
        raise SpecError(f"{where}: thinking_budget must be at least 1024 (Anthropic's minimum)")
    effort = table.get("reasoning_effort")
    if effort is not None and effort not in _EFFORTS:
        raise SpecError(f"{where}: reasoning_effort must be one of {', '.join(_EFFORTS)}")
    extra_body = table.get("extra_body", {})
    extra_headers = table.get("extra_headers", {})
    if not isinstance(extra_body, dict):
        raise SpecError(f"{where}: extra_body must be a table")
    if not isinstance(extra_headers, dict) or not all(isinstance(v, str) for v in extra_headers.values()):
        raise SpecError(f"{where}: extra_headers must be a table of strings")
    return Variant(
        name=name, spec=spec, system=system, system_file=system_file,
        temperature=None if t is None else float(t), max_tokens=table.get("max_tokens"),
        reasoning_effort=effort, thinking_budget=table.get("thinking_budget"),
        extra_body=tuple(sorted(extra_body.items())), extra_headers=tuple(sorted(extra_headers.items())),
    )


def with_system(model: ModelSpec, text: str, file: Path) -> ModelSpec:
    """``model`` under ``--system FILE``: a variant named ``SPEC+STEM`` with that system prompt."""
    if model.variant is not None:
        raise SpecError(f"--system cannot be combined with the variant {model.spec!r}; put system_file in its [models] table")
    name = f"{model.spec}+{file.stem}"
    return replace(model, spec=name, variant=Variant(name=name, spec=model.spec, system=text, system_file=str(file)))
