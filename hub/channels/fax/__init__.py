"""Fax: documents in and out through a provider's API (Telnyx) and fax-to-email gateways."""

from hub.channels.fax.adapter import FaxChannel

__all__ = ["FaxChannel"]
