"""Connection strings and client options (pure: no I/O, no asyncio).

Implements the MongoDB *Connection String*, *URI Options*, *Initial DNS Seedlist
Discovery* (the parsing half; DNS lives in :mod:`amongo.srv`) and *Read/Write Concern*
specifications.

* :func:`parse_uri` splits a ``mongodb://`` / ``mongodb+srv://`` string into a
  :class:`ParsedUri` (hosts, user info, database, normalised options).
* :func:`validate_options` normalises options given as keyword arguments (the names
  PyMongo/Motor accept, case-insensitive) with the same validators as URI options.
* :func:`read_preference_from`, :func:`write_concern_from`, :func:`read_concern_from`,
  :func:`codec_options_from` build the PyMongo value types from normalised options.

Option values are normalised to Python types and keyed by the specification's canonical
option name (``maxPoolSize``, ``tls``, ``wTimeoutMS``...) in a :class:`CaseInsensitiveDict`.
Time values keep their unit: ``*MS`` options hold milliseconds, ``maxStalenessSeconds``
seconds. Invalid or unknown options raise :class:`~pymongo.errors.ConfigurationError`
(or warn with :class:`UserWarning` and are dropped, when ``warn=True``); malformed
connection strings raise :class:`~pymongo.errors.InvalidURI`.
"""
from __future__ import annotations

import datetime
import math
import re
import warnings
from collections import abc
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    MutableMapping,
    Optional,
    Sequence,
    Set,
    Tuple,
)
from urllib.parse import unquote

from bson.binary import UuidRepresentation
from bson.codec_options import (
    CodecOptions,
    DatetimeConversion,
    TypeRegistry,
)
from pymongo.errors import ConfigurationError, InvalidURI
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import (
    Nearest,
    Primary,
    PrimaryPreferred,
    Secondary,
    SecondaryPreferred,
    _ServerMode,
)
from pymongo.write_concern import WriteConcern

__all__ = [
    "SCHEME",
    "SRV_SCHEME",
    "DEFAULT_PORT",
    "ParsedUri",
    "CaseInsensitiveDict",
    "OptionValueError",
    "OptionTypeError",
    "parse_uri",
    "parse_host",
    "split_options",
    "validate_options",
    "validate_option",
    "check_option_combinations",
    "canonical_option_name",
    "is_unix_socket",
    "read_preference_from",
    "write_concern_from",
    "read_concern_from",
    "codec_options_from",
]

SCHEME = "mongodb://"
SRV_SCHEME = "mongodb+srv://"
DEFAULT_PORT = 27017

Address = Tuple[str, int]


class OptionValueError(ConfigurationError, ValueError):
    """An option has a value outside its accepted range or format."""


class OptionTypeError(ConfigurationError, TypeError):
    """An option (given as a keyword argument) has a value of the wrong type."""


# ---------------------------------------------------------------------------------------
# Case-insensitive mapping
# ---------------------------------------------------------------------------------------


#: Options whose values are secrets: shown as ``<redacted>`` in every repr.
SENSITIVE_OPTIONS = frozenset({"password", "tlscertificatekeyfilepassword", "proxypassword"})
#: authMechanismProperties keys whose values are secrets.
SENSITIVE_MECHANISM_PROPERTIES = frozenset({"AWS_SESSION_TOKEN"})
REDACTED = "<redacted>"


def redacted_options(options: Mapping[str, Any]) -> Dict[str, Any]:
    """A plain dict of *options* for display: passwords and tokens replaced by
    ``"<redacted>"`` (issue 11: no credential in any repr, log, error or event)."""
    shown: Dict[str, Any] = {}
    for key, value in options.items():
        low = key.lower()
        if low in SENSITIVE_OPTIONS and value is not None:
            value = REDACTED
        elif low == "authmechanismproperties" and isinstance(value, abc.Mapping):
            value = {
                k: (REDACTED if k in SENSITIVE_MECHANISM_PROPERTIES else v) for k, v in value.items()
            }
        shown[key] = value
    return shown


