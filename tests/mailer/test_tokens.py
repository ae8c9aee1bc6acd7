"""Reply addresses are signed: only the address Palabre wrote names a person."""

from __future__ import annotations

from email.message import EmailMessage

from mailer import tokens
from tests.mailer.conftest import mail_config


def test_a_reply_address_carries_the_key_and_a_signature_that_verifies(tmp_path) -> None:
    config = mail_config(tmp_path)
    address = tokens.reply_address(config, "1ca9aea6fa18085d6fb9")
    assert address.startswith("reply+1ca9aea6fa18085d6fb9.")
    assert address.endswith("@mairie.example")
    token = tokens.parse(config, address)
    assert token is not None and token.key == "1ca9aea6fa18085d6fb9" and token.purpose == "reply"


def test_relays_that_lower_case_or_use_a_dot_separator_do_not_break_the_token(tmp_path) -> None:
    config = mail_config(tmp_path)
    address = tokens.reply_address(config, "00aa11bb22cc33dd44ee")
    assert tokens.parse(config, address.upper()) is not None
    dotted = address.replace("reply+", "reply.", 1)
    assert tokens.parse(config, dotted) is not None
    plus_between = dotted.replace("ee.", "ee+", 1)
    assert tokens.parse(config, plus_between) is not None


def test_a_forged_signature_another_secret_or_another_base_is_refused(tmp_path) -> None:
    config = mail_config(tmp_path)
    address = tokens.reply_address(config, "00aa11bb22cc33dd44ee")
    local, domain = address.split("@")
    forged = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + domain
    assert tokens.parse(config, forged) is None
    other = mail_config(tmp_path, secret_key="another-secret-entirely-0123456789")
    assert tokens.parse(other, address) is None
    assert tokens.parse(config, address.replace("reply+", "noreply+")) is None
    # Another person's key with this person's signature.
    assert tokens.parse(config, address.replace("00aa11", "00aa12")) is None


def test_a_bounce_address_cannot_be_used_as_a_reply_address(tmp_path) -> None:
    config = mail_config(tmp_path)
    verp = tokens.verp_address(config, "00aa11bb22cc33dd44ee")
    assert verp.startswith("reply+verp-00aa11bb22cc33dd44ee.")
    assert tokens.parse(config, verp).purpose == "verp"
    reply_sig = tokens.reply_address(config, "00aa11bb22cc33dd44ee").split(".")[1].split("@")[0]
    as_reply = f"reply+00aa11bb22cc33dd44ee.{verp.split('.')[1].split('@')[0]}@mairie.example"
    assert tokens.parse(config, as_reply) is None
    assert reply_sig != verp.split(".")[1].split("@")[0]


def test_the_token_is_found_in_delivered_to_even_when_to_is_a_list(tmp_path) -> None:
    config = mail_config(tmp_path)
    address = tokens.reply_address(config, "00aa11bb22cc33dd44ee")
    message = EmailMessage()
    message["To"] = "Plan ESS <ess@mairie.example>, Bob <bob@example.org>"
    message["Delivered-To"] = address
    assert tokens.find_token(config, message).key == "00aa11bb22cc33dd44ee"
    message = EmailMessage()
    message["X-Original-To"] = address
    assert tokens.find_token(config, message) is not None


def test_unsubscribe_tokens_verify_and_resist_tampering(tmp_path) -> None:
    config = mail_config(tmp_path)
    token = tokens.unsubscribe_token(config, "00aa11bb22cc33dd44ee")
    assert tokens.verify_unsubscribe_token(config, token) == "00aa11bb22cc33dd44ee"
    assert tokens.verify_unsubscribe_token(config, token[:-1] + "x") is None
    assert tokens.verify_unsubscribe_token(config, "garbage") is None
