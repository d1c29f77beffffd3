"""Configuration of the demo world: sizes, scene grammar and the fMRI encoding model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class NoiseConfig:
    # Shares of the noise variance; white noise takes the rest.
    drift_fraction: float = 0.2  # slow polynomial drift (Legendre degrees 1-3), independent per run
    ar1_fraction: float = 0.5  # autocorrelated AR(1) noise
    ar1_phi: float = 0.4  # AR(1) coefficient between successive volumes
    percent_of_baseline: float = 1.0  # noise standard deviation, in percent of the vertex baseline


@dataclass(frozen=True)
class WorldConfig:
    seed: int = 0
    # Subjects: one entry per subject, its number of cortical surface vertices (both hemispheres).
    cortical_vertices: tuple[int, ...] = (3000, 3400, 2600)
    subcortical_voxels: int = 120  # volume grayordinates after the cortex, as in a 91k CIFTI file
    visual_fraction: float = 0.4  # share of cortical vertices that respond to the stimulus; the rest carry noise only
    # Stimuli: CC2017-style movies cut into 2-s clips (one clip per TR).
    train_segments: int = 18
    test_segments: int = 3
    clips_per_segment: int = 40
    train_repeats: int = 2
    test_repeats: int = 5
    tr: float = 2.0  # seconds per volume and per clip
    fps: int = 30
    frame_size: int = 128  # square frames, pixels
    scene_seconds: tuple[int, int] = (2, 8)  # scene cuts every 2-8 s
    max_objects: int = 2
    video_crf: int = 18  # H.264 constant rate factor of the stimulus movies
    # Encoding model: stimulus features -> shared latent -> subject-specific vertex weights -> HRF -> noise.
    latent_dim: int = 32
    feature_grid: int = 4  # retinotopic grid (cells per side) for luminance/colour and motion-energy features
    snr: float = 0.9  # signal variance / noise variance over the visual vertices
    gain_spread: float = 0.15  # log-normal spread of the per-vertex signal amplitude
    baseline: float = 10000.0  # mean BOLD value, arbitrary scanner units
    noise: NoiseConfig = field(default_factory=NoiseConfig)

    @property
    def n_subjects(self) -> int:
        return len(self.cortical_vertices)

    @property
    def frames_per_clip(self) -> int:
        return round(self.fps * self.tr)

    @classmethod
    def from_dict(cls, values: dict) -> WorldConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown demo world keys {unknown}; allowed: {sorted(known)}")
        values = dict(values)
        if "noise" in values:
            noise_known = {f.name for f in fields(NoiseConfig)}
            bad = sorted(set(values["noise"]) - noise_known)
            if bad:
                raise ValueError(f"unknown demo world noise keys {bad}; allowed: {sorted(noise_known)}")
            values["noise"] = NoiseConfig(**values["noise"])
        for key in ("cortical_vertices", "scene_seconds"):
            if key in values:
                values[key] = tuple(values[key])
        config = cls(**values)
        config.check()
        return config

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self) -> None:
        """Cross-field checks that a schema cannot express."""
        noise = self.noise
        if noise.drift_fraction + noise.ar1_fraction > 1:
            raise ValueError("demo world noise: drift_fraction + ar1_fraction must not exceed 1")
        low, high = self.scene_seconds
        if not 1 <= low <= high:
            raise ValueError(
                f"demo world scene_seconds must be [min, max] with 1 <= min <= max, got {self.scene_seconds}"
            )
        if self.fps * self.tr != self.frames_per_clip:
            raise ValueError(f"demo world fps * tr must be a whole number of frames, got {self.fps} * {self.tr}")
        if self.frame_size % self.feature_grid:
            raise ValueError(
                f"demo world frame_size {self.frame_size} must be a multiple of feature_grid {self.feature_grid}"
            )
        if self.frame_size % 2:
            raise ValueError(f"demo world frame_size must be even for H.264 (yuv420p), got {self.frame_size}")