class CaseInsensitiveDict(MutableMapping[str, Any]):
    """A dict whose keys compare case-insensitively but keep their (canonical) spelling.

    Iteration yields the stored spelling, e.g. ``"maxPoolSize"``; lookups accept any case.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> None:
        self._data: Dict[str, Tuple[str, Any]] = {}
        if data:
            self.update(data)
        if kwargs:
            self.update(kwargs)

    def __getitem__(self, key: str) -> Any:
        return self._data[key.lower()][1]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key.lower()] = (key, value)

    def __delitem__(self, key: str) -> None:
        del self._data[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._data

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._data.values())

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, abc.Mapping):
            return NotImplemented
        if len(other) != len(self):
            return False
        try:
            return all(self[k] == v for k, v in other.items())
        except (KeyError, AttributeError):
            return False

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CaseInsensitiveDict({redacted_options(self)!r})"

    def cased_key(self, key: str) -> str:
        """The stored spelling of *key*."""
        return self._data[key.lower()][0]

    def copy(self) -> "CaseInsensitiveDict":
        """A shallow copy."""
        new = CaseInsensitiveDict()
        new._data = dict(self._data)
        return new


# ---------------------------------------------------------------------------------------
# Value validators. Each takes (canonical_name, value) and returns the normalised value or
# raises OptionValueError / OptionTypeError. URI values arrive as (percent-decoded) str.
# ---------------------------------------------------------------------------------------

_TRUE = ("true",)
_FALSE = ("false",)


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise OptionValueError(f"The value of {name} must be 'true' or 'false', not {value!r}")
    raise OptionTypeError(f"Wrong type for {name}, value must be a boolean, not {value!r}")


#: Integer options are stored in BSON int64 or used as such: larger magnitudes are refused
#: at construction (rather than an OverflowError at the first operation).
_MAX_INT = 2**63 - 1
#: Durations in milliseconds must be below one billion (~11.6 days), as PyMongo's
#: ``validate_positive_float`` requires: a float that large (or infinite) is no deadline.
_MAX_MS = 1e9


def _to_number(name: str, value: Any, *, allow_float: bool) -> float:
    num = _to_number_unchecked(name, value, allow_float=allow_float)
    if isinstance(num, int) and not -_MAX_INT <= num <= _MAX_INT:
        raise OptionValueError(f"{name} is out of range: {value!r:.40}")
    return num


def _to_number_unchecked(name: str, value: Any, *, allow_float: bool) -> float:
    if isinstance(value, bool):
        raise OptionTypeError(f"Wrong type for {name}, value must be a number, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not allow_float and not value.is_integer():
            raise OptionValueError(f"{name} must be an integer, not {value!r}")
        if math.isnan(value) or math.isinf(value):
            raise OptionValueError(f"{name} must be a finite number, not {value!r}")
        return value if allow_float else int(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            if len(text) > 30:  # (int() of thousands of digits is itself slow)
                raise OptionValueError(f"{name} is out of range: {value!r:.40}")
            return int(text)
        if allow_float and re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?", text):
            num = float(text)
            if math.isnan(num) or math.isinf(num):
                raise OptionValueError(f"{name} must be a finite number, not {value!r:.40}")
            return int(num) if num.is_integer() else num
        raise OptionValueError(f"The value of {name} must be {'a number' if allow_float else 'an integer'}, not {value!r}")
    raise OptionTypeError(f"Wrong type for {name}, value must be a number, not {value!r}")


def _int_range(lo: Optional[int], hi: Optional[int] = None, *, none_ok: bool = False) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if value is None:
            if none_ok:
                return None
            raise OptionTypeError(f"{name} cannot be None")
        num = _to_number(name, value, allow_float=False)
        if (lo is not None and num < lo) or (hi is not None and num > hi):
            raise OptionValueError(f"{name} must be in range [{lo}, {hi}], not {value!r}")
        return int(num)

    return check


def _ms(lo: float = 0, *, exclusive: bool = False, none_ok: bool = False) -> Callable[[str, Any], Any]:
    """A duration in milliseconds (int, or float when given fractional)."""

    def check(name: str, value: Any) -> Any:
        if value is None:
            if none_ok:
                return None
            raise OptionTypeError(f"{name} cannot be None")
        num = _to_number(name, value, allow_float=True)
        if num < lo or (exclusive and num == lo):
            cmp = ">" if exclusive else ">="
            raise OptionValueError(f"{name} must be {cmp} {lo}, not {value!r}")
        if num >= _MAX_MS:
            raise OptionValueError(f"{name} must be less than one billion, not {value!r:.40}")
        return num

    return check


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise OptionTypeError(f"Wrong type for {name}, value must be a string, not {value!r}")
    return value


def _nonempty_string(name: str, value: Any) -> str:
    text = _string(name, value)
    if not text:
        raise OptionValueError(f"{name} must not be empty")
    return text


def _string_or_none(name: str, value: Any) -> Optional[str]:
    return None if value is None else _string(name, value)


def _nonempty_string_or_none(name: str, value: Any) -> Optional[str]:
    return None if value is None else _nonempty_string(name, value)


def _choice(*choices: str) -> Callable[[str, Any], str]:
    lowered = {c.lower(): c for c in choices}

    def check(name: str, value: Any) -> str:
        value = _string(name, value)
        try:
            return lowered[value.lower()]
        except KeyError:
            raise OptionValueError(f"{name} must be one of {choices}, not {value!r}") from None

    return check


def _appname(name: str, value: Any) -> Optional[str]:
    if value is None:
        return None
    text = _string(name, value)
    if len(text.encode("utf-8")) > 128:
        raise OptionValueError(f"{name} must be <= 128 bytes in UTF-8")
    return text


AUTH_MECHANISMS = (
    "DEFAULT",
    "GSSAPI",
    "MONGODB-X509",
    "MONGODB-AWS",
    "MONGODB-OIDC",
    "PLAIN",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
)

MECHANISM_PROPERTIES = (
    "SERVICE_NAME",
    "CANONICALIZE_HOST_NAME",
    "SERVICE_REALM",
    "SERVICE_HOST",
    "AWS_SESSION_TOKEN",
    "ENVIRONMENT",
    "TOKEN_RESOURCE",
    "OIDC_CALLBACK",
    "OIDC_HUMAN_CALLBACK",
    "ALLOWED_HOSTS",
)


def _auth_mechanism(name: str, value: Any) -> str:
    text = _string(name, value)
    if text not in AUTH_MECHANISMS:
        raise OptionValueError(f"{name} must be one of {AUTH_MECHANISMS}, not {text!r}")
    return text


def _canonicalize_host_name(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        if value in ("none", "forward", "forwardAndReverse"):
            return value
    raise OptionValueError(
        "CANONICALIZE_HOST_NAME must be one of none, forward, forwardAndReverse, true, false; "
        f"not {value!r}"
    )


def _auth_mechanism_properties(name: str, value: Any) -> Dict[str, Any]:
    props: Dict[str, Any] = {}
    if isinstance(value, abc.Mapping):
        for key, val in value.items():
            if key not in MECHANISM_PROPERTIES:
                raise OptionValueError(f"{key!r} is not a supported auth mechanism property")
            if key == "CANONICALIZE_HOST_NAME":
                val = _canonicalize_host_name(val)
            elif key == "ALLOWED_HOSTS":
                if isinstance(val, str) or not isinstance(val, abc.Iterable):
                    raise OptionTypeError("ALLOWED_HOSTS must be a list of strings")
                val = list(val)
            elif key in ("OIDC_CALLBACK", "OIDC_HUMAN_CALLBACK"):
                pass  # a callback object; the auth layer checks its interface
            elif isinstance(val, bool):
                val = str(val).lower()
            elif not isinstance(val, str):
                raise OptionTypeError(f"Invalid type for auth mechanism property {key}: {type(val)}")
            props[key] = val
        return props
    value = _string(name, value)
    # The value was percent-decoded as a whole; pairs are split on "," and each pair on its
    # first ":" (values such as TOKEN_RESOURCE may contain ":").
    for pair in value.split(","):
        key, sep, val = pair.partition(":")
        if not sep or not key or not val:
            raise OptionValueError(  # (the key only: a value may be a token)
                f"{name} must be comma-separated key:value pairs, got {key!r} without a value"
                if sep else f"{name} must be comma-separated key:value pairs"
            )
        if key not in MECHANISM_PROPERTIES or key in (
            "OIDC_CALLBACK",
            "OIDC_HUMAN_CALLBACK",
            "ALLOWED_HOSTS",
        ):
            if "AWS_SESSION_TOKEN" in key:  # don't echo what may be a token
                raise OptionValueError(f"{name} must be key:value pairs like AWS_SESSION_TOKEN:<token>")
            # (a name-like key is echoed; anything else may be a misplaced token)
            shown = repr(key) if re.fullmatch(r"[A-Za-z_]{1,40}", key) else "the key given"
            raise OptionValueError(f"{shown} is not a supported auth mechanism property in a URI")
        if key == "CANONICALIZE_HOST_NAME":
            props[key] = _canonicalize_host_name(val)
        else:
            props[key] = val
    return props


COMPRESSORS = ("snappy", "zlib", "zstd")


def _compressors(name: str, value: Any) -> List[str]:
    if isinstance(value, str):
        names = [v.strip() for v in value.split(",")]
    elif isinstance(value, abc.Iterable):
        names = []
        for v in value:
            if not isinstance(v, str):
                raise OptionTypeError(f"{name} must be a list of strings, not {value!r}")
            names.append(v.strip())
    else:
        raise OptionTypeError(f"{name} must be a comma-separated string or a list, not {value!r}")
    result: List[str] = []
    for comp in names:
        low = comp.lower()
        if low in COMPRESSORS:
            if low not in result:
                result.append(low)
        elif comp:
            # The compression spec: unsupported compressors are ignored with a warning.
            warnings.warn(f"Unsupported compressor: {comp}", UserWarning, stacklevel=4)
    return result


def _max_staleness(name: str, value: Any) -> int:
    num = _to_number(name, value, allow_float=False)
    if num == -1:
        return -1
    if num <= 0:
        raise OptionValueError(f"{name} must be -1 (no maximum) or a positive integer, not {value!r}")
    return int(num)


def _tag_set(name: str, text: str) -> Dict[str, str]:
    tags: Dict[str, str] = {}
    if not text:
        return tags
    for pair in text.split(","):
        key, sep, val = pair.partition(":")
        if not sep or not key:
            raise OptionValueError(f"{name} must be comma-separated key:value pairs, got {text!r}")
        tags[key] = val
    return tags


def _read_preference_tags(name: str, value: Any) -> List[Dict[str, str]]:
    if isinstance(value, str):
        return [_tag_set(name, value)]
    if isinstance(value, abc.Mapping):
        return [dict(value)]
    if isinstance(value, abc.Iterable):
        result = []
        for item in value:
            if isinstance(item, str):
                result.append(_tag_set(name, item))
            elif isinstance(item, abc.Mapping):
                result.append(dict(item))
            else:
                raise OptionTypeError(f"{name} must be a list of tag sets, not {value!r}")
        return result
    raise OptionTypeError(f"{name} must be a list of tag sets, not {value!r}")


def _w(name: str, value: Any) -> Any:
    if isinstance(value, bool):
        raise OptionTypeError(f"{name} must be an integer or a string, not {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise OptionValueError(f"{name} must be a non-negative integer or a string, not {value}")
        return value
    if isinstance(value, str):
        if re.fullmatch(r"[+-]?\d+", value.strip()):
            return _w(name, int(value))
        if not value:
            raise OptionValueError(f"{name} must not be empty")
        return value
    raise OptionTypeError(f"{name} must be an integer or a string, not {value!r}")


_UUID_REPRESENTATIONS = {
    "unspecified": UuidRepresentation.UNSPECIFIED,
    "standard": UuidRepresentation.STANDARD,
    "pythonlegacy": UuidRepresentation.PYTHON_LEGACY,
    "javalegacy": UuidRepresentation.JAVA_LEGACY,
    "csharplegacy": UuidRepresentation.CSHARP_LEGACY,
}


def _uuid_representation(name: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if value in _UUID_REPRESENTATIONS.values():
            return value
        raise OptionValueError(f"{name} {value!r} is not a valid UuidRepresentation")
    value = _string(name, value)
    try:
        return _UUID_REPRESENTATIONS[value.lower()]
    except KeyError:
        raise OptionValueError(
            f"{name} must be one of unspecified, standard, pythonLegacy, javaLegacy, csharpLegacy; not {value!r}"
        ) from None


_UNICODE_HANDLERS = (
    "strict",
    "replace",
    "backslashreplace",
    "surrogateescape",
    "ignore",
)


def _unicode_decode_error_handler(name: str, value: Any) -> str:
    text = _string(name, value)
    if text not in _UNICODE_HANDLERS:
        raise OptionValueError(f"{name} must be one of {_UNICODE_HANDLERS}, not {text!r}")
    return text


def _datetime_conversion(name: str, value: Any) -> Optional[DatetimeConversion]:
    if value is None:
        return None
    if isinstance(value, DatetimeConversion):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return DatetimeConversion(value)
        except ValueError:
            raise OptionValueError(f"{name} {value!r} is not a valid DatetimeConversion") from None
    value = _string(name, value)
    try:
        return DatetimeConversion[value.upper()]
    except KeyError:
        raise OptionValueError(f"{name} must be one of {list(DatetimeConversion.__members__)}, not {value!r}") from None


def _srv_service_name(name: str, value: Any) -> str:
    text = _nonempty_string(name, value)
    if len(text) > 62 or not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", text):
        raise OptionValueError(f"{name} {text!r} is not a valid SRV service name")
    return text


def _document_class(name: str, value: Any) -> type:
    from bson.raw_bson import RawBSONDocument

    if isinstance(value, type) and (issubclass(value, abc.MutableMapping) or issubclass(value, RawBSONDocument)):
        return value
    raise OptionTypeError(
        f"{name} must be dict, bson.son.SON, bson.raw_bson.RawBSONDocument, or a subclass of "
        "collections.MutableMapping"
    )


def _type_registry(name: str, value: Any) -> Optional[TypeRegistry]:
    if value is None or isinstance(value, TypeRegistry):
        return value
    raise OptionTypeError(f"{name} must be an instance of bson.codec_options.TypeRegistry")


def _tzinfo(name: str, value: Any) -> Optional[datetime.tzinfo]:
    if value is None or isinstance(value, datetime.tzinfo):
        return value
    raise OptionTypeError(f"{name} must be an instance of datetime.tzinfo")


def _event_listeners(name: str, value: Any) -> List[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, abc.Iterable):
        raise OptionTypeError(f"{name} must be a list or tuple of listeners")
    from pymongo import monitoring

    listeners = list(value)
    for listener in listeners:
        if not isinstance(listener, monitoring._EventListener):
            raise OptionTypeError(f"Listeners for {name} must be subclasses of pymongo.monitoring's listener classes, not {listener!r}")
    return listeners


def _read_preference_obj(name: str, value: Any) -> _ServerMode:
    if isinstance(value, _ServerMode):
        return value
    raise OptionTypeError(f"{name} must be an instance of a pymongo.read_preferences class, not {value!r}")


def _callable_or_none(name: str, value: Any) -> Any:
    if value is None or callable(value):
        return value
    raise OptionTypeError(f"{name} must be a callable")


def _driver_info(name: str, value: Any) -> Any:
    from pymongo.driver_info import DriverInfo

    if value is None or isinstance(value, DriverInfo):
        return value
    raise OptionTypeError(f"{name} must be an instance of pymongo.driver_info.DriverInfo")


def _server_api(name: str, value: Any) -> Any:
    from pymongo.server_api import ServerApi

    if value is None or isinstance(value, ServerApi):
        return value
    raise OptionTypeError(f"{name} must be an instance of pymongo.server_api.ServerApi")


_TRACING_KEYS = frozenset({"enabled", "query_text_max_length", "tracer_provider"})


def _tracing(name: str, value: Any) -> Optional[Dict[str, Any]]:
    """Check the ``tracing`` client option: a mapping with ``enabled`` (bool),
    ``query_text_max_length`` (int >= 0) and ``tracer_provider`` (an OpenTelemetry
    TracerProvider; default: the global one). What they do: :mod:`amongo.tracing`."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict, not {value!r}")
    unknown = set(value) - _TRACING_KEYS
    if unknown:
        raise ConfigurationError(f"Unknown {name} option(s): {sorted(unknown)}; valid: {sorted(_TRACING_KEYS)}")
    enabled = value.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"{name}['enabled'] must be True or False, not {enabled!r}")
    length = value.get("query_text_max_length")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 0):
        raise ValueError(f"{name}['query_text_max_length'] must be an integer >= 0, not {length!r}")
    return dict(value)


