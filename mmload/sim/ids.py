"""Mattermost-style 26-character ids: base32 (Mattermost's alphabet) of 16 bytes.

Seeded ids come from a hash of (seed, kind, number), so the same population always has the same
ids; session tokens and new objects use random bytes, as the real server does.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

# model.NewId(): base32 with this alphabet, padding stripped.
MM_ALPHABET = b"ybndrfg8ejkmcpqxot1uwisza345h769"
_STD_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TRANSLATE = bytes.maketrans(_STD_ALPHABET, MM_ALPHABET)


def encode_id(raw16: bytes) -> str:
    """26-char id of 16 raw bytes."""
    return base64.b32encode(raw16).translate(_TRANSLATE)[:26].decode()


def seeded_id(seed: int, kind: str, number: int | str) -> str:
    """The deterministic id of object ``number`` of ``kind`` in the population of ``seed``."""
    digest = hashlib.blake2b(f"{seed}:{kind}:{number}".encode(), digest_size=16).digest()
    return encode_id(digest)


def new_id() -> str:
    """A random id (sessions, CSRF tokens, connection ids, created posts)."""
    return encode_id(secrets.token_bytes(16))


def is_valid_id(value: str) -> bool:
    """What Mattermost's ``model.IsValidId`` accepts: 26 chars of lowercase letters/digits."""
    return len(value) == 26 and value.isalnum() and value.islower()
