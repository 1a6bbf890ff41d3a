"""Phone calls through Twilio: callers wait in a conference named for their interaction."""

from hub.channels.voice.adapter import VoiceChannel

__all__ = ["VoiceChannel"]
