"""Reading the frame a claim check points to: only under configured roots, verified against its checksum.

A claim check (``kma+file://<root>#<YYYYMMDDHHMM>?area=<area>``,
:func:`satwatch.services.frames.codec.claim_check_uri`) names a frame in a folder of a satellite's images: an
archive replayed with ``produce archive --claim-check`` or a drop folder watched with ``produce watch
--claim-check``. The folder is read as an :class:`~satwatch.services.frames.archive.Archive` of the claim
check's area (flat or in any sub-folders, as the watcher accepts them): a folder may hold several areas. A claim
check without an area (written by a producer from before areas) opens the folder without one, as it always
did, which finds the frame when the folder holds one area.
A drop folder keeps filling after it was first read, so a time not found in the folder as last read is looked
for where the usual layouts put its files (flat, ``YYYYMMDD/``, ``YYYYMMDDHHMM_image/``, ``YYYY/MM/DD/``) and
registered from there; only when it is not there does the reader read the folder again, once, before it gives
up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from satwatch.services.frames.archive import Archive
from satwatch.services.frames.codec import FrameDecodeError, FrameMeta, checksum, frame_label, parse_claim_check
from satwatch.services.frames.frame import ChannelSizeError, Frame, shrink

log = logging.getLogger(__name__)


def allowed_claim_check_root(root: str, allowed: Sequence[str]) -> str:
    """The claim check's archive root, resolved, if it lies at or below one of ``allowed``.

    Claim checks never make the detector read (or scan) a directory nobody configured: an empty ``allowed``
    (``detector.claim_check_roots``) refuses them all (FrameDecodeError ``claim_check_refused``).
    """
    if not allowed:
        raise FrameDecodeError(
            "claim_check_refused",
            f"claim check into {root!r} refused: no detector.claim_check_roots are configured",
        )
    try:
        resolved = Path(root).resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise FrameDecodeError("claim_check_refused", f"claim-check root {root!r} cannot be resolved: {exc}") from exc
    for base in allowed:
        base_path = Path(base).resolve()
        if resolved == base_path or base_path in resolved.parents:
            return str(resolved)
    raise FrameDecodeError(
        "claim_check_refused",
        f"claim check into {root!r} refused: it lies outside detector.claim_check_roots {list(allowed)}",
    )


def _frame_folders(root: Path, time: datetime) -> list[Path]:
    """Where a frame of ``time`` sits in the layouts archives use: flat, ``YYYYMMDD/``, KMA's
    ``YYYYMMDDHHMM_image/`` (also below a day folder), ``YYYY/MM/DD/``."""
    t = time.astimezone(UTC)
    stamp, day = f"{t:%Y%m%d%H%M}_image", root / f"{t:%Y/%m/%d}"
    return [root, root / f"{t:%Y%m%d}", root / stamp, root / f"{t:%Y%m%d}" / stamp, day, day / stamp]


def _probe(archive: Archive, time: datetime) -> bool:
    """Register a frame that landed in a watched folder since it was read, from its files where the layouts put
    them (a few stats, where re-reading a drop folder of days of frames walks and parses thousands of files);
    False when they are not all there, and the folder must be read again."""
    for folder in _frame_folders(archive.root, time):
        paths = {c: folder / archive.profile.filename(c, time, archive.area) for c in archive.channels}
        if all(p.is_file() for p in paths.values()) and archive.add(paths) == time:
            log.debug("claim check: %s found in %s without reading %s again", time, folder, archive.root)
            return True
    return False


class ClaimCheckReader:
    """Turns claim-check metadata into the verified, shrunk frame it points to.

    Folders are indexed once per (root, satellite, area) and kept; a time missing from the index (a frame that
    landed in a watched folder since) is looked for where the usual layouts put its files, and only when it is
    not there is that folder read again, once. Whatever cannot be read or does not match
    its metadata raises FrameDecodeError with the reason the detector dead-letters it under.
    """

    def __init__(self, roots: Sequence[str]) -> None:
        self.roots = roots
        self._archives: dict[tuple[str, str, str | None], Archive] = {}

    def _archive(self, root: str, satellite: str, area: str | None, fresh: bool = False) -> Archive:
        key = (root, satellite, area)
        archive = None if fresh else self._archives.get(key)
        if archive is None:
            archive = self._archives[key] = Archive(Path(root), satellite, area)
        return archive

    def read(self, meta: FrameMeta) -> Frame:
        uri = meta.uri or ""
        claim = parse_claim_check(uri)
        root = allowed_claim_check_root(claim.root, self.roots)
        try:
            archive = self._archive(root, meta.satellite, claim.area)
            if not archive.times_between(meta.time, meta.time) and not _probe(archive, meta.time):
                # Not where the usual layouts put it (landed since in another layout, or never there): read
                # the whole folder again.
                log.debug("claim check %s: %s not indexed yet; reading %s again", uri, meta.time, root)
                archive = self._archive(root, meta.satellite, claim.area, fresh=True)
            if not archive.times_between(meta.time, meta.time):
                raise KeyError(
                    f"no complete {archive.satellite} frame of {meta.time:%Y-%m-%d %H:%M} (area {archive.area}) there"
                )
            full = archive.load(meta.time)
        except ChannelSizeError as exc:  # a channel file replaced by one of another size: a shape fault
            raise FrameDecodeError("wrong_shape", f"{frame_label(meta)}: claim check {uri}: {exc}") from exc
        except (KeyError, OSError, ValueError) as exc:
            error = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise FrameDecodeError("claim_check_unreadable", f"cannot read {uri}: {error}") from exc
        if tuple(full.data.shape) != tuple(meta.shape):
            raise FrameDecodeError(
                "wrong_shape",
                f"{frame_label(meta)}: claim check {uri} says shape {list(meta.shape)}, the archive's frame is "
                f"{list(full.data.shape)}",
            )
        if checksum(full.data) != meta.checksum:
            raise FrameDecodeError(
                "checksum_mismatch", f"{frame_label(meta)}: archive frame at {uri} does not match its checksum"
            )
        return shrink(full)
