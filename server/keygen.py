"""``minisession keygen``: fresh secrets for a deployment, ready to paste into the config.

Every instance that shares a store must use the same signing secrets and encryption keys
(server/config.py refuses a shared store without them), so they are made once, here, and
handed to each instance, in the file or in the environment.
"""

import secrets

from server.config import ENV_ADMIN_API_KEYS, ENV_SESSION_SECRETS, ENV_STORE_ENCRYPTION_KEYS
from server.sealing import new_key


def keygen_text() -> str:
    """A TOML fragment with one new value for each secret setting, the environment form of the
    same values in comments."""
    signing, encryption, admin = secrets.token_urlsafe(32), new_key(), secrets.token_urlsafe(32)
    return "\n".join([
        "# Made by `minisession keygen`. Paste each key under its section of your config file",
        "# (then protect that file like a password), the same values on every instance that",
        "# shares the store. Or set the environment instead, keeping the file free of secrets:",
        f"#   {ENV_SESSION_SECRETS}={signing}",
        f"#   {ENV_STORE_ENCRYPTION_KEYS}={encryption}",
        f"#   {ENV_ADMIN_API_KEYS}={admin}",
        "",
        "[session]",
        "# Signs session ids; to rotate, put a new one first, keep the old one max_lifetime.",
        f'secrets = ["{signing}"]',
        "",
        "[store]",
        "# Seals session_keys at rest; losing it makes the stored ones unreadable.",
        f'encryption_keys = ["{encryption}"]',
        "",
        "[admin]",
        "# For your backend's Authorization: Bearer header (used when admin.enabled = true).",
        f'api_keys = ["{admin}"]',
        "",
    ])
