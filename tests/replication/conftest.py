"""Fixtures: a simulated cluster of real stores in tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .sim import Cluster


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Build a created (or, with create=False, bare) cluster of N nodes."""
    made: list[Cluster] = []

    def make(n: int = 3, *, create: bool = True, **kwargs: object) -> Cluster:
        root = tmp_path / f"cluster{len(made)}"
        root.mkdir()
        cluster = Cluster(root, n, **kwargs)  # type: ignore[arg-type]
        made.append(cluster)
        if create:
            cluster.create()
        return cluster

    yield make
    for cluster in made:
        cluster.close()
