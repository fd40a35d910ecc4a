"""The engine's typed interface: what the console, the HTTP API and a remote client rely on.

``from engine.api import Engine, LocalEngine, ReadOnlyEngine`` and the data
classes of :mod:`engine.api.types`. See :mod:`engine.api.interface` for the
contract, :mod:`engine.api.codec` for how its values travel as JSON.
"""

from __future__ import annotations

from engine.api.interface import (
    AgentsAPI,
    AuditAPI,
    Engine,
    EventsAPI,
    KnowledgeAPI,
    MessagesAPI,
    PoliciesAPI,
    ResourcesAPI,
    SecretsAPI,
    ToolsAPI,
)
from engine.api.readonly import ReadOnlyEngine, read_only
from engine.api.types import *  # noqa: F403
from engine.api.types import __all__ as _types

__all__ = [
    "AgentsAPI",
    "AuditAPI",
    "Engine",
    "EventsAPI",
    "KnowledgeAPI",
    "MessagesAPI",
    "PoliciesAPI",
    "ReadOnlyEngine",
    "ResourcesAPI",
    "SecretsAPI",
    "ToolsAPI",
    "read_only",
    *_types,
]
