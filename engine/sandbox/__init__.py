"""Sandbox tiers: where an agent's process runs and what stops it from escaping.

The public face:

* :class:`SandboxRegistry` -- probes the tiers (``doctor``), hands out the
  executor for a :class:`~engine.agents.model.SecurityTier`
  (``executor_for``; SANDBOX_001/002 when unavailable, a native fallback
  only when ``sandbox.allow_fallback``), and reaps what a dead engine left
  (``reap``, ``reap_all_labelled``);
* :class:`TierStatus` -- one doctor row;
* the executors: :class:`NativeSandboxExecutor` (process group, rlimits,
  cgroups, bubblewrap) and :class:`DockerExecutor` (Docker; gVisor with
  ``runtime="runsc"``);
* :func:`prepare_image` -- the local agent image, built without a registry;
* :func:`engine_label` -- the label value for one data dir.

Modules: ``native``, ``bwrap``, ``cgroups``, ``environment`` (the env
contract and rlimits), ``docker_tier``, ``image``, ``firecracker``,
``reaper``, ``registry``, ``cli``.
"""

from engine.sandbox.docker_tier import DockerExecutor, DockerHandle
from engine.sandbox.image import prepare_image
from engine.sandbox.native import NativeSandboxExecutor, NativeSandboxHandle
from engine.sandbox.registry import SandboxRegistry, TierStatus, engine_label

__all__ = [
    "DockerExecutor",
    "DockerHandle",
    "NativeSandboxExecutor",
    "NativeSandboxHandle",
    "SandboxRegistry",
    "TierStatus",
    "engine_label",
    "prepare_image",
]
