"""A hub with the fax channel, the Telnyx simulator pointed at it, and real fax documents."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image, ImageDraw, ImageFont

from hub.agent_console.app import build_app
from hub.bootstrap import Hub, build_hub
from hub.channels.fax import FaxChannel
from hub.channels.fax.documents import FONTS, tesseract_available
from hub.config import FaxSettings, Settings
from hub.dev.telnyx_sim import TelnyxSimulator
from tests.conftest import FrozenClock

API_KEY = "KEY0123456789ABCDEF"
OUR_FAX = "+14155550999"
CUSTOMER_FAX = "+14155550177"

needs_tesseract = pytest.mark.skipif(
    not tesseract_available(), reason="needs Tesseract (scripts/ensure-services installs it)"
)


@pytest.fixture
async def telnyx(clock: FrozenClock) -> AsyncIterator[TelnyxSimulator]:
    simulator = TelnyxSimulator(api_key=API_KEY, hub_url="", clock=lambda: clock().timestamp())
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, telnyx: TelnyxSimulator) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=str(tmp_path / "data"),
        log_level="WARNING",
        fax=FaxSettings(
            provider="telnyx",
            api_key=API_KEY,  # type: ignore[arg-type]
            public_key=telnyx.public_key,
            api_base_url=telnyx.base,
            connection_id="sim-connection",
            numbers={OUR_FAX: "support"},
            retry_seconds=0.2,
        ),
    )


@pytest.fixture
async def fax_hub(settings: Settings, clock: FrozenClock) -> Hub:
    """The hub; the app's cleanup (client fixture) stops it."""
    return await build_hub(settings, run_migrations=False, clock=clock)


@pytest.fixture
async def client(fax_hub: Hub, telnyx: TelnyxSimulator) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_app(fax_hub))) as client:
        base = str(client.make_url("")).rstrip("/")
        telnyx.hub_url = base  # where the simulator's webhooks go
        fax_hub.settings.public_url = base  # where the simulator fetches documents
        channel(fax_hub).provider.backoff_seconds = 0.01  # type: ignore[union-attr]
        yield client


def channel(hub: Hub) -> FaxChannel:
    return next(c for c in hub.channels if isinstance(c, FaxChannel))


def _font(size: int) -> ImageFont.FreeTypeFont:
    found = next(f for f in FONTS if f.exists())
    return ImageFont.truetype(str(found), size)


def page(lines: list[str], *, size: tuple[int, int] = (1240, 900)) -> Image.Image:
    """A fax page: black text on white, large enough for OCR (150 dpi A4 width)."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((80, 80 + row * 70), line, fill=0, font=_font(44))
    return image


def pdf_of(*pages: Image.Image) -> bytes:
    out = io.BytesIO()
    pages[0].save(out, "PDF", resolution=150.0, save_all=True, append_images=list(pages[1:]))
    return out.getvalue()


def tiff_of(*pages: Image.Image) -> bytes:
    """A multi-page fax TIFF: bilevel, CCITT Group 4, as fax machines send."""
    out = io.BytesIO()
    bilevel = [p.convert("1") for p in pages]
    bilevel[0].save(
        out, "TIFF", compression="group4", save_all=True, append_images=bilevel[1:], dpi=(200, 200)
    )
    return out.getvalue()
