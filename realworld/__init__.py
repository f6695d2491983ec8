"""Live adapters implementing the ports of :mod:`policies.ports` against real systems.

Agents, Mirror Stores, HAProxy, IVNs as network namespaces and local-process instances; built only by
``mirrortwin.live_fleet`` (see ``README.md`` here and ``docs/live.md``). Nothing in the twin depends on it.
"""
