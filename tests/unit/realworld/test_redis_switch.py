"""The Redis redirect hook refuses a pause shorter than its own sync timeout."""

from __future__ import annotations

import pytest

from realworld.redis_switch import redis_redirect_hook


def test_pause_must_outlast_the_sync_timeout() -> None:
    with pytest.raises(ValueError, match="sync_timeout_s: must be shorter than pause_ms"):
        redis_redirect_hook(lambda _id: ("127.0.0.1", 1), pause_ms=1000, sync_timeout_s=2.0)
