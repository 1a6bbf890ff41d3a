"""The TwiML the hub answers calls with, and the webhook paths it names.

Every caller waits in a conference named for their interaction
(https://www.twilio.com/docs/voice/twiml/conference): ``startConferenceOnEnter`` false, so they
hear the wait URL's TwiML (hold music and their place in line) until an agent joins, and
``endConferenceOnExit`` true, so their hanging up ends the call for everyone. The conference
reports joins and leaves to ``CONFERENCE_PATH`` and, if recorded, its recording to
``RECORDING_PATH``; both carry the interaction in the query string (which the signature covers).
"""

from __future__ import annotations

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

CALL_PATH = "/webhooks/twilio/voice"
STATUS_PATH = "/webhooks/twilio/voice/status"
MENU_PATH = "/webhooks/twilio/voice/menu"
CONSENT_PATH = "/webhooks/twilio/voice/consent"
WAIT_PATH = "/webhooks/twilio/voice/wait"
CONFERENCE_PATH = "/webhooks/twilio/voice/conference"
RECORDING_PATH = "/webhooks/twilio/voice/recording"
VOICEMAIL_PATH = "/webhooks/twilio/voice/voicemail"
CALLBACK_PATH = "/webhooks/twilio/voice/callback"
AGENT_PATH = "/webhooks/twilio/voice/agent"  # the TwiML app's voice URL
HOLD_PATH = "/webhooks/twilio/voice/hold"  # what a customer on hold hears (the holdUrl)
DIALED_PATH = "/webhooks/twilio/voice/dialed"  # the waiting conference's Dial ended

# Twilio's own hold music, used between announcements when no hold_music_url is set.
TWILIO_HOLD_MUSIC = "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"
CONFERENCE_EVENTS = "start end join leave hold"
LEG_EVENTS = ["initiated", "ringing", "answered", "completed"]


def conference_name(interaction_id: int) -> str:
    """The conference a caller waits in, and the accepting agent joins."""
    return f"interaction-{interaction_id}"


def for_interaction(public_url: str, path: str, interaction_id: int) -> str:
    """A webhook URL of ours that names the interaction it is about."""
    return f"{public_url}{path}?interaction={interaction_id}"


def hold_twiml(
    interaction_id: int,
    *,
    public_url: str,
    say: tuple[str, ...] = (),
    record: bool = False,
    wait_url: str | None = None,
    wait_method: str = "POST",
) -> str:
    """Say what there is to say, then wait in the interaction's conference for an agent.

    ``wait_method`` is Twilio's ``waitMethod``: POST for the hub's own wait TwiML, GET for a
    static audio file (Twilio defaults to POST, which static hosts refuse, and a failed wait
    request ends the Dial). The Dial's action comes back to the hub when the Dial ends,
    however it ends, so a caller still waiting is put back rather than hung up on.
    """
    response = VoiceResponse()
    for text in say:
        response.say(text)
    dial = Dial(action=for_interaction(public_url, DIALED_PATH, interaction_id), method="POST")
    options: dict[str, str] = {}
    if record:
        options["record"] = "record-from-start"
        options["recording_status_callback"] = for_interaction(
            public_url, RECORDING_PATH, interaction_id
        )
    dial.conference(
        conference_name(interaction_id),
        start_conference_on_enter=False,
        end_conference_on_exit=True,
        wait_url=wait_url,
        wait_method=wait_method,
        beep=False,
        status_callback=for_interaction(public_url, CONFERENCE_PATH, interaction_id),
        status_callback_event=CONFERENCE_EVENTS,
        **options,
    )
    response.append(dial)
    return str(response)


def menu_twiml(prompt: str, menu: dict[str, str], action: str, *, sorry: bool = False) -> str:
    """The IVR menu: a key or the queue's name, spoken; no answer goes on to ``action``."""
    response = VoiceResponse()
    if sorry:
        response.say("Sorry, I did not get that.")
    gather = Gather(
        input="dtmf speech",
        num_digits=1,
        action=action,
        timeout=6,
        hints=", ".join(sorted(set(menu.values()))),
        action_on_empty_result=True,
    )
    gather.say(prompt)
    response.append(gather)
    response.redirect(action)
    return str(response)


def menu_prompt(menu: dict[str, str]) -> str:
    """'For sales, press 1. For support, press 2.'"""
    return " ".join(f"For {queue}, press {key}." for key, queue in sorted(menu.items()))


def consent_twiml(notice: str, action: str) -> str:
    """Ask to record: press 1 to allow; anything else, or nothing, records nothing."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=action, timeout=5, action_on_empty_result=True)
    gather.say(f"{notice} To allow recording, press 1. Otherwise, please hold.")
    response.append(gather)
    response.redirect(action)
    return str(response)


def closed_twiml(
    message: str, *, voicemail_action: str | None, callback_action: str | None, max_seconds: int
) -> str:
    """Outside hours: say so; take a voicemail, or offer a callback, if the queue wants one."""
    response = VoiceResponse()
    response.say(message)
    if voicemail_action is not None:
        # The action comes when the caller stops; the audio is ready only when Twilio has
        # processed it, which the recording status callback (the same URL) says.
        response.record(
            action=voicemail_action,
            max_length=max_seconds,
            play_beep=True,
            recording_status_callback=voicemail_action,
            recording_status_callback_event="completed",
        )
    if callback_action is not None:
        gather = Gather(num_digits=1, action=callback_action, timeout=8)
        gather.say(
            "To be called back when we open, keeping your place in line, press 1. "
            "Otherwise, please call again later."
        )
        response.append(gather)
        response.say("Goodbye.")
    response.hangup()
    return str(response)


def wait_twiml(
    position: int | None,
    estimated_seconds: float | None,
    *,
    hold_music_url: str | None,
    again_url: str | None = None,
) -> str:
    """What a waiting caller hears, again and again: their place in line, then music.

    It ends by redirecting to the wait URL (``again_url``), so the announcement is fresh each
    round and the music never just stops.
    """
    response = VoiceResponse()
    if position is not None:
        line = "You are next in line." if position == 1 else f"You are number {position} in line."
        if estimated_seconds is not None:
            minutes = max(1, round(estimated_seconds / 60))
            line += f" Your estimated wait is about {minutes} minute{'s' if minutes > 1 else ''}."
        response.say(line)
    response.play(hold_music_url or TWILIO_HOLD_MUSIC)
    if again_url is not None:
        response.redirect(again_url, method="POST")
    return str(response)


def on_hold_twiml(hold_music_url: str | None) -> str:
    """What a customer put on hold hears: the music, looped until they are taken off hold
    (``loop="0"``; a bare MP3 as the holdUrl would play once, then silence)."""
    response = VoiceResponse()
    response.play(hold_music_url or TWILIO_HOLD_MUSIC, loop=0)
    return str(response)


def said_twiml(*lines: str, hang_up: bool = True) -> str:
    """Say each line; hang up after."""
    response = VoiceResponse()
    for line in lines:
        response.say(line)
    if hang_up:
        response.hangup()
    return str(response)


def join_twiml(interaction_id: int) -> str:
    """The agent joins the caller's conference, which starts it (the hold music stops)."""
    response = VoiceResponse()
    dial = Dial()
    dial.conference(
        conference_name(interaction_id),
        start_conference_on_enter=True,
        end_conference_on_exit=False,
        beep=False,
    )
    response.append(dial)
    return str(response)
