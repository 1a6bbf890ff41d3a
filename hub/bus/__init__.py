"""The event bus: committed domain events, delivered to whoever subscribed."""

from hub.bus.base import PARTITIONS, Envelope, EventBus, Handler, partition_of

__all__ = ["PARTITIONS", "Envelope", "EventBus", "Handler", "partition_of"]
