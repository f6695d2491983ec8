"""The live Resource Mirroring Agent (RMA): a sidecar that samples one instance and mirrors its state.

Pieces, one concept a module: :mod:`~realworld.agent.samples` (the sample record and ring buffer),
:mod:`~realworld.agent.sampler` (process-tree and cgroup v2 samplers), :mod:`~realworld.agent.capture`
(hook, dir and CRIU capture backends), :mod:`~realworld.agent.uploader` (the interface to the Mirror
Store client), :mod:`~realworld.agent.agent` (the scheduler tying them together),
:mod:`~realworld.agent.metrics` and :mod:`~realworld.agent.http_api` (what it exposes).
"""
