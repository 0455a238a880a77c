"""griffe extension for the API reference: ``Example`` (singular) sections are examples.

numpydoc names the section ``Examples``; many docstrings here say ``Example``, which griffe
would render as plain text (doctest prompts as block quotes, doctest output as Markdown).
"""

from __future__ import annotations

import re

import griffe

_SINGULAR = re.compile(r"^Example\n-------$", re.M)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _SINGULAR.sub("Examples\n--------", obj.docstring.value)
