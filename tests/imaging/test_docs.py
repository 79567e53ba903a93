"""The examples in the imaging docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

MODULES = ["budget", "decode", "steps", "preprocess", "color", "texture", "features"]


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_of_each_imaging_module_hold(name: str) -> None:
    module = importlib.import_module(f"posterlab.imaging.{name}")
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
