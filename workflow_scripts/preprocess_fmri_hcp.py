"""Rule preprocess_fmri_hcp: visual ROI, detrend and z-score per run, 1-s clips from the timing file, test averaged."""

from semvideo_core.data.hcp import read_clip_times, timed_clips, visual_roi_columns
from semvideo_core.data.preprocess import preprocess_timed_runs
from semvideo_core.logs import log_to_file

with log_to_file(snakemake.log[0]):
    params = snakemake.params
    clips = timed_clips(read_clip_times(snakemake.input.clip_times), params.test_segment, params.clip_seconds)
    preprocess_timed_runs(
        dict(zip(params.run_names, snakemake.input.runs)),
        clips,
        lambda layout, path: visual_roi_columns(layout.count, params.parcels, params.dlabel, source=str(path)),
        snakemake.output[0],
        tr=params.tr,
        clip_seconds=params.clip_seconds,
        lag_trs=params.lag_trs,
        test_segment=params.test_segment,
        detrend_order=params.detrend_order,
        attrs={"dataset": "hcp", "subject": snakemake.wildcards.hcp_subject, "parcels": params.parcels},
    )
