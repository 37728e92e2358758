"""``mongodb+srv://`` seedlist discovery (Initial DNS Seedlist Discovery spec).

DNS goes through an injectable :class:`Resolver`; the default one uses dnspython's asyncio
resolver (:mod:`dns.asyncresolver`), so no threads are involved. Everything but
:func:`resolve_srv` / :func:`resolve_srv_hosts` and :class:`DnsPythonResolver` is pure.
"""
from __future__ import annotations

import random
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple, Union, runtime_checkable

from pymongo.errors import ConfigurationError

from amongo.uri import (
    CaseInsensitiveDict,
    ParsedUri,
    check_option_combinations,
    split_options,
    validate_option,
)

__all__ = [
    "Resolver",
    "DnsPythonResolver",
    "resolve_srv",
    "resolve_srv_hosts",
    "parse_txt_records",
    "check_srv_hosts",
    "select_srv_hosts",
    "apply_srv",
    "updated_srv_hosts",
    "TXT_ALLOWED_OPTIONS",
]

Address = Tuple[str, int]

TXT_ALLOWED_OPTIONS = ("authSource", "replicaSet", "loadBalanced")
"""The only options a TXT record may set."""


@runtime_checkable
class Resolver(Protocol):
    """What :func:`resolve_srv` needs from DNS.

    ``srv(name)`` returns ``[(target, port), ...]`` for the SRV records of *name* (``[]`` if
    there are none); ``txt(name)`` returns one entry per TXT record, each the record's
    character strings (``str`` or ``bytes``) in order (``[]`` if there are none). Other DNS
    failures raise (preferably :class:`~pymongo.errors.ConfigurationError` with the reason).
    """

    async def srv(self, name: str) -> Sequence[Tuple[str, int]]: ...

    async def txt(self, name: str) -> Sequence[Sequence[Union[str, bytes]]]: ...


class DnsPythonResolver:
    """:class:`Resolver` over :func:`dns.asyncresolver.resolve` (no threads).

    :param lifetime: total seconds allowed per query (None: dnspython's default).
    """

    __slots__ = ("_lifetime", "_resolver")

    def __init__(self, lifetime: Optional[float] = None, resolver: Any = None) -> None:
        self._lifetime = lifetime
        self._resolver = resolver

    async def _query(self, name: str, rdtype: str, *, missing_ok: bool = True) -> Any:
        import dns.asyncresolver
        import dns.exception
        import dns.resolver

        resolver = self._resolver
        if resolver is None:
            resolver = self._resolver = dns.asyncresolver.Resolver()
        kwargs: Dict[str, Any] = {}
        if self._lifetime is not None:
            kwargs["lifetime"] = self._lifetime
        try:
            return await resolver.resolve(name, rdtype, **kwargs)
        except dns.resolver.NXDOMAIN as exc:
            if missing_ok:
                return None
            raise ConfigurationError(f"DNS {rdtype} query for {name!r} failed: {exc}") from exc
        except dns.resolver.NoAnswer:
            return None
        except dns.exception.DNSException as exc:
            raise ConfigurationError(f"DNS {rdtype} query for {name!r} failed: {exc}") from exc

    async def srv(self, name: str) -> List[Tuple[str, int]]:
        answer = await self._query(name, "SRV", missing_ok=False)
        if answer is None:
            return []
        return [(rr.target.to_text(omit_final_dot=True), int(rr.port)) for rr in answer]

    async def txt(self, name: str) -> List[List[bytes]]:
        answer = await self._query(name, "TXT")
        if answer is None:
            return []
        return [list(rr.strings) for rr in answer]


def _domain_of(fqdn: str) -> Tuple[str, bool]:
    """``({domainname}, has_subdomain)`` for an SRV host name."""
    parts = fqdn.split(".")
    if len(parts) >= 3:
        return ".".join(parts[1:]), True
    return fqdn, False


def _normalise_host(host: str) -> str:
    return host.rstrip(".").lower()


def check_srv_hosts(fqdn: str, hosts: Sequence[Address]) -> List[Address]:
    """Validate SRV targets against the SRV host name; return them normalised.

    Every target must end with ``.{domainname}``; when *fqdn* has fewer than three labels
    (no subdomain) the target must also have more labels than *fqdn*.

    :raises ConfigurationError: a target outside the domain, or no targets at all.
    """
    fqdn = _normalise_host(fqdn)
    domain, _ = _domain_of(fqdn)
    result: List[Address] = []
    for host, port in hosts:
        target = _normalise_host(host)
        if not target.endswith("." + domain):
            raise ConfigurationError(
                f"Invalid SRV host: {target} (SRV hosts must end with the domain {domain!r} of {fqdn!r})"
            )
        result.append((target, int(port)))
    if not result:
        raise ConfigurationError(f"No SRV records found for {fqdn!r}")
    return result


def select_srv_hosts(
    hosts: Sequence[Address], srv_max_hosts: int = 0, *, rng: Optional[random.Random] = None
) -> List[Address]:
    """All *hosts*, or *srv_max_hosts* of them chosen at random (Fisher-Yates)."""
    hosts = list(hosts)
    if not srv_max_hosts or srv_max_hosts >= len(hosts):
        return hosts
    (rng or random).shuffle(hosts)
    return hosts[:srv_max_hosts]


