"""The generic API channel: other systems push contacts in with POST /api/v1/inbound."""

from hub.channels.api.adapter import ApiChannel

__all__ = ["ApiChannel"]
