"""SMS and MMS through Twilio: signed inbound webhooks, opt-out keywords."""

from hub.channels.sms.adapter import SmsChannel

__all__ = ["SmsChannel"]
