"""Named plugins: built-in classes, and those other packages declare as entry points.

Screeners and image generators are found this way. Each group has built-ins (a name and an
``module:object`` path, imported only when used) and takes entry points of its group: an entry
point's object is a class or a factory, called with the plugin's settings as keyword arguments.
An entry point may not take a built-in's name (or another entry point's) for another object.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar, cast

from dataperf.exceptions import DataPerfError

Plugin = TypeVar("Plugin")


class PluginGroup(Generic[Plugin]):
    """The plugins of one entry-point ``group`` that are instances of ``base``.

    ``what`` names one in messages ("text screener"); a failure raises ``error``, an unknown
    name ``not_found`` (a subclass of ``error``).
    """

    def __init__(
        self,
        group: str,
        builtins: Mapping[str, str],
        base: type,
        *,
        what: str,
        error: type[DataPerfError],
        not_found: type[DataPerfError],
    ):
        self.group = group
        self.builtins = dict(builtins)
        self.base = base
        self.what = what
        self.error = error
        self.not_found = not_found

    def points(self) -> dict[str, EntryPoint]:
        """Every plugin's entry point by name, built-ins first."""
        found = {
            name: EntryPoint(name=name, value=value, group=self.group)
            for name, value in self.builtins.items()
        }
        for point in entry_points(group=self.group):
            if self.builtins.get(point.name) == point.value:
                continue  # a built-in declared as an entry point too
            if point.name in found:
                owner = f"a built-in {self.what}" if point.name in self.builtins else "another one"
                raise self.error(
                    f"entry point {point.name!r} ({point.value}) in {self.group} has the name of "
                    f"{owner} ({found[point.name].value}); rename it"
                )
            found[point.name] = point
        return found

    def names(self) -> list[str]:
        """Every plugin's name, sorted."""
        return sorted(self.points())

    def load(self, name: str, **settings: Any) -> Plugin:
        """A new plugin ``name`` made with ``settings``."""
        points = self.points()
        if name not in points:
            close = difflib.get_close_matches(name, list(points), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise self.not_found(
                f"no {self.what} named {name!r}{hint} (known: {', '.join(sorted(points))})"
            )
        point = points[name]
        try:
            obj = point.load()
            made = obj(**settings) if callable(obj) else obj
        except DataPerfError:
            raise
        except Exception as err:
            raise self.error(f"{self.what} {name!r} ({point.value}) failed to load: {err}") from err
        if not isinstance(made, self.base):
            raise self.error(
                f"{self.what} {name!r} ({point.value}) gave a {type(made).__name__}, not a "
                f"{self.base.__name__} (give a {self.what} class or a factory)"
            )
        return cast(Plugin, made)
