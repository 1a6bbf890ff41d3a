"""Routing state: agents, waiting work and offers, in process or in Redis, one contract."""

from hub.routing.state.base import Limits, RoutingState
from hub.routing.state.memory import MemoryRoutingState

__all__ = ["Limits", "MemoryRoutingState", "RoutingState"]
