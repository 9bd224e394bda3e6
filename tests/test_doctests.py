"""The ``>>>`` examples of :mod:`atomsmith.api` and :mod:`atomsmith.guidance` run as doctests.

They are written to take seconds: what needs a trained model is shown as a plain code block and the examples use
tiny objects (an untrained model refusing a request, typed requests, parsers, an objective on a two-atom cell).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import atomsmith.api
import atomsmith.guidance

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: modules whose examples are not run yet, with the reason.
NOT_YET = {
    # its examples need a trained VAE and two files; it is being reworked (crystal interpolation) on another branch
    "atomsmith.api.interpolation",
}


def _modules() -> list[str]:
    out = []
    for package in (atomsmith.api, atomsmith.guidance):
        out.append(package.__name__)
        out += [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
    return sorted(set(out) - NOT_YET)


@pytest.mark.parametrize("name", _modules())
def test_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing an example writes lands in the checkout
    result = doctest.testmod(importlib.import_module(name), optionflags=FLAGS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (output above)"


def test_the_examples_are_found():
    names = ("atomsmith.api.sampling", "atomsmith.guidance.base")
    results = [doctest.testmod(importlib.import_module(n), optionflags=FLAGS, report=False) for n in names]
    assert sum(r.attempted for r in results) >= 8
