"""Global Unsubscribe entries: the accepted forms and what each one matches (SPEC §2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxcluster.errors import ValidationError
from mxcluster.unsubscribe import candidates, normalise, read_entries


def matches(entry: str, recipient: str, next_hop: str | None = None) -> bool:
    """Whether ENTRY would unsubscribe RECIPIENT (the store probes exactly the candidates)."""
    return normalise(entry) in candidates(recipient, next_hop)


# (entry, recipient, next hop IP or None, should match)
CASES = [
    # user@domain: exactly that address
    ("bob@example.com", "bob@example.com", None, True),
    ("bob@example.com", "BOB@Example.COM", None, True),
    ("Bob@EXAMPLE.com", "bob@example.com", None, True),
    ("bob@example.com", "<bob@example.com>", None, True),
    ("bob@example.com", "alice@example.com", None, False),
    ("bob@example.com", "bob@sub.example.com", None, False),
    ("bob@example.com", "bob@example.org", None, False),
    # user@: that local part at any domain
    ("bob@", "bob@example.com", None, True),
    ("bob@", "BOB@a.b.example.net", None, True),
    ("bob@", "bob@[192.0.2.1]", None, True),
    ("bob@", "bobby@example.com", None, False),
    ("bob@", "alice@bob.com", None, False),
    # @domain: every address at exactly that domain
    ("@example.com", "anyone@example.com", None, True),
    ("@Example.Com", "x@EXAMPLE.COM", None, True),
    ("@example.com", "x@sub.example.com", None, False),
    ("@example.com", "x@notexample.com", None, False),
    # @.domain: every subdomain, not the domain itself
    ("@.example.com", "x@sub.example.com", None, True),
    ("@.example.com", "x@a.b.example.com", None, True),
    ("@.example.com", "x@example.com", None, False),
    ("@.example.com", "x@badexample.com", None, False),
    ("@.example.com", "x@example.com.evil.test", None, False),
    # IPv4: address-literal recipients and deliveries whose next hop is that IP
    ("192.0.2.1", "x@[192.0.2.1]", None, True),
    ("192.0.2.1", "x@example.com", "192.0.2.1", True),
    ("192.0.2.1", "x@[192.0.2.2]", None, False),
    ("192.0.2.1", "x@example.com", "192.0.2.10", False),
    ("192.0.2.1", "x@192.0.2.1.example.com", None, False),
    ("192.0.2.1", "x@example.com", None, False),
    # IPv6, written any way: compared in canonical form
    ("2001:DB8::1", "x@[IPv6:2001:db8::1]", None, True),
    ("2001:db8:0:0::1", "x@[ipv6:2001:DB8::1]", None, True),
    ("2001:db8::1", "x@example.com", "2001:0db8:0000::1", True),
    ("2001:db8::1", "x@[IPv6:2001:db8::2]", None, False),
    ("2001:db8::1", "x@example.com", "2001:db8::2", False),
    # a user at an address literal
    ("bob@[192.0.2.1]", "BOB@[192.0.2.1]", None, True),
    ("bob@[IPv6:2001:db8::1]", "bob@[ipv6:2001:DB8::1]", None, True),
    ("bob@[192.0.2.1]", "alice@[192.0.2.1]", None, False),
    ("bob@[192.0.2.1]", "bob@example.com", "192.0.2.1", False),
]


@pytest.mark.parametrize(("entry", "recipient", "hop", "expected"), CASES)
def test_entry_matches_what_it_should_and_nothing_else(entry: str, recipient: str,
                                                       hop: str | None, expected: bool) -> None:
    """Each entry form matches exactly the recipients SPEC §2 gives it, case-insensitively."""
    assert matches(entry, recipient, hop) is expected


@pytest.mark.parametrize(("text", "canonical"), [
    ("  Bob@Example.COM ", "bob@example.com"),
    ("BOB@", "bob@"),
    ("@.Example.com", "@.example.com"),
    ("2001:0DB8:0000:0000::0001", "2001:db8::1"),
    ("bob@[IPv6:2001:DB8::1]", "bob@[2001:db8::1]"),
])
def test_entries_are_stored_in_one_canonical_form(text: str, canonical: str) -> None:
    """Case, blanks and IPv6 spelling are normalised, so duplicates collapse."""
    assert normalise(text) == canonical


@pytest.mark.parametrize("text", [
    "", "bob", "@", "@@example.com", "bob@@example.com", "bob@example..com",
    "bob@-example.com", "bob@.example.com", "@.", "two words@example.com",
    "bob@[999.1.1.1]", "@[192.0.2.1]", "192.0.2.300", "bob@exa_mple.com", "x" * 65 + "@a.com",
])
def test_malformed_entries_are_refused_naming_the_forms(text: str) -> None:
    """A malformed entry raises ValueError whose message lists the accepted forms."""
    with pytest.raises(ValueError, match=r"user@domain, user@, @domain, @\.domain"):
        normalise(text)


LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?\Z")
DOMAINS = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
LOCALS = st.from_regex(r"\A[a-z0-9._+-]{1,12}\Z")


@settings(max_examples=100, deadline=None)
@given(local=LOCALS, domain=DOMAINS, sub=st.lists(LABEL, min_size=1, max_size=2).map(".".join))
def test_domain_forms_hold_for_any_address(local: str, domain: str, sub: str) -> None:
    """For any address: @domain and user@ match it, @.domain matches only strict subdomains."""
    address = f"{local}@{domain}"
    assert matches(address.upper(), address)
    assert matches(f"{local}@", address)
    assert matches(f"@{domain}", address)
    assert not matches(f"@.{domain}", address)
    assert matches(f"@.{domain}", f"{local}@{sub}.{domain}")
    assert not matches(f"@{domain}", f"{local}@{sub}.{domain}")


def test_read_entries_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    """An unsubscribe file yields (line number, canonical entry); '#' starts a comment."""
    path = tmp_path / "u.txt"
    path.write_text("# header\n\nBob@Example.com  # trailing\n   \n@.example.org\n")
    assert list(read_entries(path)) == [(3, "bob@example.com"), (5, "@.example.org")]


def test_read_entries_reports_every_bad_line_with_its_number(tmp_path: Path) -> None:
    """All bad lines are reported, with numbers, after the whole file is read."""
    path = tmp_path / "u.txt"
    path.write_text("good@example.com\nnot an entry\nalso@@bad\nfine@\n")
    with pytest.raises(ValidationError) as err:
        list(read_entries(path))
    assert [p.split(":")[0] for p in err.value.problems] == ["u.txt line 2", "u.txt line 3"]
    assert "nothing was changed" in str(err.value)


def test_read_entries_caps_the_report_at_twenty_lines(tmp_path: Path) -> None:
    """A file full of bad lines reports the first 20 and how many more there are."""
    path = tmp_path / "u.txt"
    path.write_text("bad\n" * 25)
    with pytest.raises(ValidationError) as err:
        list(read_entries(path))
    assert len(err.value.problems) == 21
    assert err.value.problems[-1] == "... and 5 more"
