"""The base of every settings section: strict keys and secrets that can live outside the file.

Each ``[section]`` of settings.toml is a pydantic model deriving from :class:`Section`. An unknown key is
an error (a typo must not silently fall back to a default), and every :class:`~pydantic.SecretStr` field
``key`` may instead be given as ``key_file = "/path"`` or through the environment variable
``BRIDGE_<SECTION>_<KEY>``; the environment wins over the file path, which wins over the inline value.
"""

from __future__ import annotations

import ipaddress
import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator


def is_secret_field(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(arg is SecretStr for arg in typing.get_args(annotation))
    return False


class Section(BaseModel):
    """A strict settings section; subclasses set ``section`` to their TOML table name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    section: ClassVar[str] = ""

    @classmethod
    def secret_fields(cls) -> list[str]:
        return [name for name, field in cls.model_fields.items() if is_secret_field(field.annotation)]

    @model_validator(mode="before")
    @classmethod
    def _resolve_secrets(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name in cls.secret_fields():
            file_key = f"{name}_file"
            env_key = f"BRIDGE_{cls.section.upper().replace('.', '_')}_{name.upper()}"
            path = data.pop(file_key, None)
            if os.environ.get(env_key):
                data[name] = os.environ[env_key]
            elif path is not None:
                data[name] = _read_secret_file(cls.section, file_key, path)
        return data


def _read_secret_file(section: str, key: str, path: object) -> str:
    if not isinstance(path, str) or not path:
        raise ValueError(f"{key} must be a path to a file holding the secret")
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ValueError(
            f"cannot read {key} {path!r} ({error.strerror}); make the file readable by the bridge's user"
        ) from None


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1): traffic that stays on the host."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
