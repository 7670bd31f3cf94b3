"""Kafka client settings for secured clusters: from a properties file and the environment, to
both client libraries, never into a log.

Sources, later ones winning: a Java-style properties file (``--kafka-config FILE``: ``key=value``
or ``key: value`` lines, ``#`` / ``!`` comments), then ``DRIFTFLOW_KAFKA_<NAME>`` environment
variables (``DRIFTFLOW_KAFKA_SECURITY_PROTOCOL`` -> ``security.protocol``). Names are librdkafka's
(what confluent-kafka takes as given); kafka-python gets the same settings under its own keyword
names. A name outside `SUPPORTED` is refused with a one-line `KafkaConfigError`, so a misspelt
``sasl.pasword`` fails at start instead of connecting without it.

Secrets (`SECRET_NAMES`) are held in the settings object but never shown: its ``repr`` and
``str`` write ``'***'`` for them, and no error message quotes a value of one.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "DRIFTFLOW_KAFKA_"
# DRIFTFLOW_KAFKA_* variables that are the project's own settings, not client properties.
PROJECT_ENV = frozenset({"BOOTSTRAP", "CONFIG", "PORT", "CONTROLLER_PORT", "STATE", "VERSION",
                         "HEAP", "KEEP", "START_TIMEOUT", "TIMEOUT", "BROKER_PASSWORD"})
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# Mechanisms both clients speak with a username and password; GSSAPI and OAUTHBEARER need
# client-specific setup (Kerberos libraries, token callbacks) that driftflow does not wire.
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SECRET_NAMES = frozenset({"sasl.password", "ssl.key.password"})
# Settings driftflow makes itself, per client: refused here so a file cannot silently fight them.
OWNED = {"bootstrap.servers": "use --bootstrap", "group.id": "use --group-id",
         "client.id": "set per client by driftflow", "transactional.id": "use --exactly-once",
         "enable.auto.commit": "offsets are committed at checkpoints",
         "isolation.level": "set by --exactly-once"}
REDACTED = "***"


class KafkaConfigError(ValueError):
    """Client settings that cannot be used; one line, never holding a secret's value."""


class KafkaUnavailable(RuntimeError):
    """The broker cannot be reached, or refuses the client; the message is one line."""


def _text(value: str) -> str:
    return value


def _upper_choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value.upper() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value.upper()
    return check


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive integer")
    return number


def _hostname_check(value: str) -> bool:
    """librdkafka's ``https`` / ``none`` as kafka-python's ``ssl_check_hostname``."""
    if value.lower() not in ("https", "none"):
        raise ValueError("must be https or none")
    return value.lower() == "https"


# librdkafka name -> (kafka-python keyword, parse: text -> kafka-python value)
SUPPORTED: dict[str, tuple[str, Callable[[str], Any]]] = {
    "security.protocol": ("security_protocol", _upper_choice(SECURITY_PROTOCOLS)),
    "sasl.mechanism": ("sasl_mechanism", _upper_choice(SASL_MECHANISMS)),
    "sasl.username": ("sasl_plain_username", _text),
    "sasl.password": ("sasl_plain_password", _text),
    "ssl.ca.location": ("ssl_cafile", _text),
    "ssl.certificate.location": ("ssl_certfile", _text),
    "ssl.key.location": ("ssl_keyfile", _text),
    "ssl.key.password": ("ssl_password", _text),
    "ssl.crl.location": ("ssl_crlfile", _text),
    "ssl.cipher.suites": ("ssl_ciphers", _text),
    "ssl.endpoint.identification.algorithm": ("ssl_check_hostname", _hostname_check),
    "socket.connection.setup.timeout.ms": ("socket_connection_timeout_ms", _positive_int),
    "connections.max.idle.ms": ("connections_max_idle_ms", _positive_int),
    "reconnect.backoff.ms": ("reconnect_backoff_ms", _positive_int),
    "reconnect.backoff.max.ms": ("reconnect_backoff_max_ms", _positive_int),
    "metadata.max.age.ms": ("metadata_max_age_ms", _positive_int),
}
ALIASES = {"sasl.mechanisms": "sasl.mechanism"}   # librdkafka accepts both spellings
JAVA_HINTS = {"sasl.jaas.config": "give sasl.username and sasl.password instead",
              "ssl.truststore.location": "give ssl.ca.location (a PEM file) instead",
              "ssl.keystore.location": "give ssl.certificate.location and ssl.key.location "
                                       "(PEM files) instead"}
_PATH_NAMES = ("ssl.ca.location", "ssl.certificate.location", "ssl.key.location",
               "ssl.crl.location")


