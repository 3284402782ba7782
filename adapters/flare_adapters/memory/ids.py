"""Identifier sources (the service's ``IdSource`` port): real entropy, or a seeded sequence."""

from __future__ import annotations

import base64
import random
import secrets
import threading
import uuid

__all__ = ["RandomIds", "SeededIds"]


class RandomIds:
    """UUID4 job ids and ``secrets`` tokens: what a real server uses."""

    def job_id(self) -> str:
        """A fresh random UUID4."""
        return str(uuid.uuid4())

    def secret(self) -> str:
        """A fresh 256-bit URL-safe token."""
        return secrets.token_urlsafe(32)


class SeededIds:
    """Reproducible ids for tests: the same seed yields the same sequence.

    The job ids are still valid UUID4s (version and variant bits set), so every job-id check
    treats them like real ones. Not for production: the secrets are predictable.
    """

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def job_id(self) -> str:
        """The next UUID4 of the sequence."""
        with self._lock:
            bits = self._random.getrandbits(128)
        return str(uuid.UUID(int=bits, version=4))

    def secret(self) -> str:
        """The next 256-bit URL-safe token of the sequence."""
        with self._lock:
            raw = self._random.getrandbits(256).to_bytes(32, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
