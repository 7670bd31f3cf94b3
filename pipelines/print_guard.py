"""Keep ``builtins.print`` reachable where it says it lives, before numba is imported.

A Flink cluster's PyFlink Python worker replaces ``builtins.print`` with a bound method of its
own (stdout to logging) whose module has no ``print``; numba's import checks that each builtin
it types is reachable as ``sys.modules[f.__module__].<name>`` and fails on that one, so no model
could load there. Binding that module's ``print`` to it satisfies the check and changes nothing
else. (The local mini-cluster runs Python functions in the client process: print is the
builtin there, and this does nothing.)
"""
from __future__ import annotations

import builtins
import sys


def make_print_reachable() -> None:
    current = builtins.print
    module = sys.modules.get(getattr(current, "__module__", None) or "builtins")
    if module is not None and getattr(module, "print", None) is not current:
        module.print = current
