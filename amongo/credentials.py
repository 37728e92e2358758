"""Authentication credentials from client options (pure).

Implements the defaults and validation of the MongoDB *Authentication* specification:
which mechanism, which source database, which mechanism properties, and which
combinations are errors. The SASL conversations themselves live in :mod:`amongo.auth`.
"""
from __future__ import annotations

from typing import Any, Awaitable, Dict, FrozenSet, Mapping, MutableMapping, Optional, Protocol, Tuple

from pymongo.errors import ConfigurationError

__all__ = [
    "Credential",
    "credential_from_options",
    "EXTERNAL_MECHANISMS",
    "DEFAULT_MECHANISM",
    "AuthConnection",
]

class AuthConnection(Protocol):
    """What the authentication mechanisms (:mod:`amongo.auth`, :mod:`amongo.auth_aws`,
    :mod:`amongo.auth_oidc`) use of a connection: :class:`amongo.connection.Connection`
    satisfies it. Typed here so the mechanisms never import the connection module that
    calls them."""

    address: Tuple[str, int]
    hello: Dict[str, Any]
    #: mechanism state (MONGODB-OIDC: the token generation), never a secret
    auth_state: Any
    #: the connection's options (``connect_timeout`` is read)
    options: Any

    def command(
        self, dbname: str, spec: MutableMapping[str, Any], *, compress: bool = ...
    ) -> Awaitable[Dict[str, Any]]:
        """Send one authentication command; await the reply."""
        ...


DEFAULT_MECHANISM = "DEFAULT"
"""The mechanism value meaning "negotiate SCRAM-SHA-256 / SCRAM-SHA-1 with the server"."""

EXTERNAL_MECHANISMS = frozenset({"GSSAPI", "MONGODB-X509", "MONGODB-AWS", "MONGODB-OIDC"})
"""Mechanisms whose source is always ``$external``."""

_MECHANISM_PROPERTIES: Dict[str, FrozenSet[str]] = {
    "GSSAPI": frozenset({"SERVICE_NAME", "CANONICALIZE_HOST_NAME", "SERVICE_REALM", "SERVICE_HOST"}),
    "MONGODB-AWS": frozenset({"AWS_SESSION_TOKEN"}),
    "MONGODB-OIDC": frozenset(
        {"ENVIRONMENT", "TOKEN_RESOURCE", "OIDC_CALLBACK", "OIDC_HUMAN_CALLBACK", "ALLOWED_HOSTS"}
    ),
}

_OIDC_ENVIRONMENTS = ("test", "azure", "gcp", "k8s")

DEFAULT_OIDC_ALLOWED_HOSTS = (
    "*.mongodb.net",
    "*.mongodb-qa.net",
    "*.mongodb-dev.net",
    "*.mongodbgov.net",
    "localhost",
    "127.0.0.1",
    "::1",
    "*.mongo.com",
)


