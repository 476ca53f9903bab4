"""Global Unsubscribe: the entry grammar and matching (SPEC §2), pure.

Entries are stored one per row in the config store; matching a recipient probes the few
keys that could match it (``candidates``), so lookup cost does not grow with the table.
"""

from mxcluster.unsubscribe.entries import candidates, normalise, read_entries

__all__ = ["candidates", "normalise", "read_entries"]
