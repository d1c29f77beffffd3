"""Per-clip render cache: one .npy file per rendered clip, written atomically, in a folder named by the job's
fingerprint (a hash of everything the frames depend on). A killed render job rerun with the same inputs and
settings finds the clips it already rendered; a job with any other input or setting uses another folder and
cannot pick up stale frames. The folders of other fingerprints are removed when a job starts."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from .atomic import atomic_output


def fingerprint(arrays: list[np.ndarray], settings: dict, model_dirs: list[str | Path]) -> str:
    """sha256 (16 hex digits) of the arrays' bytes, the settings and the model folders' files (name, size,
    modification time: the weights themselves may be gigabytes)."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for folder in model_dirs:
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            stat = path.stat()
            digest.update(f"{path.relative_to(folder)}{stat.st_size}{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


class RenderCache:
    """The clips rendered so far under fingerprint `key`, in `root/key/`."""

    def __init__(self, root: str | Path, key: str):
        self.root = Path(root)
        self.folder = self.root / key
        if self.root.is_dir():
            for other in self.root.iterdir():
                if other != self.folder:
                    shutil.rmtree(other, ignore_errors=True) if other.is_dir() else other.unlink()
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, clip: str) -> Path:
        return self.folder / f"{clip}.npy"

    def unrendered(self, ids: list[str]) -> list[int]:
        """The rows of `ids` whose clip is not in the cache yet."""
        return [row for row, clip in enumerate(ids) if not self._path(clip).is_file()]

    def get(self, clip: str) -> np.ndarray | None:
        path = self._path(clip)
        return np.load(path) if path.is_file() else None

    def put(self, clip: str, frames: np.ndarray) -> None:
        with atomic_output(self._path(clip)) as tmp:
            np.save(tmp, frames)

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
