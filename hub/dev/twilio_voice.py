"""The simulator's phone side: calls, conferences and their participants, at the wire.

It speaks the REST resources the hub's call controls use (Conference Participants: create,
update, remove; Conferences: update; Calls: fetch, update), rings the numbers it is asked to
(answering, or busy / no-answer as told with ``answer_as``), and plays the caller: it obeys the
TwiML the hub answers with (Say, Gather, Record, Dial/Conference, Redirect, Hangup), keeps
conferences with their hold, mute and coaching state, and sends the hub the signed callbacks
Twilio would: call status (ringing, answered, completed with the duration), conference events
(start, end, participant join, leave, hold) and recordings.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

from aiohttp import web

if TYPE_CHECKING:
    from hub.dev.twilio_sim import TwilioSimulator

ACCOUNT = "/2010-04-01/Accounts/{account}"
# A tenth of a second of 8 kHz 8-bit mono silence: what a recording download gives.
SILENCE = (
    b"RIFF" + (36 + 800).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
    + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
    + (8000).to_bytes(4, "little") + (1).to_bytes(2, "little") + (8).to_bytes(2, "little")
    + b"data" + (800).to_bytes(4, "little") + b"\x80" * 800
)  # fmt: skip
# An MPEG-1 Layer III frame header and silence: what a recording's .mp3 download gives.
SILENT_MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + (b"\xff\xfb\x90\x64" + b"\x00" * 413) * 4


@dataclass
class SimCall:
    """One call leg as Twilio would know it."""

    sid: str
    from_: str
    to: str
    direction: str  # inbound | outbound-api
    status: str
    status_callback: str | None = None
    events: frozenset[str] = frozenset({"completed"})
    conference: str | None = None  # its conference's sid, once in one
    label: str | None = None
    muted: bool = False
    hold: bool = False
    hold_url: str | None = None
    hold_method: str = "POST"  # Twilio's default
    coaching: bool = False
    call_sid_to_coach: str | None = None
    start_on_enter: bool = True
    end_on_exit: bool = False
    wait_url: str | None = None
    wait_method: str = "POST"  # Twilio's default: a static file needs waitMethod="GET"
    dial_action: str | None = None  # where Twilio goes when the Dial ends
    gather_action: str | None = None
    record_action: str | None = None
    record_callback: str | None = None  # the Record's recordingStatusCallback
    heard: list[str] = field(default_factory=list)  # what the hub's TwiML said, in order
    answered: float | None = None

    def as_twilio(self, account_sid: str) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "account_sid": account_sid,
            "from": self.from_,
            "to": self.to,
            "status": self.status,
            "direction": self.direction,
            "api_version": "2010-04-01",
            "duration": str(int(time.monotonic() - self.answered)) if self.answered else None,
            "uri": f"/2010-04-01/Accounts/{account_sid}/Calls/{self.sid}.json",
        }


@dataclass
class SimConference:
    """A conference and who is in it."""

    sid: str
    name: str
    status: str = "init"  # init | in-progress | completed
    participants: list[str] = field(default_factory=list)
    status_callback: str | None = None
    events: frozenset[str] = frozenset()
    record: bool = False
    recording_callback: str | None = None
    started: float | None = None
    sequence: int = 0  # the SequenceNumber of its last event


class VoiceSim:
    """Calls and conferences for the Twilio simulator."""

    def __init__(self, sim: TwilioSimulator) -> None:
        self._sim = sim
        self.calls: dict[str, SimCall] = {}
        self.conferences: dict[str, SimConference] = {}
        self.answers: dict[str, str] = {}  # number -> busy | no-answer | failed
        self.recordings: list[dict[str, str]] = []  # recording callbacks sent
        # Recording sid -> when its audio can be fetched: Twilio processes a recording
        # before it is available (a 404 until then) and says so in its status callback.
        self.recorded: dict[str, float] = {}
        self.recording_seconds = 0.2  # processing time, in the simulator
        self.ring_seconds = 0.1
        # Twilio does not promise conference events in order: an event named here is held
        # back and delivered after the next one (its SequenceNumber still tells the order).
        self.late_events: set[str] = set()
        self._late: list[tuple[str, dict[str, str]]] = []

    def routes(self) -> list[web.RouteDef]:
        conference = ACCOUNT + "/Conferences/{conference}"
        return [
            web.post(conference + "/Participants.json", self._add_participant),
            web.post(conference + "/Participants/{call}.json", self._update_participant),
            web.delete(conference + "/Participants/{call}.json", self._remove_participant),
            web.post(conference + ".json", self._update_conference),
            web.get(ACCOUNT + "/Conferences.json", self._list_conferences),
            web.get(ACCOUNT + "/Calls/{call}.json", self._fetch_call),
            web.get(ACCOUNT + "/Recordings/{recording}", self._fetch_recording),
            web.post(ACCOUNT + "/Calls/{call}.json", self._update_call),
            # For `hub dev call`: a developer plays the caller from another terminal.
            web.post("/sim/calls", self._sim_call),
            web.get("/sim/calls/{call}", self._sim_show),
            web.post("/sim/calls/{call}/press", self._sim_press),
            web.post("/sim/calls/{call}/wait", self._sim_wait),
            web.post("/sim/calls/{call}/hangup", self._sim_hangup),
        ]

    def answer_as(self, number: str, outcome: str) -> None:
        """Make calls to number end with outcome (busy, no-answer, failed) instead of answering."""
        self.answers[number] = outcome

    def conference(self, name_or_sid: str) -> SimConference | None:
        """A conference by friendly name or sid."""
        found = self.conferences.get(name_or_sid)
        if found is not None:
            return found
        return next((c for c in self.conferences.values() if c.name == name_or_sid), None)

    def in_conference(self, name: str) -> list[SimCall]:
        """Who is in a conference now."""
        conference = self.conference(name)
        return [self.calls[sid] for sid in conference.participants] if conference else []

    # -- REST --------------------------------------------------------------------------------

    async def _form(self, request: web.Request) -> tuple[dict[str, str], dict[str, list[str]]]:
        posted = await request.post()
        lists: dict[str, list[str]] = {}
        for key, value in posted.items():
            if isinstance(value, str):
                lists.setdefault(key, []).append(value)
        form = {key: values[-1] for key, values in lists.items()}
        self._sim.requests.append((request.method, request.path, form))
        return form, lists

    async def _add_participant(self, request: web.Request) -> web.Response:
        form, lists = await self._form(request)
        refused = await self._sim._refuse(request)
        if refused is not None:
            return refused
        if not form.get("From") or not form.get("To"):
            return _error(21201, "From and To are required", 400)
        name = request.match_info["conference"]
        conference = self.conference(name)
        if conference is None or conference.status == "completed":
            conference = self._new_conference(name)
        if conference.status_callback is None and form.get("ConferenceStatusCallback"):
            conference.status_callback = form["ConferenceStatusCallback"]
            conference.events = _events(lists.get("ConferenceStatusCallbackEvent", []))
        if form.get("ConferenceRecord") == "record-from-start":
            conference.record = True
            conference.recording_callback = form.get("ConferenceRecordingStatusCallback")
        call = SimCall(
            sid="CA" + secrets.token_hex(16),
            from_=form["From"],
            to=form["To"],
            direction="outbound-api",
            status="queued",
            status_callback=form.get("StatusCallback"),
            events=frozenset(" ".join(lists.get("StatusCallbackEvent", ["completed"])).split()),
            label=form.get("Label"),
            muted=_true(form.get("Muted")),
            coaching=_true(form.get("Coaching")),
            call_sid_to_coach=form.get("CallSidToCoach"),
            start_on_enter=form.get("StartConferenceOnEnter", "true").lower() == "true",
            end_on_exit=_true(form.get("EndConferenceOnExit")),
        )
        self.calls[call.sid] = call
        self._sim.spawn(self._ring(call, conference))
        return web.json_response(self._participant(call, conference), status=201)

    async def _update_participant(self, request: web.Request) -> web.Response:
        found = await self._member(request)
        if isinstance(found, web.Response):
            return found
        form, conference, call = found
        if "Hold" in form:
            held = _true(form["Hold"])
            call.hold_url = form.get("HoldUrl") if held else None
            call.hold_method = form.get("HoldMethod") or "POST"
            if held != call.hold:
                call.hold = held
                event = "participant-hold" if held else "participant-unhold"
                self._sim.spawn(self._conference_event(conference, event, call))
        if "Muted" in form:
            call.muted = _true(form["Muted"])
        if "Coaching" in form:
            call.coaching = _true(form["Coaching"])
            call.call_sid_to_coach = form.get("CallSidToCoach") if call.coaching else None
        return web.json_response(self._participant(call, conference))

    async def _remove_participant(self, request: web.Request) -> web.Response:
        found = await self._member(request)
        if isinstance(found, web.Response):
            return found
        self._sim.spawn(self.hang_up(found[2].sid))
        return web.Response(status=204)

    async def _update_conference(self, request: web.Request) -> web.Response:
        form, _ = await self._form(request)
        refused = await self._sim._refuse(request)
        if refused is not None:
            return refused
        # Only creating a participant takes a friendly name; everything else the sid.
        conference = self.conferences.get(request.match_info["conference"])
        if conference is None:
            return _error(20404, "The requested resource was not found", 404)
        if form.get("Status") == "completed":
            self._sim.spawn(self._end_conference(conference))
        return web.json_response(self._conference_json(conference))

    async def _fetch_call(self, request: web.Request) -> web.Response:
        refused = await self._sim.read(request)
        if refused is not None:
            return refused
        call = self.calls.get(request.match_info["call"])
        if call is None:
            return _error(20404, "The requested resource was not found", 404)
        return web.json_response(call.as_twilio(self._sim.account_sid))

    async def _fetch_recording(self, request: web.Request) -> web.Response:
        """A recording's audio (a short WAV of silence), behind the account's basic auth."""
        refused = await self._sim.read(request)
        if refused is not None:
            return refused
        name = request.match_info["recording"]
        sid = name.removesuffix(".wav").removesuffix(".mp3")
        if time.monotonic() < self.recorded.get(sid, float("inf")):
            return _error(20404, "The requested resource was not found", 404)
        if name.endswith(".mp3"):
            return web.Response(body=SILENT_MP3, content_type="audio/mpeg")
        return web.Response(body=SILENCE, content_type="audio/x-wav")

    def record(self) -> str:
        """A new recording (as the Record verb or a conference makes); its RecordingUrl.

        Its audio is there only ``recording_seconds`` later, as Twilio's is once processed.
        """
        sid = "RE" + secrets.token_hex(16)
        self.recorded[sid] = time.monotonic() + self.recording_seconds
        return f"{self._sim.url}{ACCOUNT.format(account=self._sim.account_sid)}/Recordings/{sid}"

    async def _recording_ready(self, url: str, params: dict[str, str]) -> None:
        """The recording status callback, once the recording is processed."""
        await asyncio.sleep(self.recording_seconds)
        params = params | {"RecordingStatus": "completed"}
        self.recordings.append(params)
        await self._sim.post_callback(url, params)

    async def _update_call(self, request: web.Request) -> web.Response:
        form, _ = await self._form(request)
        refused = await self._sim._refuse(request)
        if refused is not None:
            return refused
        call = self.calls.get(request.match_info["call"])
        if call is None:
            return _error(20404, "The requested resource was not found", 404)
        if form.get("Status") in ("completed", "canceled"):
            self._sim.spawn(self.hang_up(call.sid))
        return web.json_response(call.as_twilio(self._sim.account_sid))

    async def _member(
        self, request: web.Request
    ) -> tuple[dict[str, str], SimConference, SimCall] | web.Response:
        """A request about one participant (by CallSid or label): its form and whom it names."""
        form, _ = await self._form(request)
        refused = await self._sim._refuse(request)
        if refused is not None:
            return refused
        conference = self.conferences.get(request.match_info["conference"])  # by sid only
        wanted = request.match_info["call"]
        for sid in conference.participants if conference else []:
            call = self.calls[sid]
            if wanted in (sid, call.label):
                assert conference is not None
                return form, conference, call
        return _error(20404, "The requested resource was not found", 404)

    def _new_conference(self, name: str) -> SimConference:
        conference = SimConference(sid="CF" + secrets.token_hex(16), name=name)
        self.conferences[conference.sid] = conference
        return conference

    def _participant(self, call: SimCall, conference: SimConference) -> dict[str, Any]:
        when = format_datetime(datetime.now(UTC))
        return {
            "account_sid": self._sim.account_sid,
            "call_sid": call.sid,
            "conference_sid": conference.sid,
            "label": call.label,
            "muted": call.muted,
            "hold": call.hold,
            "coaching": call.coaching,
            "call_sid_to_coach": call.call_sid_to_coach,
            "start_conference_on_enter": call.start_on_enter,
            "end_conference_on_exit": call.end_on_exit,
            "status": call.status,
            "date_created": when,
            "date_updated": when,
            "uri": f"{ACCOUNT.format(account=self._sim.account_sid)}/Conferences/"
            f"{conference.sid}/Participants/{call.sid}.json",
        }

    async def _list_conferences(self, request: web.Request) -> web.Response:
        refused = await self._sim.read(request)
        if refused is not None:
            return refused
        name, status = request.query.get("FriendlyName"), request.query.get("Status")
        found = [
            self._conference_json(c)
            for c in reversed(list(self.conferences.values()))  # newest first, as Twilio lists
            if name in (None, c.name) and status in (None, c.status)
        ]
        return web.json_response(
            {
                "conferences": found,
                "page": 0,
                "page_size": 50,
                "first_page_uri": request.path,
                "next_page_uri": None,
                "previous_page_uri": None,
                "uri": request.path,
            }
        )

    def _conference_json(self, conference: SimConference) -> dict[str, Any]:
        return {
            "sid": conference.sid,
            "account_sid": self._sim.account_sid,
            "friendly_name": conference.name,
            "status": conference.status,
        }

    # -- the developer's caller -------------------------------------------------------------------

    async def _sim_call(self, request: web.Request) -> web.Response:
        body = await request.json()
        sid = "CA" + secrets.token_hex(16)
        status, _ = await self.start_call(caller=body["from"], to=body["to"], sid=sid)
        return web.json_response(self._shown(sid) | {"hub_status": status})

    async def _sim_show(self, request: web.Request) -> web.Response:
        if request.match_info["call"] not in self.calls:
            return web.json_response({"error": "no such call"}, status=404)
        return web.json_response(self._shown(request.match_info["call"]))

    async def _sim_press(self, request: web.Request) -> web.Response:
        sid, body = request.match_info["call"], await request.json()
        if sid not in self.calls or self.calls[sid].gather_action is None:
            return web.json_response({"error": "the call is not at a menu"}, status=409)
        await self.press(sid, body.get("digits", ""), speech=body.get("speech", ""))
        return web.json_response(self._shown(sid))

    async def _sim_wait(self, request: web.Request) -> web.Response:
        sid = request.match_info["call"]
        if sid not in self.calls or self.calls[sid].wait_url is None:
            return web.json_response({"error": "the call is not waiting"}, status=409)
        root = ElementTree.fromstring(await self.hold_music(sid))  # noqa: S314  (the hub's TwiML)
        self.calls[sid].heard += [say.text or "" for say in root.iter("Say")]
        return web.json_response(self._shown(sid))

    async def _sim_hangup(self, request: web.Request) -> web.Response:
        sid = request.match_info["call"]
        if sid not in self.calls:
            return web.json_response({"error": "no such call"}, status=404)
        await self.hang_up(sid)
        return web.json_response(self._shown(sid))

    def _shown(self, sid: str) -> dict[str, Any]:
        call = self.calls[sid]
        conference = self.conference(call.conference or "")
        return {
            "sid": sid,
            "status": call.status,
            "heard": call.heard,
            "at_menu": call.gather_action is not None,
            "waiting": conference is not None and sid in conference.participants,
            "on_hold": call.hold,
            "with": [self.calls[s].to for s in conference.participants if s != sid]
            if conference
            else [],
        }

    # -- calls ringing, joining, leaving -------------------------------------------------------

    async def _ring(self, call: SimCall, conference: SimConference) -> None:
        await asyncio.sleep(self.ring_seconds)  # Twilio answers the request first, then dials
        await self._status(call, "initiated")
        await self._status(call, "ringing")
        outcome = self.answers.get(call.to)
        if outcome is not None:
            await self._status(call, outcome)
            return
        call.answered = time.monotonic()
        await self._status(call, "in-progress")
        await self._join(call, conference)

    async def _status(self, call: SimCall, status: str) -> None:
        call.status = status
        event = {"in-progress": "answered", "busy": "completed", "no-answer": "completed"}.get(
            status, status
        )
        if event in ("failed", "canceled"):
            event = "completed"
        if call.status_callback is None or event not in call.events:
            return
        params = {
            "CallSid": call.sid,
            "AccountSid": self._sim.account_sid,
            "From": call.from_,
            "To": call.to,
            "CallStatus": status,
            "Direction": call.direction,
            "ApiVersion": "2010-04-01",
            "CallbackSource": "call-progress-events",
        }
        if event == "completed":
            seconds = time.monotonic() - call.answered if call.answered else 0
            params["CallDuration"] = str(int(seconds))
        await self._sim.post_callback(call.status_callback, params)

    async def _join(self, call: SimCall, conference: SimConference) -> None:
        if call.sid in conference.participants:
            return  # the hub answered a retried webhook alike: the caller is in already
        call.conference = conference.sid
        conference.participants.append(call.sid)
        if call.start_on_enter and conference.status == "init":
            conference.status = "in-progress"
            conference.started = time.monotonic()
            await self._conference_event(conference, "conference-start", None)
        await self._conference_event(conference, "participant-join", call)

    async def hang_up(self, sid: str, *, duration: int | None = None) -> None:
        """The leg hangs up (or is removed): it leaves its conference, Twilio reports it."""
        call = self.calls[sid]
        if call.status in ("completed", "busy", "no-answer", "failed", "canceled"):
            return
        if duration is not None:
            call.answered = time.monotonic() - duration
        conference = self.conference(call.conference) if call.conference else None
        call.status = "completed"  # as Twilio has it by the time the conference says so
        if conference is not None and sid in conference.participants:
            conference.participants.remove(sid)
            await self._conference_event(conference, "participant-leave", call)
        await self._status(call, "completed")
        if conference is not None and call.end_on_exit and conference.status != "completed":
            await self._end_conference(conference)

    async def _end_conference(self, conference: SimConference) -> None:
        for sid in list(conference.participants):
            await self.hang_up(sid)
        if conference.status == "completed":
            return
        was_started = conference.status == "in-progress"
        conference.status = "completed"
        await self._conference_event(conference, "conference-end", None)
        if was_started and conference.record and conference.recording_callback:
            seconds = time.monotonic() - (conference.started or time.monotonic())
            url = self.record()
            params = {
                "AccountSid": self._sim.account_sid,
                "ConferenceSid": conference.sid,
                "RecordingSid": url.rsplit("/", 1)[1],
                "RecordingUrl": url,
                "RecordingDuration": str(int(seconds)),
                "RecordingChannels": "1",
                "RecordingSource": "Conference",
            }
            self._sim.spawn(self._recording_ready(conference.recording_callback, params))

    async def _conference_event(
        self, conference: SimConference, event: str, call: SimCall | None
    ) -> None:
        short = event.removeprefix("participant-").removeprefix("conference-")
        short = {"unhold": "hold", "unmute": "mute"}.get(short, short)  # one subscription each
        if conference.status_callback is None or short not in conference.events:
            return
        conference.sequence += 1
        params = {
            "AccountSid": self._sim.account_sid,
            "ConferenceSid": conference.sid,
            "FriendlyName": conference.name,
            "StatusCallbackEvent": event,
            "SequenceNumber": str(conference.sequence),
            "Timestamp": format_datetime(datetime.now(UTC)),
        }
        if call is not None:
            params |= {
                "CallSid": call.sid,
                "Muted": str(call.muted).lower(),
                "Hold": str(call.hold).lower(),
                "Coaching": str(call.coaching).lower(),
                "EndConferenceOnExit": str(call.end_on_exit).lower(),
                "StartConferenceOnEnter": str(call.start_on_enter).lower(),
            }
        if event in self.late_events:  # delivered after the conference's next event
            self.late_events.discard(event)
            self._late.append((conference.status_callback, params))
            return
        await self._sim.post_callback(conference.status_callback, params)
        while self._late:
            url, late = self._late.pop(0)
            await self._sim.post_callback(url, late)

    # -- playing the caller ------------------------------------------------------------------

    async def start_call(
        self, *, caller: str, to: str, sid: str, path: str | None = None
    ) -> tuple[int, str]:
        """Ring our number as a caller, then do what its TwiML says; its status and TwiML.

        The call goes where the number's voice URL says (its connection overrides, then its
        fallback URL), or to the hub's ``path`` when one is given. Its progress is reported
        only if the number has a status callback. Without valid TwiML the caller hears
        Twilio's application error and the call ends.
        """
        number = self._sim.account.number(to)
        call = self.calls.get(sid) or SimCall(
            sid=sid,
            from_=caller,
            to=to,
            direction="inbound",
            status="ringing",
            status_callback=number.status_callback,
        )
        self.calls[sid] = call
        params = self._call_params(call)
        if path is not None:
            status, twiml = await self._sim.post_to_hub(path, params)
        elif number.voice_url is None:
            status, twiml = 0, ""
        else:
            delivered = await self._sim.account.deliver(
                number.voice_url, params, fallback=number.voice_fallback_url
            )
            status, twiml = delivered.status, delivered.body
        if status == 200:
            call.status = "in-progress"
            call.answered = call.answered or time.monotonic()
            await self._obey(call, twiml)
        else:
            call.heard.append("An application error has occurred.")
            await self._status(call, "completed")
        return status, twiml

    async def press(self, sid: str, digits: str = "", *, speech: str = "") -> tuple[int, str]:
        """Answer the Gather the caller is at: keys, words, or (both empty) nothing."""
        call = self.calls[sid]
        action, call.gather_action = call.gather_action, None
        assert action is not None, f"{sid} is not at a Gather"
        params = self._call_params(call)
        if digits:
            params["Digits"] = digits
        if speech:
            params |= {"SpeechResult": speech, "Confidence": "0.92"}
        status, twiml = await self._sim.post_callback_for_answer(action, params)
        if status == 200:
            await self._obey(call, twiml)
        return status, twiml

    async def hold_music(self, sid: str) -> str:
        """What the caller hears while waiting: the waitUrl fetched with its waitMethod.

        As Twilio does, a wait request that fails ends the caller's Dial: the Dial's action
        is asked what next, and without one the call is hung up. The answer is "" then.
        """
        call = self.calls[sid]
        assert call.wait_url is not None, f"{sid} is not waiting in a conference"
        conference = self.conference(call.conference or "")
        params = self._call_params(call)
        if conference is not None:
            params |= {"ConferenceSid": conference.sid, "FriendlyName": conference.name}
        status, twiml = await self._sim.fetch(call.wait_url, call.wait_method, params)
        if status != 200:
            call.heard.append(f"(the wait music failed: {status})")
            await self._dial_ended(call, "failed")
            return ""
        return twiml

    async def on_hold(self, sid: str) -> str:
        """What a participant on hold hears: the holdUrl fetched with its holdMethod."""
        call = self.calls[sid]
        assert call.hold, f"{sid} is not on hold"
        assert call.hold_url is not None, f"{sid} has no holdUrl"
        params = self._call_params(call)
        status, twiml = await self._sim.fetch(call.hold_url, call.hold_method, params)
        return twiml if status == 200 else ""

    async def _dial_ended(self, call: SimCall, dial_status: str) -> None:
        """The caller's Dial is over while they are on the line: its action says what next."""
        conference = self.conference(call.conference) if call.conference else None
        if conference is not None and call.sid in conference.participants:
            conference.participants.remove(call.sid)
            await self._conference_event(conference, "participant-leave", call)
        call.conference, call.wait_url = None, None
        action, call.dial_action = call.dial_action, None
        if action is None:
            await self.hang_up(call.sid)  # no verb after the Dial: Twilio hangs up
            return
        params = self._call_params(call) | {"DialCallStatus": dial_status}
        status, twiml = await self._sim.post_callback_for_answer(action, params)
        if status == 200:
            await self._obey(call, twiml)
        else:
            await self.hang_up(call.sid)

    def _call_params(self, call: SimCall) -> dict[str, str]:
        return {
            "CallSid": call.sid,
            "AccountSid": self._sim.account_sid,
            "From": call.from_,
            "To": call.to,
            "CallStatus": call.status,
            "Direction": call.direction,
            "ApiVersion": "2010-04-01",
        }

    async def _obey(self, call: SimCall, twiml: str, depth: int = 0) -> None:
        """Carry out TwiML as Twilio would, up to the first verb that waits for something."""
        for verb in ElementTree.fromstring(twiml):  # noqa: S314  (the hub's own TwiML)
            if verb.tag == "Say":
                call.heard.append(verb.text or "")
            elif verb.tag == "Gather":
                call.heard += [(say.text or "") for say in verb.iter("Say")]
                call.gather_action = verb.get("action")
                return
            elif verb.tag == "Record":
                call.record_action = verb.get("action")
                call.record_callback = verb.get("recordingStatusCallback")
                return
            elif verb.tag == "Dial":
                room = verb.find("Conference")
                call.dial_action = verb.get("action")
                if room is not None and room.text:
                    await self._enter(call, room)
                return
            elif verb.tag == "Redirect" and verb.text and depth < 5:
                status, answer = await self._sim.post_callback_for_answer(
                    verb.text, self._call_params(call)
                )
                if status == 200:
                    await self._obey(call, answer, depth + 1)
                return
            elif verb.tag == "Hangup":
                await self.hang_up(call.sid)
                return

    async def _enter(self, call: SimCall, room: ElementTree.Element) -> None:
        name = room.text or ""
        conference = self.conference(name)
        if conference is None or conference.status == "completed":
            conference = self._new_conference(name)
        if conference.status_callback is None and room.get("statusCallback"):
            conference.status_callback = room.get("statusCallback")
            conference.events = _events((room.get("statusCallbackEvent") or "").split())
        if room.get("record") == "record-from-start":
            conference.record = True
            conference.recording_callback = room.get("recordingStatusCallback")
        call.start_on_enter = room.get("startConferenceOnEnter", "true") == "true"
        call.end_on_exit = room.get("endConferenceOnExit", "false") == "true"
        call.wait_url = room.get("waitUrl")
        call.wait_method = room.get("waitMethod") or "POST"
        await self._join(call, conference)

    async def leave_voicemail(self, *, sid: str, seconds: int) -> tuple[int, str]:
        """The caller records a message at the Record verb: Twilio posts it to its action."""
        call = self.calls[sid]
        action, call.record_action = call.record_action, None
        assert action is not None, f"{sid} is not at a Record"
        url = self.record()
        params = self._call_params(call) | {
            "RecordingUrl": url,
            "RecordingDuration": str(seconds),
            "RecordingSid": url.rsplit("/", 1)[1],
        }
        if call.record_callback:
            callback = {
                k: params[k] for k in ("AccountSid", "CallSid", "RecordingSid", "RecordingUrl")
            }
            callback |= {
                "RecordingDuration": str(seconds),
                "RecordingChannels": "1",
                "RecordingSource": "RecordVerb",
            }
            self._sim.spawn(self._recording_ready(call.record_callback, callback))
        status, twiml = await self._sim.post_callback_for_answer(action, params)
        if status == 200:
            await self._obey(call, twiml)
        return status, twiml

    async def end_call(self, *, sid: str, duration: int = 0) -> None:
        """The caller hangs up; Twilio reports it (and the conference goes on without them)."""
        await self.hang_up(sid, duration=duration)

    async def settle(self) -> None:
        """Wait until every callback in flight has been delivered."""
        await self._sim.settle()


def _events(names: list[str]) -> frozenset[str]:
    """Conference event names as Twilio takes them: start end join leave mute hold ..."""
    return frozenset(" ".join(names).split())


def _true(value: str | None) -> bool:
    return (value or "").lower() == "true"


def _error(code: int, message: str, status: int) -> web.Response:
    return web.json_response({"code": code, "message": message, "status": status}, status=status)