def _hedge(name: str, value: Any) -> Optional[Dict[str, Any]]:
    if value is None or isinstance(value, abc.Mapping):
        return None if value is None else dict(value)
    raise OptionTypeError(f"{name} must be a mapping or None")


def _any(name: str, value: Any) -> Any:
    return value


# (canonical name, validator, accepted in a URI?)
_OPTION_TABLE: Tuple[Tuple[str, Callable[[str, Any], Any], bool], ...] = (
    # -- connection-string / uri-options spec --
    ("appname", _appname, True),
    ("authMechanism", _auth_mechanism, True),
    ("authMechanismProperties", _auth_mechanism_properties, True),
    ("authSource", _nonempty_string, True),
    ("compressors", _compressors, True),
    ("connectTimeoutMS", _ms(none_ok=True), True),
    ("directConnection", _bool, True),
    ("heartbeatFrequencyMS", _ms(exclusive=True), True),
    ("journal", _bool, True),
    ("loadBalanced", _bool, True),
    ("localThresholdMS", _ms(), True),
    ("maxIdleTimeMS", _ms(none_ok=True), True),
    ("maxPoolSize", _int_range(0, none_ok=True), True),
    ("minPoolSize", _int_range(0), True),
    ("maxConnecting", _int_range(1), True),
    ("maxStalenessSeconds", _max_staleness, True),
    ("readConcernLevel", _string_or_none, True),
    ("readPreference", _choice("primary", "primaryPreferred", "secondary", "secondaryPreferred", "nearest"), True),
    ("readPreferenceTags", _read_preference_tags, True),
    ("replicaSet", _nonempty_string_or_none, True),
    ("retryReads", _bool, True),
    ("retryWrites", _bool, True),
    ("serverMonitoringMode", _choice("auto", "stream", "poll"), True),
    ("serverSelectionTimeoutMS", _ms(), True),
    ("socketTimeoutMS", _ms(none_ok=True), True),
    ("srvMaxHosts", _int_range(0), True),
    ("srvServiceName", _srv_service_name, True),
    ("timeoutMS", _ms(none_ok=True), True),
    ("tls", _bool, True),
    ("tlsAllowInvalidCertificates", _bool, True),
    ("tlsAllowInvalidHostnames", _bool, True),
    ("tlsCAFile", _nonempty_string_or_none, True),
    ("tlsCertificateKeyFile", _nonempty_string_or_none, True),
    ("tlsCertificateKeyFilePassword", _string_or_none, True),
    ("tlsDisableCertificateRevocationCheck", _bool, True),
    ("tlsDisableOCSPEndpointCheck", _bool, True),
    ("tlsInsecure", _bool, True),
    ("w", _w, True),
    ("waitQueueTimeoutMS", _ms(exclusive=True, none_ok=True), True),
    ("wTimeoutMS", _int_range(0), True),
    ("zlibCompressionLevel", _int_range(-1, 9), True),
    ("proxyHost", _nonempty_string, True),
    ("proxyPort", _int_range(0, 65535), True),
    ("proxyUsername", _nonempty_string, True),
    ("proxyPassword", _nonempty_string, True),
    ("maxAdaptiveRetries", _int_range(0), True),
    ("enableOverloadRetargeting", _bool, True),
    # -- PyMongo options also accepted in a URI --
    ("connect", _bool, True),
    ("fsync", _bool, True),
    ("tlsCRLFile", _nonempty_string_or_none, True),
    ("tz_aware", _bool, True),
    ("uuidRepresentation", _uuid_representation, True),
    ("unicode_decode_error_handler", _unicode_decode_error_handler, True),
    ("datetime_conversion", _datetime_conversion, True),
    ("waitQueueMultiple", _int_range(0, none_ok=True), True),
    # -- keyword-argument-only options --
    ("document_class", _document_class, False),
    ("type_registry", _type_registry, False),
    ("tzinfo", _tzinfo, False),
    ("event_listeners", _event_listeners, False),
    ("read_preference", _read_preference_obj, False),
    ("username", _string_or_none, False),
    ("password", _string_or_none, False),
    ("server_selector", _callable_or_none, False),
    ("auto_encryption_opts", _any, False),
    ("driver", _driver_info, False),
    ("server_api", _server_api, False),
    ("hedge", _hedge, False),
    ("tracing", _tracing, False),
)