@dataclass(frozen=True)
class KafkaClientConfig:
    """Validated client settings (librdkafka names, text values as given), passed to every
    Kafka client driftflow opens. Picklable (it travels to the Ray actors inside `KafkaJob`);
    its repr never shows a secret."""

    settings: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name, value in self.settings:
            _check(name, value)
        protocol = dict(self.settings).get("security.protocol", "PLAINTEXT").upper()
        names = {name for name, _ in self.settings}
        if protocol.startswith("SASL") and not {"sasl.username", "sasl.password"} <= names:
            raise KafkaConfigError(f"security.protocol={protocol} needs sasl.username and "
                                   f"sasl.password")
        sasl = sorted(name for name in names if name.startswith("sasl."))
        if sasl and not protocol.startswith("SASL"):
            raise KafkaConfigError(f"{sasl[0]} is set but security.protocol is {protocol} "
                                   f"(use SASL_PLAINTEXT or SASL_SSL)")

    @classmethod
    def load(cls, path: str | None = None,
             environ: Mapping[str, str] | None = None) -> KafkaClientConfig:
        """Settings from the properties file ``path`` (if any), overridden by the
        ``DRIFTFLOW_KAFKA_*`` variables of ``environ`` (default: this process's)."""
        merged: dict[str, tuple[str, str]] = {}   # name -> (value, where it was set)
        if path:
            merged.update((ALIASES.get(k, k), (v, path)) for k, v in read_properties(path).items())
        env = os.environ if environ is None else environ
        merged.update((ALIASES.get(k, k), (v, var))
                      for var, (k, v) in from_environment(env).items())
        for name, (value, where) in merged.items():
            try:
                _check(name, value)
            except KafkaConfigError as exc:
                raise KafkaConfigError(f"{where}: {exc}") from None
        return cls(tuple(sorted((name, value) for name, (value, _) in merged.items())))

    def confluent(self) -> dict[str, str]:
        """For confluent-kafka (librdkafka): the names and values as given."""
        return dict(self.settings)

    def kafka_python(self) -> dict[str, Any]:
        """For kafka-python: its keyword names and value types."""
        return {SUPPORTED[name][0]: SUPPORTED[name][1](value) for name, value in self.settings}

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={REDACTED if name in SECRET_NAMES else value!r}"
                          for name, value in self.settings)
        return f"KafkaClientConfig({shown})"

    __str__ = __repr__


NO_CONFIG = KafkaClientConfig()   # a plain (unsecured) cluster; immutable, so shared


def _check(name: str, value: str) -> None:
    """Refuse an unknown, project-owned or malformed setting (one line, no secret value)."""
    if name in OWNED:
        raise KafkaConfigError(f"Kafka client setting {name!r} is driftflow's own: {OWNED[name]}")
    if name in JAVA_HINTS:
        raise KafkaConfigError(f"{name!r} is a Java client setting: {JAVA_HINTS[name]}")
    if name not in SUPPORTED:
        raise KafkaConfigError(f"unknown or unsupported Kafka client setting {name!r} "
                               f"(supported: {', '.join(sorted(SUPPORTED))})")
    shown = REDACTED if name in SECRET_NAMES else repr(value)
    try:
        SUPPORTED[name][1](value)
    except ValueError as exc:
        reason = str(exc) if str(exc).startswith("must") else "is not valid"
        raise KafkaConfigError(f"Kafka client setting {name}={shown} {reason}") from None
    if name in _PATH_NAMES and not Path(value).is_file():
        raise KafkaConfigError(f"Kafka client setting {name}: no such file {value!r}")


def read_properties(path: str) -> dict[str, str]:
    """A Java-style properties file: ``key=value`` or ``key: value``, ``#`` and ``!`` comment
    lines, blank lines ignored, whitespace around keys and values stripped (no line
    continuations or escapes: client settings need none)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise KafkaConfigError(f"cannot read --kafka-config {path!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise KafkaConfigError(f"--kafka-config {path!r} is not UTF-8 text") from None
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i > 0), default=-1)
        if cut < 0:
            raise KafkaConfigError(f"{path}:{number}: expected key=value")
        out[line[:cut].strip()] = line[cut + 1:].strip()
    return out


def from_environment(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``DRIFTFLOW_KAFKA_<NAME>=value`` as ``{variable: (name.lower with '.' for '_', value)}``,
    leaving out the project's own variables (`PROJECT_ENV`)."""
    return {name: (name[len(ENV_PREFIX):].lower().replace("_", "."), value)
            for name, value in environ.items()
            if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX):] not in PROJECT_ENV}


def redact(text: str, config: KafkaClientConfig) -> str:
    """``text`` with every secret value of ``config`` replaced (for messages from a client
    library that might quote one)."""
    for name, value in config.settings:
        if name in SECRET_NAMES and value:
            text = text.replace(value, REDACTED)
    return text