def parse_txt_records(records: Sequence[Sequence[Union[str, bytes]]]) -> Dict[str, str]:
    """Parse TXT answers into options (names as written, values percent-decoded).

    :raises ConfigurationError: more than one record, a malformed option, or an option
        other than ``authSource``, ``replicaSet`` and ``loadBalanced``.
    """
    if not records:
        return {}
    if len(records) > 1:
        raise ConfigurationError("Only one TXT record is supported for a mongodb+srv host")
    try:
        text = "".join(s.decode("utf-8") if isinstance(s, (bytes, bytearray)) else s for s in records[0])
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"TXT record is not valid UTF-8: {exc}") from None
    try:
        pairs = split_options(text)
    except ConfigurationError as exc:
        raise ConfigurationError(f"Malformed TXT record {text!r}: {exc}") from exc
    allowed = {name.lower(): name for name in TXT_ALLOWED_OPTIONS}
    options: Dict[str, str] = {}
    for key, value in pairs:
        if key.lower() not in allowed:
            raise ConfigurationError(f"Option {key!r} is not allowed in a TXT record (only {TXT_ALLOWED_OPTIONS})")
        name = allowed[key.lower()]
        # An invalid value (``loadBalanced=maybe``, an empty replicaSet) is an error, never
        # silently ignored.
        try:
            validate_option(name, value, uri=True)
        except (ConfigurationError, ValueError, TypeError) as exc:
            raise ConfigurationError(f"Invalid TXT record option {key}={value!r}: {exc}") from None
        options[name] = value
    return options


async def resolve_srv_hosts(
    fqdn: str,
    *,
    srv_service_name: str = "mongodb",
    resolver: Optional[Resolver] = None,
) -> List[Address]:
    """Query and validate the SRV records of *fqdn* (all of them; used by SRV polling).

    :raises ConfigurationError: no records, a DNS failure, or an invalid target.
    """
    resolver = resolver if resolver is not None else DnsPythonResolver()
    name = f"_{srv_service_name}._tcp.{_normalise_host(fqdn)}"
    answer = await resolver.srv(name)
    if not answer:
        raise ConfigurationError(f"No SRV records found for {name!r}")
    return check_srv_hosts(fqdn, answer)


async def resolve_srv(
    fqdn: str,
    *,
    srv_service_name: str = "mongodb",
    srv_max_hosts: int = 0,
    resolver: Optional[Resolver] = None,
    rng: Optional[random.Random] = None,
) -> Tuple[List[Address], Dict[str, str]]:
    """Resolve a ``mongodb+srv`` host name into seeds and TXT options.

    :return: ``(seeds, txt_options)``; seeds are validated against *fqdn*'s domain and
        limited to *srv_max_hosts* random hosts when that is positive; ``txt_options`` maps
        option names to (string) values; merge them with :func:`apply_srv`.
    :raises ConfigurationError: no SRV records, DNS failure, invalid target host, more than
        one TXT record, or a TXT option that is malformed or not allowed.
    """
    resolver = resolver if resolver is not None else DnsPythonResolver()
    hosts = await resolve_srv_hosts(fqdn, srv_service_name=srv_service_name, resolver=resolver)
    txt = parse_txt_records(await resolver.txt(_normalise_host(fqdn)))
    return select_srv_hosts(hosts, srv_max_hosts, rng=rng), txt


def apply_srv(
    parsed: ParsedUri,
    hosts: Sequence[Address],
    txt_options: Dict[str, Any],
    *,
    warn: bool = False,
) -> ParsedUri:
    """Merge an SRV answer into *parsed* (pure).

    TXT options are validated like URI options, and options already in the URI win. ``tls``
    defaults to true. Combination checks (loadBalanced with several hosts or a replicaSet,
    srvMaxHosts with replicaSet or loadBalanced...) are rerun on the result.

    :return: a new :class:`ParsedUri` whose ``nodelist`` is *hosts*.
    :raises ConfigurationError: an invalid TXT value (unless *warn*) or combination.
    """
    options = CaseInsensitiveDict()
    for key, value in txt_options.items():
        try:
            name, normalised = validate_option(key, value, uri=True)
        except ConfigurationError:
            if warn:
                import warnings

                warnings.warn(f"Invalid TXT record option {key}={value!r}", UserWarning, stacklevel=2)
                continue
            raise
        options[name] = normalised
    for key, value in parsed.options.items():
        options[key] = value  # the URI wins
    if "tls" not in options:
        options["tls"] = True
    check_option_combinations(options, list(hosts), is_srv=True)
    return parsed.replace(nodelist=list(hosts), options=options)


def updated_srv_hosts(
    current: Sequence[Address],
    answer: Sequence[Address],
    srv_max_hosts: int = 0,
    *,
    rng: Optional[random.Random] = None,
) -> List[Address]:
    """The host list after an SRV poll (Polling SRV Records for mongos Discovery spec).

    Hosts that vanished from *answer* are dropped, hosts still present are kept (in their
    order), and new hosts are added; when *srv_max_hosts* is positive, only as many new
    hosts (chosen at random) as fit under the limit.
    """
    answer_set = set(answer)
    kept = [h for h in current if h in answer_set]
    kept_set = set(kept)
    new = [h for h in answer if h not in kept_set]
    if srv_max_hosts:
        room = max(srv_max_hosts - len(kept), 0)
        if room < len(new):
            new = list(new)
            (rng or random).shuffle(new)
            new = new[:room]
    return kept + new
