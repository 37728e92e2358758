"""Issue 11, defect 6 (pure side): no credential or token in any repr/str, error or warning.

The secrets are passed as keyword arguments and in URIs; every repr of the client, its
options, its credential and the parsed URI, and every error or warning raised for a
malformed URI, is searched for them.
"""
from __future__ import annotations

import warnings
from typing import Any, List

import pytest
from pymongo.errors import ConfigurationError, InvalidURI

from amongo import uri as _uri
from amongo.client import MongoClient

SECRET = "Sup3rS3cret"
TOKEN = "T0kenV4lue"


def _texts(*objs: Any) -> str:
    return "\n".join(f"{o!r}\n{o!s}" for o in objs)


def test_keyword_password_not_in_client_reprs() -> None:
    client = MongoClient(
        "mongodb://127.0.0.1:1/", connect=False, username="alice", password=SECRET,
        tlsCertificateKeyFilePassword=SECRET + "1", proxyHost="proxy.example", proxyPassword=SECRET + "2",
        proxyUsername="p",
    )
    try:
        shown = _texts(client, client.options, client._credential, client.topology_description,
                       client._connection_options, client._topology.settings.connection_options.credential)
        assert SECRET not in shown
        assert "<redacted>" in repr(client.options)
        assert client.options["password"] == SECRET  # still readable on purpose
    finally:
        client.close()


def test_uri_password_and_token_not_in_reprs() -> None:
    uri = (
        f"mongodb://alice:{SECRET}@127.0.0.1:1/?authMechanism=MONGODB-AWS"
        f"&authMechanismProperties=AWS_SESSION_TOKEN:{TOKEN}&tlsCertificateKeyFilePassword={SECRET}"
    )
    parsed = _uri.parse_uri(uri)
    assert SECRET not in repr(parsed) and TOKEN not in repr(parsed)
    assert TOKEN not in repr(parsed.options)
    # (MONGODB-AWS credentials belong in keywords: the URI form is deprecated)
    client = MongoClient(
        uri.replace(f"alice:{SECRET}@", ""), connect=False, username="AKIDEXAMPLE", password=SECRET
    )
    try:
        shown = _texts(client, client.options, client._credential)
        assert SECRET not in shown and TOKEN not in shown
    finally:
        client.close()


@pytest.mark.parametrize(
    "uri",
    [
        f"mongodb://alice:{SECRET}/x@127.0.0.1:1/",  # unescaped '/' in the password
        f"mongodb://alice:{SECRET}?x@127.0.0.1:1/",  # unescaped '?'
        f"mongodb://alice:{SECRET}%zz@127.0.0.1:1/",  # a bad percent-escape
        f"mongodb://alice:{SECRET}%ff@127.0.0.1:1/",  # percent-escapes that are not UTF-8
        f"mongodb://alice:{SECRET}:x@127.0.0.1:1/",  # a second ':'
        f"mongodb://alice:{SECRET}[@127.0.0.1:1/",
    ],
)
def test_malformed_uri_errors_never_echo_the_password(uri: str) -> None:
    with pytest.raises((InvalidURI, ConfigurationError)) as info:
        MongoClient(uri, connect=False)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


@pytest.mark.parametrize(
    "props",
    [TOKEN, f"AWS_SESSION_TOKEN{TOKEN}", f"AWS_SESSION_TOKEN:{TOKEN},{TOKEN}", f"{TOKEN}:x"],
)
def test_malformed_mechanism_properties_never_echo_a_token(props: str) -> None:
    uri = f"mongodb://a:b@127.0.0.1:1/?authMechanism=MONGODB-AWS&authMechanismProperties={props}"
    caught: List[str] = []
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            MongoClient(uri, connect=False).close()
        except (ConfigurationError, ValueError) as exc:
            caught.append(f"{exc!s} {exc!r}")
    caught.extend(str(w.message) for w in record)
    assert caught, "the malformed value was neither refused nor warned about"
    assert all(TOKEN not in text for text in caught), caught
    with pytest.raises(ConfigurationError) as info:
        _uri.validate_option("authMechanismProperties", props)
    assert TOKEN not in str(info.value)


def test_bad_tls_key_password_is_a_configuration_error_without_the_password(tmp_path: Any) -> None:
    import sys
    import os

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from servers import make_tls_files

    files = make_tls_files(tmp_path)
    with pytest.raises(ConfigurationError) as info:
        MongoClient(
            "mongodb://127.0.0.1:1/", connect=False, tls=True, tlsCAFile=files["ca"],
            tlsCertificateKeyFile=os.path.join(tmp_path, "missing.pem"), tlsCertificateKeyFilePassword=SECRET,
        )
    assert SECRET not in str(info.value)
