"""The simulated cluster lives in the package (``mxcluster.replication.testing``) so that
benchmarks can use it too; this module keeps the tests' imports short."""

from mxcluster.replication.testing import TUNABLES, VERSION, Cluster, Network, Node, Wall

__all__ = ["TUNABLES", "VERSION", "Cluster", "Network", "Node", "Wall"]