_VALIDATORS: Dict[str, Tuple[str, Callable[[str, Any], Any], bool]] = {
    name.lower(): (name, fn, in_uri) for name, fn, in_uri in _OPTION_TABLE
}
# Aliases: other spellings accepted for a canonical option.
_ALIASES: Dict[str, str] = {
    "ssl": "tls",
    "max_adaptive_retries": "maxAdaptiveRetries",
    "enable_overload_retargeting": "enableOverloadRetargeting",
}
# Options that may legitimately repeat in a URI (values accumulate).
_LIST_OPTIONS = frozenset({"readpreferencetags"})
# Options whose repetition in a URI is an error (SOCKS5 spec).
_NO_REPEAT_OPTIONS = frozenset({"proxyhost", "proxyport", "proxyusername", "proxypassword"})
# Options only allowed with mongodb+srv.
_SRV_ONLY = ("srvServiceName", "srvMaxHosts")
_TLS_EXCLUSIVE = (
    ("tlsInsecure", "tlsAllowInvalidCertificates"),
    ("tlsInsecure", "tlsAllowInvalidHostnames"),
    ("tlsInsecure", "tlsDisableOCSPEndpointCheck"),
    ("tlsInsecure", "tlsDisableCertificateRevocationCheck"),
    ("tlsAllowInvalidCertificates", "tlsDisableOCSPEndpointCheck"),
    ("tlsAllowInvalidCertificates", "tlsDisableCertificateRevocationCheck"),
    ("tlsDisableOCSPEndpointCheck", "tlsDisableCertificateRevocationCheck"),
)


