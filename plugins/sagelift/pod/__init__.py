"""Programs that run inside a Kubernetes pod, shipped as source text.

Each module here is a standalone, standard-library-only Python program: the operator passes its source
to a stock ``python`` image as ``python3 -c <source>``, so no image has to be built, pushed or
pip-installed at pod start. Nothing in this package may import a third-party module.
"""

from __future__ import annotations

from importlib import resources


def program_source(name: str) -> str:
    """The source text of the in-pod program ``name`` (a module in this package, e.g. ``ensure_pvc``)."""
    path = resources.files(__name__).joinpath(f"{name}.py")
    if not name.isidentifier() or not path.is_file():
        raise FileNotFoundError(f"no in-pod program named {name!r} in {__name__}")
    return path.read_text(encoding="utf-8")
