"""API-key hashing: two stored forms, each with a per-user salt, verified in constant time.

- ``scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>``: for keys a person may have chosen. The cost
  parameters travel with the hash, so a deployment can raise them without invalidating old
  keys, and tests can use a cheap setting (see ``ServiceConfig.scrypt_n``).
- ``sha256$<salt hex>$<hmac hex>``: HMAC-SHA256 keyed by the salt, for keys the server
  generated itself (``secrets.token_urlsafe(32)``, 256 random bits). A slow KDF only slows the
  guessing of low-entropy secrets; nobody can enumerate 2**256 keys, so for these a fast keyed
  hash is as safe and a login costs microseconds instead of tens of milliseconds (issue 12).

``verify_api_key`` accepts both forms, so existing ``scrypt$`` workspaces keep working.
"""

from __future__ import annotations

import hashlib
import hmac

from flare_core.errors import AuthenticationError

__all__ = [
    "BAD_CREDENTIALS",
    "DEFAULT_SCRYPT_N",
    "MIN_GENERATED_KEY_CHARS",
    "hash_api_key",
    "hash_generated_key",
    "require_api_key",
    "verify_api_key",
]

BAD_CREDENTIALS = "Incorrect user name or password"
"""The reference's message for an unknown user or a wrong key (it tells the two apart for
nobody)."""

DEFAULT_SCRYPT_N = 2**14
"""The scrypt CPU/memory cost used unless told otherwise (about 16 MiB, tens of ms)."""

_MAX_N = 2**17  # refuse stored hashes that would make one login cost more than ~128 MiB
_MAX_R = 16
_MAX_P = 16
_DKLEN = 32

MIN_GENERATED_KEY_CHARS = 32
"""The shortest key ``hash_generated_key`` accepts: the fast form is only safe for random keys
(``secrets.token_urlsafe(32)`` gives 43 characters); a short key is likely a person's choice."""


def require_api_key(user: object, api_key: object) -> str:
    """The API key of a login, refused with a message that says what is missing.

    A login without any key cannot be a wrong password: telling the caller so (rather than
    "Incorrect user name or password") reveals nothing about the user and points at the fix.

    Raises:
        AuthenticationError: ``api_key`` is None, empty or not a str.
    """
    if not isinstance(api_key, str) or not api_key:
        raise AuthenticationError(
            f"no API key given for user {user!r}: pass api_key (the CLI: --api-key-file, "
            "FLARE_CORE_API_KEY or a profile's api_key_file)"
        )
    return api_key


def _derive(key: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        key.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_DKLEN, maxmem=256 * n * r + 2**20
    )


def hash_api_key(
    key: str, salt: bytes, *, n: int = DEFAULT_SCRYPT_N, r: int = 8, p: int = 1
) -> str:
    """Hash an API key for storage.

    Args:
        key: the secret API key.
        salt: a per-user random salt (at least 8 bytes).
        n: scrypt CPU/memory cost, a power of two between 2 and 2**17.
        r: scrypt block size (1..16).
        p: scrypt parallelism (1..16).

    Returns:
        The self-describing hash string.

    Raises:
        ValueError: a parameter is out of range, or the salt is shorter than 8 bytes.
    """
    if len(salt) < 8:
        raise ValueError("salt must be at least 8 bytes")
    if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        raise ValueError("scrypt parameters out of range")
    digest = _derive(key, salt, n, r, p)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def _keyed(key: str, salt: bytes) -> bytes:
    return hmac.new(salt, key.encode("utf-8"), hashlib.sha256).digest()


def hash_generated_key(key: str, salt: bytes) -> str:
    """Hash a server-generated (high-entropy random) API key for storage, fast.

    Use ``hash_api_key`` (scrypt) for any key a person supplied.

    Args:
        key: the secret API key, at least ``MIN_GENERATED_KEY_CHARS`` characters.
        salt: a per-user random salt (at least 8 bytes).

    Returns:
        ``sha256$<salt hex>$<hmac hex>``.

    Raises:
        ValueError: the salt is shorter than 8 bytes, or the key is too short to be random.
    """
    if len(salt) < 8:
        raise ValueError("salt must be at least 8 bytes")
    if len(key) < MIN_GENERATED_KEY_CHARS:
        raise ValueError(
            f"a generated key has at least {MIN_GENERATED_KEY_CHARS} characters; "
            "hash a shorter (chosen) key with hash_api_key"
        )
    return f"sha256${salt.hex()}${_keyed(key, salt).hex()}"


def _verify_generated(key: str, parts: list[str]) -> bool:
    if len(parts) != 3:
        return False
    try:
        salt, expected = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
    except ValueError:
        return False
    if len(salt) < 8 or len(expected) != hashlib.sha256().digest_size:
        return False
    return hmac.compare_digest(_keyed(key, salt), expected)


def verify_api_key(key: str, stored: str) -> bool:
    """Check an API key against a stored hash, in constant time.

    Args:
        key: the presented API key.
        stored: a ``hash_api_key`` or ``hash_generated_key`` result.

    Returns:
        True when the key matches; False for a wrong key or a malformed/out-of-range hash.
    """
    parts = stored.split("$")
    if parts[0] == "sha256":
        return _verify_generated(key, parts)
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, expected = bytes.fromhex(parts[4]), bytes.fromhex(parts[5])
    except ValueError:
        return False
    if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        return False
    if len(expected) != _DKLEN:
        return False
    return hmac.compare_digest(_derive(key, salt, n, r, p), expected)
