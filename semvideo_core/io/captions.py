"""Caption tables: `{level}.csv` with columns clip_id, description (the CC2017-SE layout), written atomically,
and the import of released caption CSVs (such as CC2017-SE's) with their column names mapped from config."""

from __future__ import annotations

import csv
from pathlib import Path

from .atomic import atomic_output

COLUMNS = ("clip_id", "description")


def write_captions(path: str | Path, texts: dict[str, str], clip_ids: list[str]) -> None:
    """One row per clip id, in the order given; every clip id must have a caption."""
    missing = [c for c in clip_ids if c not in texts]
    if missing:
        raise ValueError(f"{path}: no caption for {len(missing)} clips: {missing[:10]}")
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows((clip_id, texts[clip_id]) for clip_id in clip_ids)


def read_captions(path: str | Path, id_column: str = "clip_id", text_column: str = "description") -> dict[str, str]:
    """clip id -> caption of a caption CSV; a missing column, a repeated id or an empty caption names the file."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in (id_column, text_column) if c not in header]
        if missing:
            raise ValueError(f"{path}: no column {missing} (columns: {header}); set the column mapping in config")
        texts: dict[str, str] = {}
        for line, row in enumerate(reader, start=2):
            clip_id, text = (row[id_column] or "").strip(), " ".join((row[text_column] or "").split())
            if clip_id in texts:
                raise ValueError(f"{path}: line {line}: clip id {clip_id!r} appears twice")
            if not text:
                raise ValueError(f"{path}: line {line}: clip {clip_id!r} has an empty caption")
            texts[clip_id] = text
    return texts


def import_captions(
    path: str | Path, clip_ids: list[str], id_column: str = "clip_id", text_column: str = "description"
) -> dict[str, str]:
    """The captions of `clip_ids` from a released CSV, checking that every clip is covered."""
    texts = read_captions(path, id_column, text_column)
    missing = [c for c in clip_ids if c not in texts]
    if missing:
        found = list(texts)[:5]
        raise ValueError(
            f"{path}: {len(missing)} of {len(clip_ids)} clips have no caption, e.g. {missing[:5]} "
            f"(the file's ids look like {found})"
        )
    return {c: texts[c] for c in clip_ids}


def import_caption_tables(
    files: dict[str, str | Path], clip_ids: list[str], id_column: str, text_column: str
) -> dict[str, dict[str, str]]:
    """level -> clip id -> caption, from one released CSV per level."""
    return {level: import_captions(path, clip_ids, id_column, text_column) for level, path in files.items()}


def write_caption_tables(
    tables: dict[str, dict[str, str]], clip_ids: list[str], outputs: dict[str, str | Path]
) -> None:
    """Write `{level}.csv` for every level of `outputs`, rows in clip order."""
    for level, path in outputs.items():
        write_captions(path, tables[level], clip_ids)
