"""Machines' messages are recognised from their headers before any body is read (RFC 3834)."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from mailer import headers


def message(**fields: str) -> EmailMessage:
    result = EmailMessage()
    result["From"] = fields.pop("From", "Aïcha <aicha@asso.example>")
    result["Subject"] = fields.pop("Subject", "Re: Plan ESS")
    for name, value in fields.items():
        result[name.replace("_", "-")] = value
    result.set_content("F1 oui")
    return result


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"Auto_Submitted": "auto-replied"}, "auto-submitted"),
        ({"Auto_Submitted": "auto-generated; owner-email=x@y.z"}, "auto-submitted"),
        ({"Return_Path": "<>"}, "empty return path"),
        ({"Precedence": "bulk"}, "precedence bulk"),
        ({"Precedence": "junk"}, "precedence junk"),
        ({"Precedence": "list"}, "precedence list"),
        ({"Precedence": "auto_reply"}, "precedence auto_reply"),
        ({"X_Autoreply": "yes"}, "x-autoreply"),
        ({"From": "MAILER-DAEMON@mx.example"}, "mailer daemon"),
        ({"From": "no-reply@service.example"}, "no-reply sender"),
        ({"Subject": "Réponse automatique : Plan ESS"}, "out-of-office subject"),
        ({"Subject": "Absent du bureau jusqu'au 13 mars"}, "out-of-office subject"),
        ({"Subject": "Automatic reply: Plan ESS"}, "out-of-office subject"),
        ({"Subject": "Out of Office: back on Monday"}, "out-of-office subject"),
    ],
)
def test_automatic_messages_are_recognised(fields, reason) -> None:
    assert headers.auto_reply_reason(message(**fields)) == reason


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"Auto_Submitted": "no"},
        {"Return_Path": "<aicha@asso.example>"},
        {"Subject": "Re: absence de soutien aux coopératives"},
        {"Subject": "Re: Out of the box idea for F3"},
    ],
)
def test_people_s_replies_are_not_mistaken_for_machines(fields) -> None:
    assert headers.auto_reply_reason(message(**fields)) is None


def test_a_multipart_report_is_a_bounce_and_a_plain_reply_is_not() -> None:
    report = EmailMessage()
    report["From"] = "postmaster@mx.example"
    report.set_content("delivery failed")
    report.make_mixed()
    report.replace_header("Content-Type", 'multipart/report; report-type="delivery-status"')
    assert headers.is_bounce(report)
    assert not headers.is_bounce(message())


def test_list_headers(tmp_path) -> None:
    from tests.mailer.conftest import mail_config

    config = mail_config(tmp_path, public_url="https://palabre.mairie.example/")
    assert headers.list_id(config, "ess-2026", 'Plan "ESS"') == (
        "\"Plan 'ESS'\" <ess-2026.mairie.example>"
    )
    value, one_click = headers.list_unsubscribe(
        config, mailto_address="reply+k.s@mairie.example", unsubscribe_token="k.s"
    )
    assert value == (
        "<mailto:reply+k.s@mairie.example?subject=unsubscribe>, "
        "<https://palabre.mairie.example/email/unsubscribe/k.s>"
    )
    assert one_click
