"""The generated CRDs and JSON schemas on disk: write them, or say which are stale.

`llmgw.api.crdgen` builds the files' content without I/O; this module is the
small part that touches the file system, for `llmgw crds` and `llmgw schema`
and for the test that fails when the committed files drift from the models.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from llmgw.api import crdgen


def write_crds(directory: Path) -> list[Path]:
    """Write the CRDs into `directory`; return the files whose content changed."""
    return _write(directory, crdgen.crd_files())


def write_schemas(directory: Path) -> list[Path]:
    """Write the editor JSON schemas into `directory`; return the files whose content changed."""
    return _write(directory, crdgen.schema_files())


def check_crds(directory: Path) -> list[Path]:
    """The CRD files in `directory` that are missing or differ from a fresh generation."""
    return _stale(directory, crdgen.crd_files())


def check_schemas(directory: Path) -> list[Path]:
    """The JSON schema files in `directory` that are missing or differ from a fresh generation."""
    return _stale(directory, crdgen.schema_files())


def _stale(directory: Path, files: Mapping[str, str]) -> list[Path]:
    return [
        directory / name
        for name, text in sorted(files.items())
        if not (directory / name).is_file() or (directory / name).read_bytes() != text.encode()
    ]


def _write(directory: Path, files: Mapping[str, str]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for path in _stale(directory, files):
        # Bytes, so that no platform's newline translation changes what the drift test compares.
        path.write_bytes(files[path.name].encode())
        written.append(path)
    return written