#: Options accepted by the parser (they are in the URI-options tables) that amongo does not
#: implement: a client given one (other than at its default) raises ConfigurationError rather
#: than silently ignoring it (name, default, what is missing).
_UNIMPLEMENTED: Tuple[Tuple[str, Any, str], ...] = (
    ("auto_encryption_opts", None, "client-side field-level encryption (auto_encryption_opts)"),
    ("proxyHost", None, "connecting through a SOCKS5 proxy (proxyHost)"),
    ("server_selector", None, "a custom server_selector"),
    ("enableOverloadRetargeting", False, "enableOverloadRetargeting=true"),
)


def check_implemented(options: Mapping[str, Any]) -> None:
    """Raise :class:`~pymongo.errors.ConfigurationError` for an option amongo accepts in a
    URI or keyword but does not implement (see :data:`_UNIMPLEMENTED`); unknown options were
    already rejected by :func:`validate_options`."""
    for name, default, what in _UNIMPLEMENTED:
        if options.get(name, default) != default:
            raise ConfigurationError(f"{what} is not supported by amongo")


def canonical_option_name(name: str) -> Optional[str]:
    """The canonical spelling of option *name* (any case, aliases resolved), or None."""
    low = name.lower()
    alias = _ALIASES.get(low)
    if alias is not None:
        return alias
    entry = _VALIDATORS.get(low)
    return entry[0] if entry else None


def _problem(message: str, warn: bool, exc: Optional[BaseException] = None) -> None:
    if warn:
        warnings.warn(message, UserWarning, stacklevel=4)
        return
    if isinstance(exc, ConfigurationError):
        raise exc
    if isinstance(exc, TypeError):
        raise OptionTypeError(message) from exc
    raise OptionValueError(message) from exc


def validate_option(name: str, value: Any, *, uri: bool = False) -> Tuple[str, Any]:
    """Validate one option: return ``(canonical_name, normalised_value)``.

    :param uri: the option comes from a connection string (keyword-only options are
        then unknown).
    :raises ConfigurationError: unknown option, or invalid value (the exception is also a
        :class:`ValueError` or :class:`TypeError`, as PyMongo raises for keyword arguments).
    """
    canonical = canonical_option_name(name)
    entry = _VALIDATORS.get(canonical.lower()) if canonical else None
    if entry is None or (uri and not entry[2]):
        raise OptionValueError(f"Unknown option: {name}")
    return entry[0], entry[1](entry[0], value)


def validate_options(options: Mapping[str, Any], *, warn: bool = False) -> CaseInsensitiveDict:
    """Validate and normalise client options given as keyword arguments.

    Accepts the URI option names (any case, e.g. ``maxPoolSize``, ``serverselectiontimeoutms``,
    ``ssl``) plus the keyword-only options of ``MongoClient``/``AsyncIOMotorClient``
    (``document_class``, ``tz_aware``, ``event_listeners``, ``username``...). Also checks the
    option combinations that do not depend on the host list.

    :param warn: warn (and drop the option) instead of raising for unknown options or
        invalid values.
    :return: a :class:`CaseInsensitiveDict` keyed by canonical option names.
    """
    result = CaseInsensitiveDict()
    for name, value in options.items():
        try:
            canonical, normalised = validate_option(name, value)
        except (ConfigurationError, ValueError, TypeError) as exc:
            _problem(str(exc), warn, exc)
            continue
        if canonical == "authMechanismProperties" and canonical in result:
            merged = dict(result[canonical])
            merged.update(normalised)
            normalised = merged
        result[canonical] = normalised
    present = {k.lower() for k in options}
    _check_tls_conflicts(present, [(k.lower(), v) for k, v in options.items()])
    check_option_combinations(result)
    return result


# ---------------------------------------------------------------------------------------
# Combination checks
# ---------------------------------------------------------------------------------------


def _check_tls_conflicts(present: Iterable[str], pairs: Sequence[Tuple[str, Any]]) -> None:
    present = set(present)
    for a, b in _TLS_EXCLUSIVE:
        if a.lower() in present and b.lower() in present:
            raise InvalidURI(f"{a} and {b} must not both be specified")
    tls_values: Set[Any] = set()
    for key, value in pairs:
        if key in ("tls", "ssl"):
            try:
                tls_values.add(_bool(key, value))
            except ConfigurationError:
                tls_values.add(str(value))
    if len(tls_values) > 1:
        raise InvalidURI("All instances of tls and ssl must have the same value")


