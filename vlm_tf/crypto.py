"""Folders whose files are encrypted at rest: AES-256-GCM with a key the user keeps in a file.

A folder is encrypted when it holds `encryption.json`, written in plain text
when the folder is made with a key in use (`seal`): it names the cipher and
the key's id (a hash of the key, which says whether a key is the right one
without trying it on a file). Every file written under such a folder, at
any depth, is encrypted as a whole with a fresh random nonce and keeps its
name; every read decrypts it in memory. A file is `MAGIC`, the 12-byte nonce,
then the ciphertext with GCM's 16-byte tag, so a changed byte anywhere is
found, never read as data.

The key in use is the process's (`use_key`, or `--encrypt-key-file` on any
`vlm-tf` command): reading an encrypted folder without it, or with another,
ends in one line naming the folder. Files are found encrypted by walking
up from their folder, so the modules that read and write run folders
(`vlm_tf.atomic`, the decoded-video cache) need no key passed down to them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import secrets

MARKER = "encryption.json"
CIPHER = "AES-256-GCM"
MAGIC = b"VLMTF-AESGCM-1\n"
NONCE_BYTES = 12
KEY_BYTES = 32

_key = None


class Key:
    """A 256-bit key and where it came from (said in errors, never the key itself)."""

    def __init__(self, secret, source="the key"):
        if len(secret) != KEY_BYTES:
            raise ValueError(
                f"{source}: expected a {KEY_BYTES * 8}-bit key, received {len(secret)} bytes"
            )
        self.secret = bytes(secret)
        self.source = source
        self.key_id = hashlib.sha256(b"vlm_tf key id\0" + self.secret).hexdigest()[:16]

    def __repr__(self):
        return f"Key(id={self.key_id}, source={self.source!r})"


def make_key(path):
    """Writes a new random key to `path` (64 hex digits, readable by its owner only); refuses an
    existing file, which may be the only copy of another key.
    """
    path = os.fspath(path)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise FileExistsError(f"{path}: already exists; a key file is never overwritten") from None
    with os.fdopen(handle, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(KEY_BYTES) + "\n")
    return load_key(path)


def load_key(path):
    """The key in the file `path`: 32 raw bytes, 64 hex digits or 32 bytes in base64."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: key file not found")
    with open(path, "rb") as f:
        data = f.read(4096)
    if len(data) == KEY_BYTES:
        return Key(data, path)
    text = data.strip()
    for decode in (bytes.fromhex, _base64):
        try:
            secret = decode(text.decode("ascii"))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            continue
        if len(secret) == KEY_BYTES:
            return Key(secret, path)
    raise ValueError(
        f"{path}: expected a {KEY_BYTES * 8}-bit key ({KEY_BYTES} raw bytes, {KEY_BYTES * 2} hex "
        "digits or base64; `vlm-tf make-key FILE` writes one)"
    )


def _base64(text):
    return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)


def use_key(key):
    """Makes `key` (a `Key`, or None) the process's key; returns the one it replaces."""
    global _key
    if key is not None:
        _aesgcm(key)
    previous, _key = _key, key
    return previous


@contextlib.contextmanager
def keyed(key):
    """`use_key(key)` for the block."""
    previous = use_key(key)
    try:
        yield key
    finally:
        use_key(previous)


def active_key():
    return _key


def sealed_folder(path):
    """The folder holding `path` (a file or folder, existing or not) that is encrypted, or None."""
    folder = os.path.abspath(os.fspath(path))
    if not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    while True:
        if os.path.isfile(os.path.join(folder, MARKER)):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def key_for(path):
    """The key that encrypts `path`, or None when no folder above it is encrypted; a one-line
    error when it is and the process has no key, or another one.
    """
    folder = sealed_folder(path)
    return None if folder is None else _opening_key(folder)


def _opening_key(folder):
    marker = os.path.join(folder, MARKER)
    try:
        with open(marker, encoding="utf-8") as f:
            key_id = json.load(f)["key_id"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{marker}: not an encryption marker vlm_tf wrote") from None
    if _key is None:
        raise PermissionError(
            f"{folder} is encrypted ({MARKER}): pass the key with --encrypt-key-file KEY"
        )
    if _key.key_id != key_id:
        raise PermissionError(
            f"{_key.source} is not the key of {folder} (the folder's key id is {key_id}, this "
            f"key's {_key.key_id})"
        )
    return _key


def seal(folder):
    """Makes the encryption of `folder` (made if missing) match the process's key; returns the key,
    or None when the folder stays plain.

    With a key, a new or empty folder gets its marker; a folder already encrypted must be the key's;
    a folder holding plain files is refused (encrypting its later files alone would leave the
    earlier ones readable). Without a key, an encrypted folder is refused.
    """
    folder = os.path.abspath(os.fspath(folder))
    if sealed_folder(folder) is not None:
        return key_for(folder)
    if _key is None:
        return None
    os.makedirs(folder, exist_ok=True)
    plain = [name for name in os.listdir(folder) if not name.startswith(".")]
    if plain:
        raise ValueError(
            f"{folder} holds files written without encryption ({plain[0]}, ...); encrypt into a "
            "new folder"
        )
    with open(os.path.join(folder, MARKER), "w", encoding="utf-8") as f:
        json.dump({"cipher": CIPHER, "key_id": _key.key_id}, f, indent=2)
        f.write("\n")
    return _key


def _aesgcm(key):
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise ValueError(
            "encryption needs the `cryptography` package: pip install 'vlm_tf[privacy]'"
        ) from None
    return AESGCM(key.secret)


def encrypt(key, data):
    nonce = secrets.token_bytes(NONCE_BYTES)
    return MAGIC + nonce + _aesgcm(key).encrypt(nonce, bytes(data), MAGIC)


def decrypt(key, blob, name):
    """The plain bytes of `blob`, the content of the file `name`; a one-line error naming it when
    it is not a file this module wrote with `key`.
    """
    from cryptography.exceptions import InvalidTag

    blob = bytes(blob)
    if not blob.startswith(MAGIC):
        raise ValueError(f"{name}: not encrypted, in a folder whose files all are")
    nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
    try:
        return _aesgcm(key).decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES :], MAGIC)
    except InvalidTag:
        raise ValueError(
            f"{name}: cannot be decrypted with {key.source} (changed since it was written)"
        ) from None


def read_bytes(path):
    """The content of the file `path`, decrypted when its folder is encrypted."""
    with open(path, "rb") as f:
        data = f.read()
    key = key_for(path)
    return data if key is None else decrypt(key, data, os.fspath(path))


def sealed_bytes(path, data):
    """What to write to `path` for the content `data`: `data` itself, or encrypted."""
    key = key_for(path)
    return data if key is None else encrypt(key, data)
