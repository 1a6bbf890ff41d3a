"""Web chat: an embeddable widget on the company's sites, live with agents over socket.io."""

from hub.channels.webchat.adapter import WebchatChannel

__all__ = ["WebchatChannel"]
