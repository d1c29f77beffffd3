"""CVR's rendering over diffusers components: the anchor frame (img2img) and the video (AnimateDiff + SparseCtrl
with the blurry-video initialisation)."""
