"""Fax documents: what they are, their pages as pictures, the text on them, and new ones.

PDF pages are drawn with PDFium (pypdfium2), TIFF pages (a fax's classic multi-page G3/G4
TIFF) with Pillow. The text is read by Tesseract (Debian's ``tesseract-ocr``, a process per
page, languages from ``fax.ocr_languages``), off the request path. Everything here blocks, so
callers run it in a worker thread (or, for Tesseract, as a subprocess).
"""

from __future__ import annotations

import asyncio
import io
import shutil
import textwrap
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pypdfium2
from PIL import Image, ImageDraw, ImageFont, ImageSequence

from hub.errors import ValidationError

PDF = "application/pdf"
TIFF = "image/tiff"
THUMBNAIL_WIDTH = 480
OCR_DPI = 200  # fine fax resolution is 204 x 196 dpi: enough for Tesseract
MAX_PAGES = 200
# Fonts the rendered fax uses: a CJK one when the text needs it (Debian's fonts-wqy-zenhei).
FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
)


@dataclass(frozen=True, slots=True)
class Page:
    """One page: its thumbnail and the full-size picture Tesseract reads."""

    number: int
    thumbnail: Path
    image: Path


def kind_of(data: bytes) -> str:
    """PDF or TIFF, by the file's first bytes (ValidationError for anything else)."""
    if data.startswith(b"%PDF-"):
        return PDF
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return TIFF
    raise ValidationError("a fax document is a PDF or a TIFF")


def pages(data: bytes, folder: Path) -> list[Page]:
    """Draw every page (at most MAX_PAGES) into folder: thumbnails and OCR-size pictures."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn: list[Image.Image] = []
    if kind_of(data) == PDF:
        document = pypdfium2.PdfDocument(data)
        try:
            for index in range(min(len(document), MAX_PAGES)):
                page = document[index]
                drawn.append(page.render(scale=OCR_DPI / 72).to_pil().convert("L"))
                page.close()
        finally:
            document.close()
    else:
        with Image.open(io.BytesIO(data)) as tiff:
            for frame in ImageSequence.Iterator(tiff):
                if len(drawn) == MAX_PAGES:
                    break
                drawn.append(_upright(frame.copy()).convert("L"))
    found = []
    for number, image in enumerate(drawn, start=1):
        full = folder / f"page-{number}.png"
        image.save(full)
        small = image.copy()
        small.thumbnail((THUMBNAIL_WIDTH, THUMBNAIL_WIDTH * 2))
        thumbnail = folder / f"page-{number}-thumb.png"
        small.save(thumbnail)
        found.append(Page(number, thumbnail, full))
    if not found:
        raise ValidationError("the fax document has no pages")
    return found


def _upright(frame: Image.Image) -> Image.Image:
    """Fax TIFFs are often 204 x 98 dpi (standard resolution): stretch them to square pixels."""
    dpi = frame.info.get("dpi")
    if isinstance(dpi, tuple) and len(dpi) == 2 and dpi[0] and dpi[1] and dpi[0] > dpi[1] * 1.5:
        width, height = frame.size
        return frame.resize((width, round(height * dpi[0] / dpi[1])))
    return frame


def tesseract_available() -> bool:
    """Whether Tesseract is installed (scripts/ensure-services installs it)."""
    return shutil.which("tesseract") is not None


async def read_text(image: Path, languages: list[str], *, seconds: float = 120) -> str:
    """The text Tesseract reads on a page picture (TimeoutError after seconds)."""
    # One thread each: Tesseract's OpenMP threads cost more than they give (measured here at
    # twice the time a page), so the hub runs one single-threaded process per core instead.
    program = shutil.which("tesseract")
    if program is None:
        raise RuntimeError("tesseract is not installed")
    process = await asyncio.create_subprocess_exec(
        program,
        str(image),
        "stdout",
        "-l",
        "+".join(languages) or "eng",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"OMP_THREAD_LIMIT": "1", "LC_ALL": "C.UTF-8"},
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        raise RuntimeError(err.decode(errors="replace").strip() or "tesseract failed")
    return _tidy(out.decode("utf-8", errors="replace"))


def _tidy(text: str) -> str:
    """Tesseract's text with blank runs squeezed, and the spaces it puts between CJK glyphs out."""
    lines = []
    for line in text.splitlines():
        out = ""
        for index, char in enumerate(line):
            between = 0 < index < len(line) - 1
            if char == " " and between and _wide(line[index - 1]) and _wide(line[index + 1]):
                continue
            out += char
        lines.append(out.rstrip())
    squeezed: list[str] = []
    for line in lines:
        if line or (squeezed and squeezed[-1]):
            squeezed.append(line)
    return "\n".join(squeezed).strip()


def _wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def render_text(text: str, *, title: str | None = None) -> bytes:
    """A fax of plain text: A4 pages at 150 dpi, as a PDF (Pillow), CJK included."""
    width, height, margin = 1240, 1754, 110
    font_path = next((f for f in FONTS if f.exists()), None)
    size = 30
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont = (
        ImageFont.truetype(str(font_path), size) if font_path else ImageFont.load_default()
    )
    wide = any(_wide(c) for c in text)
    per_line = 34 if wide else 68
    lines: list[str] = []
    if title:
        lines += [title, ""]
    for paragraph in text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, per_line) or [""]
    per_page = (height - 2 * margin) // (size + 14)
    images = []
    for first in range(0, max(1, len(lines)), per_page):
        page = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(page)
        for row, line in enumerate(lines[first : first + per_page]):
            draw.text((margin, margin + row * (size + 14)), line, fill=0, font=font)
        images.append(page)
    out = io.BytesIO()
    images[0].save(out, "PDF", resolution=150.0, save_all=True, append_images=images[1:])
    return out.getvalue()


def page_count(data: bytes) -> int:
    """How many pages a PDF or TIFF has."""
    if kind_of(data) == PDF:
        document = pypdfium2.PdfDocument(data)
        try:
            return len(document)
        finally:
            document.close()
    with Image.open(io.BytesIO(data)) as tiff:
        return int(getattr(tiff, "n_frames", 1))
