"""pandas, imported on first use, so that ``import dmsnb`` stays quick.

The modules of dmsnb write ``pd.DataFrame`` as usual; the first attribute
looked up imports pandas (Python's import lock makes that safe from any
thread). Type checkers see the real module.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for a module until an attribute of it is first needed."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r}, {state}>"

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)


pd = LazyModule("pandas")