def check_option_combinations(
    options: Mapping[str, Any],
    nodes: Optional[Sequence[Address]] = None,
    *,
    is_srv: Optional[bool] = None,
    srv_max_hosts: Optional[int] = None,
) -> None:
    """Raise :class:`~pymongo.errors.ConfigurationError` for invalid option combinations.

    Checks loadBalanced, directConnection, srvMaxHosts/srvServiceName, SOCKS5 proxy,
    write concern and read preference combinations. Host-dependent checks run only when
    *nodes* is given; SRV-dependent ones only when *is_srv* is not None.
    """
    opts = options if isinstance(options, CaseInsensitiveDict) else CaseInsensitiveDict(options)
    lb = opts.get("loadBalanced")
    direct = opts.get("directConnection")
    max_hosts = srv_max_hosts if srv_max_hosts is not None else opts.get("srvMaxHosts")
    if nodes is not None:
        if direct and len(nodes) > 1:
            raise ConfigurationError("Cannot specify multiple hosts with directConnection=true")
        if lb and len(nodes) > 1:
            raise ConfigurationError("Cannot specify multiple hosts with loadBalanced=true")
    if lb:
        if direct:
            raise ConfigurationError("Cannot specify directConnection=true with loadBalanced=true")
        if opts.get("replicaSet"):
            raise ConfigurationError("Cannot specify replicaSet with loadBalanced=true")
    if is_srv is not None:
        if not is_srv:
            for name in _SRV_ONLY:
                if name in opts:
                    raise ConfigurationError(f"The {name} option is only allowed with 'mongodb+srv://' URIs")
        else:
            if direct:
                raise ConfigurationError("Cannot specify directConnection=true with 'mongodb+srv://' URIs")
    if max_hosts:
        if opts.get("replicaSet"):
            raise ConfigurationError("Cannot specify replicaSet with srvMaxHosts")
        if lb:
            raise ConfigurationError("Cannot specify loadBalanced=true with srvMaxHosts")
    # SOCKS5 proxy.
    if "proxyHost" not in opts:
        for name in ("proxyPort", "proxyUsername", "proxyPassword"):
            if name in opts:
                raise ConfigurationError(f"{name} requires proxyHost")
    if ("proxyUsername" in opts) != ("proxyPassword" in opts):
        raise ConfigurationError("proxyUsername and proxyPassword must be given together")
    # Write concern.
    if opts.get("w") == 0 and opts.get("journal"):
        raise ConfigurationError("Cannot set w=0 with journal=true (an acknowledged write concern)")
    if opts.get("w") == 0 and opts.get("fsync"):
        raise ConfigurationError("Cannot set w=0 with fsync=true")
    # Read preference.
    mode = opts.get("readPreference")
    if mode == "primary":
        tags = opts.get("readPreferenceTags")
        if tags and tags != [{}]:
            raise ConfigurationError("Read preference primary cannot be combined with tags")
        staleness = opts.get("maxStalenessSeconds")
        if staleness is not None and staleness != -1:
            raise ConfigurationError("Read preference primary cannot be combined with maxStalenessSeconds")


# ---------------------------------------------------------------------------------------
# Connection string parsing
# ---------------------------------------------------------------------------------------

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_USERINFO_RESERVED = re.compile(r"[:/?#\[\]@]")
_BAD_DB_CHARS = re.compile(r'[/ "$\\]')


_USERINFO_ESCAPE_MESSAGE = (
    "Username and password must be percent-escaped (RFC 3986): ':', '/', '?', '#', '[', ']' "
    "and '@' are reserved"
)


def _unquote(text: str, what: str, *, secret: bool = False) -> str:
    # (never echo a password or a secret option, nor the user info or options a host
    # string may carry)
    shown = "" if what == "password" or secret else f": {(_shown(text) if what == 'host' else text)!r}"
    if _BAD_ESCAPE.search(text):
        raise InvalidURI(f"Invalid percent-escape in {what}{shown}")
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise InvalidURI(f"Invalid percent-escape in {what} (not UTF-8){shown}") from None


def is_unix_socket(host: str) -> bool:
    """True if *host* (as in a node address) names a Unix domain socket path."""
    return "/" in host and host.endswith(".sock")


def _shown(entity: str) -> str:
    """*entity* for an error message: anything up to an ``@`` may be user info and anything
    after a ``?`` options (a host string such as ``user:password@host/?proxyPassword=...``
    given without a scheme): both are redacted."""
    if "@" in entity:
        entity = REDACTED + "@" + entity.rsplit("@", 1)[1]
    if "?" in entity:
        entity = entity.split("?", 1)[0] + "?" + REDACTED
    return entity


def parse_host(entity: str, default_port: int = DEFAULT_PORT) -> Address:
    """Parse one host identifier of a connection string into ``(host, port)``.

    Handles ``host``, ``host:port``, ``[ipv6]``, ``[ipv6]:port`` and percent-encoded Unix
    domain socket paths (ending in ``.sock``; their "port" is *default_port*).
    Hostnames are lower-cased.

    :raises InvalidURI: malformed host or port.
    """
    if not entity:
        raise InvalidURI("Empty host (or extra comma in host list)")
    host = entity
    port: Any = default_port
    if entity.startswith("["):
        end = entity.find("]")
        if end == -1:
            raise InvalidURI(f"An IPv6 address must be enclosed in '[' and ']': {_shown(entity)!r}")
        host = entity[1:end]
        rest = entity[end + 1 :]
        if not host:
            raise InvalidURI(f"Empty IP literal: {_shown(entity)!r}")
        if rest:
            if not rest.startswith(":"):
                raise InvalidURI(f"Invalid host: {_shown(entity)!r}")
            port = rest[1:]
        if "%" in host and not _BAD_ESCAPE.search(host):
            host = unquote(host)  # zone id, e.g. fe80::1%25eth0
        return host.lower(), _port(port, entity)
    if "%" in entity:
        decoded = _unquote(entity, "host")
        if is_unix_socket(decoded):
            return decoded, default_port
        host = decoded
    elif entity.endswith(".sock") and "/" in entity:
        raise InvalidURI(f"A Unix domain socket path must be percent-encoded: {_shown(entity)!r}")
    if host.count(":") > 1:
        raise InvalidURI(f"Reserved characters such as ':' must be escaped, or an IPv6 address enclosed in '[]': {_shown(entity)!r}")
    if ":" in host:
        host, _, port = host.partition(":")
    if not host:
        raise InvalidURI(f"Empty host in {_shown(entity)!r}")
    if re.search(r"[/?#\[\]@\s]", host):
        raise InvalidURI(f"Invalid host: {_shown(entity)!r}")
    return host.lower(), _port(port, entity)


def _port(port: Any, entity: str) -> int:
    if isinstance(port, int):
        return port
    if not port.isdigit() or not (0 < int(port) <= 65535):
        raise InvalidURI(f"Port must be an integer between 1 and 65535: {_shown(entity)!r}")
    return int(port)


def split_options(query: str) -> List[Tuple[str, str]]:
    """Split a query string into ``(key, percent-decoded value)`` pairs, in order.

    Pairs are separated by ``&`` (or ``;`` when there is no ``&``, as PyMongo accepts).

    :raises InvalidURI: a pair without ``=`` or an empty key, mixed separators, bad escape.
    """
    if not query:
        return []
    if "&" in query and ";" in query:
        # ';' may appear inside a value only if percent-encoded.
        raise InvalidURI("Cannot mix '&' and ';' as option separators")
    sep = ";" if ";" in query and "&" not in query else "&"
    pairs: List[Tuple[str, str]] = []
    for item in query.split(sep):
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise InvalidURI(f"MongoDB URI options are key=value pairs, not {item!r}")
        low = key.lower()
        secret = low in SENSITIVE_OPTIONS or low == "authmechanismproperties"
        pairs.append((_unquote(key, "option name"), _unquote(value, f"option {key}", secret=secret)))
    return pairs


