"""Peer links: authenticated SSH channels between the machines of a cluster (SPEC §5).

``transport`` moves framed messages over one SSH channel (dialling with the machine's
own host key, pinning the peer's); ``links`` keeps the full mesh up and feeds the
replication core (``mxcluster.replication``), carrying out the effects it returns.
"""
