"""The voice channel shares the SMS tests' hub and Twilio simulator."""

from tests.channels.sms.conftest import client, settings, sms_hub, twilio

__all__ = ["client", "settings", "sms_hub", "twilio"]
