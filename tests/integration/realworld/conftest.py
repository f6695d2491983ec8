"""Fixtures of the live-adapter tests (real HAProxy, real HTTP backends), shared with the contract tests."""

from tests.live_processes import haproxy_bin, named_backends  # noqa: F401  (fixtures, used by name)
