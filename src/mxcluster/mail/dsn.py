"""Delivery status notifications (bounces), RFC 3464; pure."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid

#: How much of the original message a bounce looks at to quote its headers.
QUOTE_BYTES = 64 * 1024


def original_headers(raw: bytes) -> bytes:
    """The header section of a raw message."""
    end = raw.find(b"\r\n\r\n")
    return raw if end < 0 else raw[: end + 2]


def status_code(reason: str) -> str:
    """The enhanced status code in an SMTP reply text (``550 5.1.1 ...`` -> ``5.1.1``)."""
    parts = reason.split(" ", 2)
    if len(parts) > 1 and parts[1][:1] in "245" and parts[1].count(".") == 2:
        return parts[1]
    return "5.0.0"


def build_dsn(hostname: str, mid: str, sender: str, failures: Sequence[tuple[str, str]],
              raw: bytes, when: float) -> bytes:
    """A multipart/report bounce to SENDER for FAILURES [(recipient, reason)]."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{hostname}>"
    report["To"] = sender
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Date"] = formatdate(when)
    report["Message-ID"] = make_msgid(domain=hostname)
    report["Auto-Submitted"] = "auto-replied"
    lines = "\n".join(f"  <{rcpt}>: {reason}" for rcpt, reason in failures)
    report.attach(MIMEText(
        f"This is the mail system at host {hostname}.\n\n"
        f"Your message (queue id {mid}) could not be delivered to:\n\n{lines}\n"
    ))
    status = MIMEBase("message", "delivery-status")
    blocks: list[Message | str] = [_block({"Reporting-MTA": f"dns; {hostname}", "X-Queue-ID": mid})]
    blocks += [_per_recipient(rcpt, reason) for rcpt, reason in failures]
    status.set_payload(blocks)
    report.attach(status)
    headers = MIMEBase("text", "rfc822-headers")
    headers.set_payload(original_headers(raw[:QUOTE_BYTES]).decode("ascii", "replace"))
    report.attach(headers)
    return report.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _block(fields: dict[str, str]) -> Message:
    block = Message()
    for name, value in fields.items():
        block[name] = value
    return block


def _per_recipient(rcpt: str, reason: str) -> Message:
    return _block({"Final-Recipient": f"rfc822; {rcpt}", "Action": "failed",
                   "Status": status_code(reason), "Diagnostic-Code": f"smtp; {reason}"})
