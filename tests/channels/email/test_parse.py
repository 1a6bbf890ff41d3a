"""The corpus of real-world-shaped mail, read right: charsets, bodies, attachments, noise."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.channels.email.parse import (
    Noise,
    ParsedEmail,
    UnreadableEmail,
    decode_text,
    normalize_subject,
    parse_email,
)

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> ParsedEmail:
    return parse_email((FIXTURES / name).read_bytes())


@pytest.mark.parametrize(
    ("name", "sender", "subject", "text"),
    [
        ("gb2312.eml", "王小明", "关于朱镕基的订单", "请帮忙查一下。朱镕基"),  # 镕: GBK, not GB2312
        ("big5.eml", "陳大文", "查詢訂單", "係咪寄咗㗎？"),  # 㗎: HKSCS, not Big5
        ("shift_jis.eml", "髙橋 一郎", "注文について", "注文番号①の件"),  # ①, 髙: cp932
        ("iso2022jp.eml", "鈴木花子", "商品が届きません", "商品が届いていません。"),
        (
            "central_european.eml",
            "Paweł Zieliński",
            "Dotaz na objednávku č. 42",
            "Zażółć gęślą jaźń",
        ),
        ("outlook_reply.eml", "Müller, Hans", "RE: Order 1234", "that’s fine – please"),
        ("gmail_reply.eml", "Ann Lee", "Re: Your replacement", "arrived today 🎉"),
        ("apple_mail_reply.eml", "Zoë Martin", "Re: Broken lid", "— Zoë"),
        ("raw_utf8_headers.eml", "Jörg Ørsted", "Bestilling – hvor er min pakke?", "på min pakke"),
    ],
)
def test_every_charset_real_mail_uses_reads_right(
    name: str, sender: str, subject: str, text: str
) -> None:
    parsed = fixture(name)
    assert parsed.sender is not None
    assert parsed.sender.name == sender
    assert parsed.subject == subject
    assert text in parsed.text
    assert "\ufffd" not in parsed.text + parsed.subject + sender
    assert parsed.noise is None


def test_replies_carry_their_thread_ids() -> None:
    outlook = fixture("outlook_reply.eml")
    assert (
        outlook.message_id == "<AM0PR07MB4417A1B2C3D4E5F6@AM0PR07MB4417.eurprd07.prod.outlook.com>"
    )
    assert outlook.in_reply_to == "<hub.1.5f3a@hub.example.com>"
    assert outlook.sender is not None
    assert outlook.sender.email == "Hans.Mueller@example.de"  # the domain is folded, not the user
    gmail = fixture("gmail_reply.eml")
    assert gmail.references == ("<CAF=aB1c2D3e@mail.gmail.com>", "<hub.2.77aa@hub.example.com>")
    assert gmail.delivered_to == ("support@hub.example.com",)


def test_html_is_sanitized_for_display_and_kept_as_text_for_search() -> None:
    outlook = fixture("outlook_reply.eml")
    assert outlook.html is not None
    assert "<script" not in outlook.html
    assert "alert" not in outlook.html
    assert "<p>Regards<br>Hans</p>" in outlook.html
    gmail = fixture("gmail_reply.eml")
    assert gmail.html is not None
    assert "onclick" not in gmail.html
    html_only = fixture("attachment_rfc2231.eml")
    assert html_only.text == "Please find the invoice attached."
    assert html_only.html is not None
    assert "onerror" not in html_only.html


def test_attachments_and_inline_images_are_kept() -> None:
    invoice = fixture("attachment_rfc2231.eml")
    [pdf] = invoice.attachments
    assert (pdf.filename, pdf.content_type, pdf.inline) == (
        "račun št. 42.pdf",
        "application/pdf",
        False,
    )
    assert pdf.data.startswith(b"%PDF-1.4")
    apple = fixture("apple_mail_reply.eml")
    [image] = apple.attachments
    assert image.inline
    assert image.content_id == "4E0A7C2B-1D3F-4B5A-9C8E-2F1A0B3C4D5E"
    assert image.data.startswith(b"\x89PNG")
    assert apple.html is not None
    assert 'src="cid:4E0A7C2B-1D3F-4B5A-9C8E-2F1A0B3C4D5E"' in apple.html
    mixed = fixture("central_european.eml")
    [russian] = mixed.attachments
    assert decode_text(russian.data, "windows-1251") == "Здравствуйте, где мой заказ?"


def test_noise_is_told_apart() -> None:
    ooo = fixture("out_of_office.eml")
    assert ooo.noise is Noise.AUTO_REPLY
    assert ooo.noise_reason == "Auto-Submitted: auto-replied"
    assert fixture("mailing_list.eml").noise is Noise.BULK
    bounce = fixture("dsn_bounce.eml")
    assert bounce.noise is Noise.BOUNCE
    assert bounce.bounce is not None
    assert bounce.bounce.recipients == ("nobody@example.net",)
    assert (bounce.bounce.action, bounce.bounce.status) == ("failed", "5.1.1")
    assert bounce.bounce.original_message_id == "<hub.9.dead@hub.example.com>"
    assert "User unknown" in (bounce.bounce.diagnostic or "")


def test_a_message_without_an_id_gets_a_stable_one() -> None:
    once, again = fixture("no_message_id.eml"), fixture("no_message_id.eml")
    assert once.message_id == again.message_id
    assert once.message_id.endswith("@hub.invalid>")
    other = parse_email((FIXTURES / "no_message_id.eml").read_bytes() + b"P.S.\r\n")
    assert other.message_id != once.message_id


def test_a_message_nobody_sent_is_unreadable() -> None:
    with pytest.raises(UnreadableEmail, match="no From"):
        parse_email(b"Subject: hello\r\n\r\nbody\r\n")


@pytest.mark.parametrize(
    ("subject", "normalized"),
    [
        ("Re: Order 1234", "order 1234"),
        ("RE: AW: Fwd: Order 1234", "order 1234"),
        ("WG: SV: VS: order   1234", "order 1234"),
        ("回复：转发：订单问题", "订单问题"),
        ("答复: 订单问题", "订单问题"),
        ("Re[2]: [support] Re: Order 1234", "order 1234"),
        ("Order 1234", "order 1234"),
        ("Regarding the order", "regarding the order"),  # "Re" only as a prefix with a colon
    ],
)
def test_subjects_normalize_across_languages(subject: str, normalized: str) -> None:
    assert normalize_subject(subject) == normalized
