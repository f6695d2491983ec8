"""The SimPy twin: hosts, instances, RMAs, Mirror Stores, links and load balancers of a fleet.

Per-step arithmetic (demand, utilisation, energy, SLA accounting) is vectorised with numpy over all
instances and hosts; SimPy carries only discrete events (control ticks, snapshots, transfer
completions, health checks). Adapters in :mod:`sim.adapters` implement the ports of
:mod:`policies.ports` over this world, so the core runs here exactly as it runs live.
"""
