"""Live adapters implementing the ports of :mod:`policies.ports` against real systems.

Empty for now: the RMA sidecar, the Mirror Store service, the HAProxy load balancer and the instance
provider arrive with the realworld issue (see ``README.md`` here). Nothing in the twin depends on it.
"""
