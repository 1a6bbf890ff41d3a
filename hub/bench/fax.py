"""`hub bench fax`: webhooks answered while documents are read behind them, and pages read.

The hub runs in this process on a scratch database like the configured one, with the fax
channel pointed at the Telnyx simulator. ``faxes`` faxes of ``pages`` pages each (A4 pages of
English and Chinese text drawn with Pillow, as a PDF) arrive one after another as signed
``fax.received`` webhooks. The figures: how long the hub took to answer each webhook (stored,
committed; the document is fetched and read after), and how long until every fax was read
(pages drawn, thumbnails kept, Tesseract done), so pages read per second.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from hub.agent_console.app import build_app
from hub.bench.figures import percentile, serve_app
from hub.bootstrap import build_hub
from hub.channels.fax import FaxChannel
from hub.channels.fax.documents import FONTS, tesseract_available
from hub.config import FaxSettings, Settings
from hub.crm_store.scratch import scratch_database
from hub.dev.telnyx_sim import TelnyxSimulator

OURS = "+14155550999"
# A page of ordinary prose (rows of one repeated shape read as a table, which is not a fax).
PROSE = [
    "Dear Sir or Madam, please find our order for the spring season below.",
    "We would like the teapots delivered to the north warehouse by Friday.",
    "The invoice should name our purchase order, or our accounts team",
    "cannot pay it. If anything is out of stock, call me before shipping.",
    "订单中的茶壶请在周五之前送到北仓库。",
    "如有缺货，请在发货前给我打电话。",
    "Item 1: blue teapot, large, 12 pieces",
    "Item 2: white teapot, small, 12 pieces",
    "Thank you for your help, and kind regards from the whole team.",
]


def _document(pages: int, n: int) -> bytes:
    font_path = next((f for f in FONTS if f.exists()), None)
    font = ImageFont.truetype(str(font_path), 36) if font_path else ImageFont.load_default()
    drawn = []
    for number in range(1, pages + 1):
        image = Image.new("L", (1240, 1754), 255)
        draw = ImageDraw.Draw(image)
        lines = [f"Fax {n}, page {number}", "Purchase order 4411: 24 teapots", "请尽快发货，谢谢。"]
        lines += PROSE
        for row, line in enumerate(lines):
            draw.text((100, 100 + row * 60), line, fill=0, font=font)
        drawn.append(image)
    out = io.BytesIO()
    drawn[0].save(out, "PDF", resolution=150.0, save_all=True, append_images=drawn[1:])
    return out.getvalue()


async def run_fax_bench(
    settings: Settings, *, faxes: int, pages: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Start the hub and the simulator, send the faxes, return the figures."""
    if not tesseract_available():
        raise RuntimeError("Tesseract is not installed (scripts/ensure-services installs it)")
    result: dict[str, Any] = {"faxes": faxes, "pages_each": pages}
    simulator = TelnyxSimulator(api_key="bench", hub_url="")
    await simulator.start()
    fax = FaxSettings(
        provider="telnyx",
        api_key="bench",
        public_key=simulator.public_key,
        api_base_url=simulator.base,
        connection_id="bench",
        numbers={OURS: settings.default_team},
    )
    try:
        async with scratch_database(settings.database_url, prefix="hub_bench_fax") as url:
            changes = {"database_url": url, "log_level": "WARNING", "fax": fax}
            hub = await build_hub(settings.model_copy(update=changes))
            result["database"] = hub.store.dialect
            runner, base = await serve_app(build_app(hub))
            simulator.hub_url = base
            channel = next(c for c in hub.channels if isinstance(c, FaxChannel))
            try:
                progress(f"drawing {faxes} faxes of {pages} pages")
                documents = [await asyncio.to_thread(_document, pages, n) for n in range(faxes)]
                answers: list[float] = []
                started = time.perf_counter()
                ids = []
                for document in documents:
                    sent = time.perf_counter()
                    status, fax_id = await simulator.receive_fax(
                        sender="+14155550177", to=OURS, document=document
                    )
                    answers.append(time.perf_counter() - sent)
                    assert status == 200, status
                    ids.append(fax_id)
                progress("waiting for every fax to be read")
                deadline = time.perf_counter() + 60 * faxes * pages
                while time.perf_counter() < deadline:
                    async with hub.store.unit_of_work() as uow:
                        events = [await uow.timeline.by_provider_ref("telnyx", i) for i in ids]
                    if all(e is not None and "ocr" in e.data for e in events):
                        break
                    await asyncio.sleep(0.1)
                read_seconds = time.perf_counter() - started
                read = [e for e in events if e is not None and e.data["ocr"]["status"] == "read"]
                result |= {
                    "webhook_p50_ms": round(percentile(answers, 0.5) * 1000, 1),
                    "webhook_p99_ms": round(percentile(answers, 0.99) * 1000, 1),
                    "all_read_seconds": round(read_seconds, 1),
                    "pages_read_per_second": round(faxes * pages / read_seconds, 2),
                    "faxes_read": len(read),
                    "ocr_languages": channel.settings.fax.ocr_languages,
                }
            finally:
                await runner.cleanup()
    finally:
        await simulator.stop()
    return result
