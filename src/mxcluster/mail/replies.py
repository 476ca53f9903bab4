"""SMTP replies the listeners send, as named constants.

Each name carries the basic code; the text carries the enhanced status code (RFC 3463)
so that a client's log tells the operator what happened and what to do.
"""

from __future__ import annotations

#: The message is on disk (fsync) in the queue; the client may forget it.
QUEUED = "250 2.0.0 Ok: queued as {mid}"
#: The sender is accepted for this transaction.
SENDER_OK = "250 2.1.0 Sender ok"
#: The recipient is accepted (within the listener's policy).
RECIPIENT_OK = "250 2.1.5 Recipient ok"
#: The recipient is outside the listener's policy: not a RAT domain on a public
#: listener, or a client outside relay_from on a private one, or in reject_from.
RELAY_DENIED_550 = "550 5.7.1 Relaying denied"
#: Too many recipients in this message (listener max_recipients); the client
#: should send the remaining recipients in another transaction (RFC 5321 §4.5.3.1.8).
TOO_MANY_RECIPIENTS_452 = "452 4.5.3 Too many recipients"
#: The message exceeds the listener's max_message_bytes.
MESSAGE_TOO_BIG_552 = "552 5.3.4 Message size exceeds fixed maximum message size"
#: Free disk in the data directory is below the safety margin; try later.
DISK_FULL_452 = "452 4.3.1 Insufficient system storage"
#: The queue could not store the message (I/O error); try later.
QUEUE_ERROR_451 = "451 4.3.0 Local error in processing"
#: The listener is at max_connections or the client at max_connections_per_ip.
TOO_MANY_CONNECTIONS_421 = "421 4.7.0 {host} Too many connections, try again later"
#: The listener is being suspended or removed; the client should retry later.
SHUTTING_DOWN_421 = "421 4.3.2 {host} Service shutting down, try again later"
#: The session was idle, or open, for longer than allowed.
TIMEOUT_421 = "421 4.4.2 {host} Session timed out"
#: A line of the message exceeds 1000 octets (RFC 5321 §4.5.3.1.6).
LINE_TOO_LONG_500 = "500 5.5.2 Line too long (RFC 5321 4.5.3.1.6)"
#: A command line exceeds 512 octets (RFC 5321 §4.5.3.1.4).
COMMAND_TOO_LONG_500 = "500 5.5.2 Command line too long (RFC 5321 4.5.3.1.4)"
#: STARTTLS is required on this listener before MAIL.
TLS_REQUIRED_530 = "530 5.7.0 Must issue a STARTTLS command first"

#: aiosmtpd's built-in reply texts that we replace by the constants above.
REWRITES: dict[str, str] = {
    "552 Error: Too much mail data": MESSAGE_TOO_BIG_552,
    "552 Error: message size exceeds fixed maximum message size": MESSAGE_TOO_BIG_552,
    "500 Line too long (see RFC5321 4.5.3.1.6)": LINE_TOO_LONG_500,
    "500 Command line too long": COMMAND_TOO_LONG_500,
    "530 Must issue a STARTTLS command first": TLS_REQUIRED_530,
}
