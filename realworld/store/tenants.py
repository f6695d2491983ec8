"""Tenants of a Mirror Store and their bearer tokens, read from a TOML file.

Only SHA-256 digests of tokens are ever stored or compared, so a leaked tenants file or a memory dump
of the store does not hand out credentials. Example file::

    [tenants.ivn-b]
    token_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
"""

from __future__ import annotations

import hashlib
import hmac
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from realworld.store.manifest import check_identifier

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class TenantsFileError(ValueError):
    """The tenants file is missing or malformed; the message names the file and the entry."""


def token_digest(token: str) -> str:
    """SHA-256 hex digest of a token, as written in the tenants file."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Tenants:
    """Tenant name by token digest."""

    by_digest: dict[str, str]

    @classmethod
    def load(cls, path: Path) -> Tenants:
        """Read and validate a tenants file.

        Raises:
            TenantsFileError: one line naming the file and what is wrong.
        """
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise TenantsFileError(f"tenants file {path}: not found") from None
        except OSError as exc:
            raise TenantsFileError(f"tenants file {path}: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise TenantsFileError(f"tenants file {path}: not valid TOML ({exc})") from None
        table = data.get("tenants")
        if not isinstance(table, dict) or not table:
            raise TenantsFileError(f"tenants file {path}: needs at least one [tenants.NAME] table")
        by_digest: dict[str, str] = {}
        for name, entry in table.items():
            try:
                check_identifier(name, "tenant name")
            except ValueError as exc:
                raise TenantsFileError(f"tenants file {path}: {exc}") from None
            digest = entry.get("token_sha256") if isinstance(entry, dict) else None
            if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
                raise TenantsFileError(
                    f"tenants file {path}: tenants.{name}.token_sha256 must be 64 lowercase hex digits "
                    "(the SHA-256 of the token, never the token itself)"
                )
            if digest in by_digest:
                raise TenantsFileError(f"tenants file {path}: tenants {by_digest[digest]} and {name} share a token")
            unknown = set(entry) - {"token_sha256"}
            if unknown:
                raise TenantsFileError(f"tenants file {path}: tenants.{name}: unknown key {sorted(unknown)[0]!r}")
            by_digest[digest] = name
        return cls(by_digest)

    def authenticate(self, token: str) -> str | None:
        """The tenant whose token this is, or None (constant-time comparison of digests)."""
        digest = token_digest(token)
        found = None
        for known, name in self.by_digest.items():
            if hmac.compare_digest(known, digest):
                found = name
        return found