class AuthCache:
    """Mutable per-client authentication state kept beside an immutable :class:`Credential`
    (MONGODB-OIDC's token cache). Not part of the credential's equality or repr."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data: Any = None

    def __repr__(self) -> str:
        return "<AuthCache>"


class Credential:
    """An immutable authentication credential.

    :ivar mechanism: ``"DEFAULT"`` (negotiate SCRAM), ``"SCRAM-SHA-1"``, ``"SCRAM-SHA-256"``,
        ``"PLAIN"``, ``"GSSAPI"``, ``"MONGODB-X509"``, ``"MONGODB-AWS"`` or ``"MONGODB-OIDC"``.
    :ivar source: the database to authenticate against.
    :ivar username: or None (X509 from the certificate, AWS/OIDC from the environment).
    :ivar password: or None.
    :ivar mechanism_properties: a dict (empty when none), e.g. ``{"SERVICE_NAME": "mongodb"}``.
    :ivar cache: the client's :class:`AuthCache` (each client builds its own credential).
    """

    __slots__ = ("mechanism", "source", "username", "password", "mechanism_properties", "cache")

    mechanism: str
    source: str
    username: Optional[str]
    password: Optional[str]
    mechanism_properties: Dict[str, Any]
    cache: AuthCache

    def __init__(
        self,
        mechanism: str,
        source: str,
        username: Optional[str],
        password: Optional[str],
        mechanism_properties: Optional[Mapping[str, Any]] = None,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "mechanism", mechanism)
        set_(self, "source", source)
        set_(self, "username", username)
        set_(self, "password", password)
        set_(self, "mechanism_properties", dict(mechanism_properties or {}))
        set_(self, "cache", AuthCache())

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Credential is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Credential is immutable")

    @property
    def negotiate(self) -> bool:
        """True when the mechanism is to be negotiated (``DEFAULT``)."""
        return self.mechanism == DEFAULT_MECHANISM

    def _key(self) -> Tuple[Any, ...]:
        props = tuple(sorted((k, repr(v)) for k, v in self.mechanism_properties.items()))
        return (self.mechanism, self.source, self.username, self.password, props)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credential):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        props = {k: ("<redacted>" if k == "AWS_SESSION_TOKEN" else v) for k, v in self.mechanism_properties.items()}
        return (
            f"Credential(mechanism={self.mechanism!r}, source={self.source!r}, "
            f"username={self.username!r}, password={'<redacted>' if self.password is not None else None}, "
            f"mechanism_properties={props!r})"
        )


def _get(options: Mapping[str, Any], name: str) -> Any:
    getter = getattr(options, "get", None)
    value = options.get(name) if getter else None
    if value is None:
        low = name.lower()
        for key, val in options.items():
            if key.lower() == low:
                return val
    return value


def credential_from_options(
    username: Optional[str],
    password: Optional[str],
    database: Optional[str],
    options: Mapping[str, Any],
    *,
    uri_userinfo: bool = False,
) -> Optional[Credential]:
    """Build the client's :class:`Credential`, or None when no authentication is configured.

    :param username: from the URI or the ``username`` keyword (keyword wins; caller merges).
    :param password: likewise.
    :param database: the URI's database (default auth source for SCRAM/PLAIN).
    :param options: normalised options (``authMechanism``, ``authSource``,
        ``authMechanismProperties``), case-insensitive.
    :param uri_userinfo: *username*/*password* came from the connection string (MONGODB-AWS
        credentials there are deprecated by the auth spec: accepted, with a DeprecationWarning).
    :raises ConfigurationError: invalid combinations per the auth spec.
    """
    mechanism = _get(options, "authMechanism")
    source = _get(options, "authSource")
    props: Dict[str, Any] = dict(_get(options, "authMechanismProperties") or {})

    if username is None and mechanism is None:
        return None  # authSource alone (or nothing) creates no credential
    if source is not None and source == "":
        raise ConfigurationError("authSource must not be empty")
    if mechanism is None:
        mechanism = DEFAULT_MECHANISM

    allowed = _MECHANISM_PROPERTIES.get(mechanism, frozenset())
    for key in props:
        if key not in allowed:
            raise ConfigurationError(f"{key} is not a supported auth mechanism property for {mechanism}")

    if mechanism in EXTERNAL_MECHANISMS:
        if source is not None and source != "$external":
            raise ConfigurationError(f"authSource must be $external or unset for {mechanism}")
        source = "$external"

    if mechanism == "GSSAPI":
        if not username:
            raise ConfigurationError("GSSAPI requires a username")
        props.setdefault("SERVICE_NAME", "mongodb")
        canon = props.get("CANONICALIZE_HOST_NAME")
        if canon is not None and canon not in (True, False, "none", "forward", "forwardAndReverse"):
            raise ConfigurationError(f"Invalid CANONICALIZE_HOST_NAME: {canon!r}")
    elif mechanism == "MONGODB-X509":
        if password is not None:
            raise ConfigurationError("Passwords are not supported by MONGODB-X509")
    elif mechanism == "MONGODB-AWS":
        if username is not None and password is None:
            raise ConfigurationError("MONGODB-AWS requires a password when a username is given")
        if username is None and password is not None:
            raise ConfigurationError("MONGODB-AWS requires a username when a password is given")
        if "AWS_SESSION_TOKEN" in props and username is None:
            raise ConfigurationError("AWS_SESSION_TOKEN requires a username and password for MONGODB-AWS")
        if uri_userinfo and username is not None:
            import warnings

            warnings.warn(
                "MONGODB-AWS credentials in the connection string are deprecated: use the "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment variables or the "
                "username= / password= keyword arguments",
                DeprecationWarning,
                stacklevel=3,
            )
    elif mechanism == "MONGODB-OIDC":
        _check_oidc(username, password, props)
    elif mechanism == "PLAIN":
        if not username:
            raise ConfigurationError("PLAIN requires a username")
        if password is None:
            raise ConfigurationError("PLAIN requires a password")
        if "\x00" in username or "\x00" in password:
            raise ConfigurationError("PLAIN credentials cannot contain NUL characters")
        source = source or database or "$external"
    else:  # DEFAULT, SCRAM-SHA-1, SCRAM-SHA-256
        if mechanism not in (DEFAULT_MECHANISM, "SCRAM-SHA-1", "SCRAM-SHA-256"):
            raise ConfigurationError(f"Unknown authentication mechanism {mechanism!r}")
        if not username:
            raise ConfigurationError(f"{mechanism} requires a username")
        if password is None:
            raise ConfigurationError(f"{mechanism} requires a password")
        source = source or database or "admin"
    return Credential(mechanism, source, username, password, props)


def _check_oidc(username: Optional[str], password: Optional[str], props: Dict[str, Any]) -> None:
    if password is not None:
        raise ConfigurationError("A password is not supported by MONGODB-OIDC")
    env = props.get("ENVIRONMENT")
    callback = props.get("OIDC_CALLBACK")
    human = props.get("OIDC_HUMAN_CALLBACK")
    if "ALLOWED_HOSTS" in props and human is None:
        raise ConfigurationError("ALLOWED_HOSTS is only valid with OIDC_HUMAN_CALLBACK")
    if callback is not None and human is not None:
        raise ConfigurationError("Cannot set both OIDC_CALLBACK and OIDC_HUMAN_CALLBACK")
    for name, value in (("OIDC_CALLBACK", callback), ("OIDC_HUMAN_CALLBACK", human)):
        if value is not None and not callable(getattr(value, "fetch", None)):
            raise ConfigurationError(f"{name} must be an object with a fetch(context) method (an OIDCCallback)")
    if callback is not None or human is not None:
        if env is not None:
            raise ConfigurationError("Cannot set ENVIRONMENT together with an OIDC callback")
        return
    if env is None:
        raise ConfigurationError("MONGODB-OIDC requires an ENVIRONMENT or a callback")
    if env not in _OIDC_ENVIRONMENTS:
        raise ConfigurationError(f"Unsupported ENVIRONMENT for MONGODB-OIDC: {env!r}")
    if env in ("test", "gcp", "k8s") and username is not None:
        raise ConfigurationError(f"The {env} ENVIRONMENT for MONGODB-OIDC does not accept a username")
    if env in ("azure", "gcp") and not props.get("TOKEN_RESOURCE"):
        raise ConfigurationError(f"The {env} ENVIRONMENT for MONGODB-OIDC requires TOKEN_RESOURCE")
    if env in ("test", "k8s") and "TOKEN_RESOURCE" in props:
        raise ConfigurationError(f"The {env} ENVIRONMENT for MONGODB-OIDC does not accept TOKEN_RESOURCE")