class ParsedUri:
    """The parts of a connection string (immutable).

    :ivar nodelist: ``[(host, port), ...]``; empty for an unresolved ``mongodb+srv`` URI.
    :ivar username: percent-decoded user name, or None.
    :ivar password: percent-decoded password (``""`` if given empty), or None.
    :ivar database: the default/auth database (the part before the first ``.``), or None.
    :ivar collection: the part after the first ``.`` of the path (PyMongo compatibility).
    :ivar options: normalised options (:class:`CaseInsensitiveDict`).
    :ivar fqdn: the SRV host name for ``mongodb+srv``, else None.
    :ivar is_srv: whether the scheme is ``mongodb+srv``.
    """

    __slots__ = ("nodelist", "username", "password", "database", "collection", "options", "fqdn", "is_srv")

    nodelist: List[Address]
    username: Optional[str]
    password: Optional[str]
    database: Optional[str]
    collection: Optional[str]
    options: CaseInsensitiveDict
    fqdn: Optional[str]
    is_srv: bool

    def __init__(
        self,
        nodelist: List[Address],
        username: Optional[str],
        password: Optional[str],
        database: Optional[str],
        collection: Optional[str],
        options: CaseInsensitiveDict,
        fqdn: Optional[str] = None,
        is_srv: bool = False,
    ) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "nodelist", list(nodelist))
        setattr_(self, "username", username)
        setattr_(self, "password", password)
        setattr_(self, "database", database)
        setattr_(self, "collection", collection)
        setattr_(self, "options", options)
        setattr_(self, "fqdn", fqdn)
        setattr_(self, "is_srv", is_srv)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("ParsedUri is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("ParsedUri is immutable")

    @property
    def auth_database(self) -> Optional[str]:
        """The whole path component (``db`` or ``db.collection``), as the spec defines it."""
        if self.database is None:
            return None
        return self.database if self.collection is None else f"{self.database}.{self.collection}"

    def replace(self, **changes: Any) -> "ParsedUri":
        """A copy with some fields replaced."""
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields.update(changes)
        return ParsedUri(**fields)

    def _astuple(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, n) for n in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParsedUri):
            return NotImplemented
        return self._astuple() == other._astuple()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        opts = redacted_options(self.options)
        return (
            f"ParsedUri(nodelist={self.nodelist!r}, username={self.username!r}, "
            f"password={'<redacted>' if self.password is not None else None}, "
            f"database={self.database!r}, collection={self.collection!r}, options={opts!r}, "
            f"fqdn={self.fqdn!r}, is_srv={self.is_srv!r})"
        )


def _options_from_pairs(
    pairs: Sequence[Tuple[str, str]], *, validate: bool, warn: bool
) -> CaseInsensitiveDict:
    options = CaseInsensitiveDict()
    seen: Dict[str, str] = {}
    for key, value in pairs:
        low = key.lower()
        canonical = canonical_option_name(key)
        entry = _VALIDATORS.get(canonical.lower()) if canonical else None
        if canonical is not None and entry is not None and not entry[2]:
            entry = None  # keyword-only option given in a URI
        ckey = canonical.lower() if canonical else low
        if ckey in seen and ckey not in _LIST_OPTIONS:
            if ckey in _NO_REPEAT_OPTIONS:
                raise InvalidURI(f"Option {key} must not be repeated")
            if ckey != "tls":  # tls/ssl repetitions are checked for consistency instead
                warnings.warn(f"Duplicate URI option {key!r}; the last value is used", UserWarning, stacklevel=3)
        seen[ckey] = key
        if not validate:
            name = canonical or key
            if ckey in _LIST_OPTIONS:
                options.setdefault(name, []).append(value)
            else:
                options[name] = value
            continue
        if entry is None:
            _problem(f"Unknown option: {key}", warn)
            continue
        name, fn, _ = entry
        try:
            normalised = fn(name, value)
        except (ConfigurationError, ValueError, TypeError) as exc:
            _problem(f"Invalid value for URI option {key}: {exc}", warn, exc)
            continue
        if ckey in _LIST_OPTIONS and name in options:
            options[name] = options[name] + normalised
        else:
            options[name] = normalised
    return options


