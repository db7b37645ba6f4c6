"""The rule record and the lookups over the registry (``alumdb.lint.rules.ALL``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from alumdb.lint.model import Hit, Severity, Source

Check = Callable[[Source], Iterable[Hit]]
FolderCheck = Callable[[Sequence[Path]], Iterable[tuple[Path, str]]]


def _nothing(paths: Sequence[Path]) -> Iterable[tuple[Path, str]]:
    return ()


@dataclass(frozen=True)
class Rule:
    """One lint rule, as a module of :mod:`alumdb.lint.rules` declares it.

    ``check`` sees one file; ``needs`` says what of it: ``name`` (any file), ``text``
    (a file that decodes) or ``parse`` (a file PostgreSQL's parser accepts).
    ``check_folder`` sees every migration path of the folder at once (duplicate
    numbers), each result ``(path, message)``.
    """

    id: str
    description: str
    severity: Severity
    waivable: bool
    check: Check
    needs: Literal["name", "text", "parse"] = "parse"
    check_folder: FolderCheck = _nothing
