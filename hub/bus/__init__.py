"""The event bus: committed domain events, delivered to whoever subscribed."""

from hub.bus.base import EventBus, Handler
from hub.bus.memory import InProcessEventBus

__all__ = ["EventBus", "Handler", "InProcessEventBus"]
