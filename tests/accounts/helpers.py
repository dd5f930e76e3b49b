"""What the accounts tests share: reading the links out of mail a real SMTP server took."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.message import Message

LINK = re.compile(r"https?://[^\s<>\"]+")


def messages_to(mailbox, address: str) -> list[Message]:
    found = []
    for envelope in mailbox.envelopes:
        if address in envelope.rcpt_tos:
            found.append(message_from_bytes(envelope.content))
    return found


def body_of(message: Message) -> str:
    if message.is_multipart():
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                return part.get_payload(decode=True).decode()
    return message.get_payload(decode=True).decode()


def link_in(message: Message, contains: str) -> str:
    links = [link for link in LINK.findall(body_of(message)) if contains in link]
    assert links, f"no link with {contains!r} in: {body_of(message)}"
    return links[0]