def parse_uri(
    uri: str,
    default_port: int = DEFAULT_PORT,
    *,
    validate: bool = True,
    warn: bool = False,
    srv_max_hosts: Optional[int] = None,
) -> ParsedUri:
    """Parse a MongoDB connection string (``mongodb://`` or ``mongodb+srv://``).

    Does no DNS: for ``mongodb+srv`` the result has ``is_srv=True``, ``fqdn`` set and an
    empty ``nodelist``; resolve with :func:`amongo.srv.resolve_srv` and merge with
    :func:`amongo.srv.apply_srv`.

    :param default_port: port for hosts without one.
    :param validate: validate and normalise option values and check their combinations
        (when False, option values stay strings).
    :param warn: warn about (and ignore) unknown options and invalid values instead of
        raising.
    :param srv_max_hosts: an ``srvMaxHosts`` given outside the URI (keyword argument),
        used for the combination checks.
    :raises InvalidURI: malformed connection string.
    :raises ConfigurationError: invalid option value (unless *warn*) or combination.
    """
    if not isinstance(uri, str):
        raise InvalidURI(f"The connection string must be a str, not {type(uri).__name__}")
    if uri.startswith(SCHEME):
        is_srv = False
        rest = uri[len(SCHEME) :]
    elif uri.startswith(SRV_SCHEME):
        is_srv = True
        rest = uri[len(SRV_SCHEME) :]
    else:
        raise InvalidURI(f"Invalid URI scheme: the connection string must begin with {SCHEME!r} or {SRV_SCHEME!r}")
    if not rest:
        raise InvalidURI("Must provide at least one hostname or IP")

    # Host information ends at the first '/' or '?'.
    cut = len(rest)
    for ch in "/?":
        idx = rest.find(ch)
        if idx != -1 and idx < cut:
            cut = idx
    host_info, tail = rest[:cut], rest[cut:]
    if "#" in tail or "#" in host_info:
        raise InvalidURI("'#' must be percent-encoded in a connection string")
    path, query = "", ""
    if tail.startswith("/"):
        path, _, query = tail[1:].partition("?")
    elif tail.startswith("?"):
        query = tail[1:]

    username: Optional[str] = None
    password: Optional[str] = None
    at = tail.find("@")
    if "@" not in host_info and at != -1 and "=" not in tail[:at]:
        # An unescaped '/' or '?' in the user information cut it short: say so without
        # echoing any part of it (it may be the password).
        raise InvalidURI(_USERINFO_ESCAPE_MESSAGE)
    if "@" in host_info:
        userinfo, _, host_info = host_info.rpartition("@")
        user_raw, colon, pass_raw = userinfo.partition(":")
        for part in (user_raw, pass_raw):
            if _USERINFO_RESERVED.search(part):
                raise InvalidURI(_USERINFO_ESCAPE_MESSAGE)
        username = _unquote(user_raw, "username")
        if not username:
            raise InvalidURI("The empty string is not a valid username")
        password = _unquote(pass_raw, "password") if colon else None

    if not host_info:
        raise InvalidURI("Must provide at least one hostname or IP")
    entities = host_info.split(",")
    fqdn: Optional[str] = None
    nodes: List[Address] = []
    if is_srv:
        if len(entities) != 1:
            raise InvalidURI(f"{SRV_SCHEME} URIs must include exactly one hostname")
        entity = entities[0]
        if entity.startswith("[") or "%" in entity:
            raise InvalidURI(f"{SRV_SCHEME} URIs must include a hostname, not an IP literal or socket path")
        if ":" in entity:
            raise InvalidURI(f"{SRV_SCHEME} URIs must not include a port number")
        host, _ = parse_host(entity, default_port)
        fqdn = host.rstrip(".")
        if not fqdn or "." in fqdn and any(not label for label in fqdn.split(".")):
            raise InvalidURI(f"Invalid SRV host name: {entity!r}")
    else:
        nodes = [parse_host(e, default_port) for e in entities]

    database: Optional[str] = None
    collection: Optional[str] = None
    if path:
        dbase = _unquote(path, "database name")
        if "." in dbase:
            dbase, collection = dbase.split(".", 1)
        if not dbase or _BAD_DB_CHARS.search(dbase):
            raise InvalidURI(f"Bad database name {dbase!r}")
        database = dbase

    pairs = split_options(query)
    options = _options_from_pairs(pairs, validate=validate, warn=warn)
    if validate:
        _check_tls_conflicts([k.lower() for k, _ in pairs], [(k.lower(), v) for k, v in pairs])
        check_option_combinations(
            options, nodes if not is_srv else None, is_srv=is_srv, srv_max_hosts=srv_max_hosts
        )
    return ParsedUri(nodes, username, password, database, collection, options, fqdn, is_srv)


# ---------------------------------------------------------------------------------------
# Value types from normalised options
# ---------------------------------------------------------------------------------------

_MODES: Dict[str, Callable[..., _ServerMode]] = {
    "primary": Primary,
    "primaryPreferred": PrimaryPreferred,
    "secondary": Secondary,
    "secondaryPreferred": SecondaryPreferred,
    "nearest": Nearest,
}


def _ci(options: Mapping[str, Any]) -> CaseInsensitiveDict:
    return options if isinstance(options, CaseInsensitiveDict) else CaseInsensitiveDict(options)


def read_preference_from(options: Mapping[str, Any]) -> _ServerMode:
    """Build a :mod:`pymongo.read_preferences` object from normalised options.

    Uses ``read_preference`` (an object, keyword argument) if present, else
    ``readPreference`` with ``readPreferenceTags``, ``maxStalenessSeconds`` and ``hedge``.
    Defaults to ``Primary()``.

    :raises ConfigurationError: tags/maxStalenessSeconds/hedge with mode primary.
    """
    opts = _ci(options)
    obj: Optional[_ServerMode] = opts.get("read_preference")
    if obj is not None:
        return obj
    mode = opts.get("readPreference", "primary")
    tags = opts.get("readPreferenceTags")
    staleness = opts.get("maxStalenessSeconds", -1)
    hedge = opts.get("hedge")
    if mode == "primary":
        if (tags and tags != [{}]) or staleness != -1 or hedge:
            raise ConfigurationError("Read preference primary cannot be combined with tags, maxStalenessSeconds or hedge")
        return Primary()
    kwargs: Dict[str, Any] = {"tag_sets": tags or None, "max_staleness": staleness}
    if hedge is not None:
        kwargs["hedge"] = hedge
    with warnings.catch_warnings():
        # PyMongo deprecates hedge; the caller asked for it explicitly.
        warnings.simplefilter("ignore", DeprecationWarning)
        return _MODES[mode](**kwargs)


def write_concern_from(options: Mapping[str, Any]) -> WriteConcern:
    """Build a :class:`~pymongo.write_concern.WriteConcern` from ``w``, ``wTimeoutMS``,
    ``journal`` and ``fsync`` (an unset option is left out of the write concern)."""
    opts = _ci(options)
    w = opts.get("w")
    wtimeout = opts.get("wTimeoutMS")
    j = opts.get("journal")
    fsync = opts.get("fsync")
    if w == 0 and (j or fsync):
        raise ConfigurationError("Cannot set w=0 with journal=true or fsync=true")
    try:
        return WriteConcern(w=w, wtimeout=wtimeout, j=j, fsync=fsync)
    except (TypeError, ValueError) as exc:
        raise OptionValueError(str(exc)) from exc


def read_concern_from(options: Mapping[str, Any]) -> ReadConcern:
    """Build a :class:`~pymongo.read_concern.ReadConcern` from ``readConcernLevel``."""
    return ReadConcern(_ci(options).get("readConcernLevel"))


def codec_options_from(options: Mapping[str, Any]) -> "CodecOptions[Any]":
    """Build :class:`~bson.codec_options.CodecOptions` from ``document_class``, ``tz_aware``,
    ``uuidRepresentation``, ``unicode_decode_error_handler``, ``tzinfo``, ``type_registry``
    and ``datetime_conversion``."""
    opts = _ci(options)
    kwargs: Dict[str, Any] = {
        "document_class": opts.get("document_class", dict),
        "tz_aware": opts.get("tz_aware", False),
        "uuid_representation": opts.get("uuidRepresentation", UuidRepresentation.UNSPECIFIED),
        "unicode_decode_error_handler": opts.get("unicode_decode_error_handler", "strict"),
        "tzinfo": opts.get("tzinfo"),
        "type_registry": opts.get("type_registry"),
    }
    conversion = opts.get("datetime_conversion")
    if conversion is not None:
        kwargs["datetime_conversion"] = conversion
    return CodecOptions(**kwargs)
