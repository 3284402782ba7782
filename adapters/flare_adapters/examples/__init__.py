"""Example NVIDIA FLARE job folders shipped with flare-core (``flare-core example NAME DIR``).

Each example is a real NVFlare job folder that runs on NVFlare 2.9 (its own job content only:
every component is on NVFlare's allow-list), so a ``pip install`` user has a job to submit:

* ``hello-numpy-sag``: NVFlare's numpy ScatterAndGather (FedAvg) example, 2 sites, 3 rounds.
"""

from __future__ import annotations

import os
import shutil
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable

__all__ = ["EXAMPLES", "copy_example", "example"]

EXAMPLES: tuple[str, ...] = ("hello-numpy-sag",)
"""The names of the shipped example jobs."""


def example(name: str) -> Traversable:
    """The shipped job folder ``name`` (package data, read-only).

    Raises:
        KeyError: no such example (the message lists the known ones).
    """
    if name not in EXAMPLES:
        raise KeyError(f"no example job {name!r}; known: {', '.join(EXAMPLES)}")
    return files(__name__).joinpath(name)


def copy_example(name: str, parent: str) -> str:
    """Copy example ``name`` into directory ``parent`` (created when missing).

    Returns:
        The new job folder, ``<parent>/<name>``.

    Raises:
        KeyError: no such example.
        FileExistsError: ``<parent>/<name>`` exists already.
    """
    target = os.path.join(parent, name)
    if os.path.exists(target):
        raise FileExistsError(f"{target} already exists")
    os.makedirs(parent, exist_ok=True)
    with as_file(example(name)) as source:
        shutil.copytree(source, target)
    return target
