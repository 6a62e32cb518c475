"""ResNet50 ReID embedder for sperm heads, trained by ``spermtrack train reid``.

A torchvision ``resnet50(weights=None)`` trunk (nothing is downloaded: weights come only from our
own training) with a small embedding head (Linear -> BatchNorm -> L2 normalisation) maps a
head-centred gray crop to a unit vector; crops of the same cell are close, of different cells
far. Training uses batch-hard triplet loss (Hermans et al. 2017) plus identity classification
with label smoothing, on P ids x K crops per batch, with augmentations a head undergoes in a
video: rotation (heads turn), flips, shifts of a pixel or two, contrast / brightness / blur /
noise changes (focus and illumination drift).

The tracker asks for embeddings only where motion alone is ambiguous (see
:mod:`spermtrack.tracker.associate`); :class:`Embedder` batches the crops of one frame.
"""

from __future__ import annotations

import json
import pickle
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from spermtrack import __version__
from spermtrack.errors import InputFileError, ParameterError
from spermtrack.torchutil import choose_device

#: crop side fed to the network (px), and the default window cut around a head (px).
INPUT_PX = 64
CROP_PX = 40


def crop_heads(frame: np.ndarray, centers: np.ndarray, crop_px: int = CROP_PX, out_px: int = INPUT_PX) -> np.ndarray:
    """``(K, out_px, out_px)`` uint8 crops of ``crop_px`` around each centre (edge-replicated)."""
    img = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    pad = crop_px
    padded = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    out = np.empty((len(centers), out_px, out_px), np.uint8)
    half = crop_px / 2.0
    for i, (cx, cy) in enumerate(np.asarray(centers, np.float64).reshape(-1, 2)):
        # sub-pixel centring through an affine warp: a head jittering by a pixel stays centred
        scale = out_px / crop_px
        m = np.array([[scale, 0, -(cx + pad - half) * scale], [0, scale, -(cy + pad - half) * scale]], np.float32)
        out[i] = cv2.warpAffine(padded, m, (out_px, out_px), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out


def build_model(embedding_dim: int = 128, n_ids: int = 0):
    """ResNet50 trunk + embedding head (+ an id classifier when ``n_ids`` > 0, for training)."""
    import torch
    from torch import nn
    from torchvision.models import resnet50

    class ReIDNet(nn.Module):
        def __init__(self):
            super().__init__()
            trunk = resnet50(weights=None)
            trunk.fc = nn.Identity()
            self.trunk = trunk
            self.embed = nn.Sequential(nn.Linear(2048, embedding_dim), nn.BatchNorm1d(embedding_dim))
            self.classifier = nn.Linear(embedding_dim, n_ids) if n_ids > 0 else None

        def forward(self, x):
            e = self.embed(self.trunk(x))
            return nn.functional.normalize(e, dim=1), (self.classifier(e) if self.classifier is not None else None)

    torch.manual_seed(0)
    return ReIDNet()


#: checkpoint format written by :func:`train_reid`: ``{"header": JSON text, "state_dict": tensors}``.
FORMAT_VERSION = 2
REFUSED = ("refused: not a plain-tensor checkpoint (it may hold code); retrain with `spermtrack train reid` "
           "(spermtrack's own checkpoints hold tensors and plain values only)")


def refused_by_weights_only(err: BaseException, path: str | Path) -> bool:
    """True when ``torch.load(weights_only=True)`` refused ``path`` because its pickle names a
    global beyond tensors and plain types (a class, a function: possibly code), False for a file
    that is merely garbage. Nothing in the file is run to decide."""
    if not isinstance(err, pickle.UnpicklingError):
        return False
    if "GLOBAL" in str(err):  # torch: "Unsupported global: GLOBAL io.open was not an allowed global"
        return True
    try:
        from torch.serialization import get_unsafe_globals_in_checkpoint

        return bool(get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - not a zip checkpoint, or an older torch
        return False


def load_checkpoint(path: str | Path) -> tuple[dict, dict]:
    """``(header, state_dict)`` of a ReID checkpoint, read with ``torch.load(weights_only=True)``.

    A checkpoint is ``{"header": JSON text (or a dict of plain values), "state_dict": {name: tensor}}``;
    the first format (``{"state_dict", "meta"}``, plain values only) is still read. Nothing in the
    file is executed: a pickle that needs anything beyond tensors and plain types is refused.

    Raises:
        InputFileError: missing file; a file refused by ``weights_only=True`` (one line, naming
            it); anything that is not a ReID checkpoint.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "ReID weights not found (train them with `spermtrack train reid`)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file
        if refused_by_weights_only(err, path):
            raise InputFileError(path, REFUSED) from None
        raise InputFileError(path, f"not a spermtrack ReID checkpoint ({type(err).__name__})") from None
    try:
        head = ckpt["header"] if "header" in ckpt else ckpt["meta"]
        if isinstance(head, str):
            head = json.loads(head)
        state = ckpt["state_dict"]
        if not isinstance(head, dict) or "embedding_dim" not in head:
            raise ValueError("no embedding_dim in its header")
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError("its state_dict is not a dict of tensors")
        fmt = int(head.get("format", 1))
    except Exception as err:  # noqa: BLE001 - a dict of the wrong shape, a list, bad JSON ...
        raise InputFileError(path, f"not a spermtrack ReID checkpoint ({type(err).__name__})") from None
    if fmt > FORMAT_VERSION:
        raise InputFileError(path, f"ReID checkpoint format {head['format']} is newer than this spermtrack ({FORMAT_VERSION})")
    return head, state


def _to_tensor(crops: np.ndarray, device):
    import torch

    x = torch.from_numpy(np.ascontiguousarray(crops)).to(device=device, dtype=torch.float32)
    x = (x / 255.0 - 0.5) / 0.25
    return x.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


class Embedder:
    """Embed head crops with trained weights: ``embed(frame, boxes_ltwh) -> (K, D)`` unit rows.

    Args:
        weights: a ``.pt`` written by :func:`train_reid` (read by :func:`load_checkpoint`, never
            unpickling code).
        device: ``"cpu"`` / ``"cuda"``; default CUDA when available
            (:func:`~spermtrack.torchutil.choose_device`).
        batch: crops per forward pass.
    """

    def __init__(self, weights: str | Path, *, device: str | None = None, batch: int = 64):
        path = Path(weights)
        meta, state = load_checkpoint(path)
        self.meta = meta
        self.device = choose_device(device)
        self.model = build_model(meta["embedding_dim"], 0)
        self.model.load_state_dict({k: v for k, v in state.items() if not k.startswith("classifier")})
        self.model.eval().to(self.device)
        self.crop_px = int(meta.get("crop_px", CROP_PX))
        self.batch = batch
        self.n_computed = 0

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        import torch

        if len(crops) == 0:
            return np.zeros((0, self.meta["embedding_dim"]), np.float32)
        outs = []
        with torch.inference_mode():
            for s in range(0, len(crops), self.batch):
                e, _ = self.model(_to_tensor(crops[s:s + self.batch], self.device))
                outs.append(e.float().cpu().numpy())
        self.n_computed += len(crops)
        return np.concatenate(outs)

    def embed(self, frame: np.ndarray, boxes_ltwh: np.ndarray) -> np.ndarray:
        b = np.asarray(boxes_ltwh, np.float64).reshape(-1, 4)
        centers = b[:, :2] + b[:, 2:] / 2
        return self.embed_crops(crop_heads(frame, centers, self.crop_px))


class VideoEmbedder:
    """The tracker's hook when frames come from a file: ``embed(frame_index, boxes_ltwh)``.

    Frames are streamed in order from ``video`` (the tracker asks in increasing frame order);
    asking for an earlier frame reopens the stream. Only the current frame is held.
    """

    def __init__(self, embedder: Embedder, video: str | Path):
        from spermtrack.io.video import VideoReader

        self.embedder = embedder
        self.reader = VideoReader(video)
        self._it = None
        self._current: tuple[int, np.ndarray] | None = None

    @property
    def n_computed(self) -> int:
        return self.embedder.n_computed

    def frame(self, frame_index: int) -> np.ndarray:
        if self._current is not None and self._current[0] == frame_index:
            return self._current[1]
        if self._it is None or (self._current is not None and self._current[0] > frame_index):
            self._it = self.reader.iter_frames()
        for idx, _, img in self._it:
            if idx == frame_index:
                self._current = (idx, img)
                return img
        raise InputFileError(self.reader.path, f"has no frame {frame_index} (the detections go further than the video)")

    def embed(self, frame_index: int, boxes_ltwh: np.ndarray) -> np.ndarray:
        return self.embedder.embed(self.frame(int(frame_index)), boxes_ltwh)


def load_embedder(weights: str | Path, video: str | Path | None = None, **kwargs) -> Embedder | VideoEmbedder:
    """An :class:`Embedder` for ``weights``; with ``video``, wrapped so the tracker can ask for
    embeddings by frame index (:class:`VideoEmbedder`)."""
    emb = Embedder(weights, **kwargs)
    return VideoEmbedder(emb, video) if video is not None else emb


# --- training ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReIDTrainConfig:
    """Parameters of ``spermtrack train reid``.

    Attributes:
        epochs: passes over the sampled identities.
        ids_per_batch, crops_per_id: P and K of the P x K batch (batch-hard mining needs K >= 2).
        crops_per_track: crops sampled per track (spread over its life).
        embedding_dim: size of the unit embedding.
        margin: triplet margin; id_weight: weight of the classification loss.
        lr: AdamW learning rate.
        crop_px: window around each head, resized to 64 px.
        device: ``cpu`` / ``cuda``; default CUDA when present.
    """

    epochs: int = 10
    ids_per_batch: int = 16
    crops_per_id: int = 4
    crops_per_track: int = 16
    embedding_dim: int = 128
    margin: float = 0.3
    id_weight: float = 1.0
    lr: float = 3e-4
    crop_px: int = CROP_PX
    device: str | None = None
    seed: int = 0


def collect_crops(data: str | Path, crops_per_track: int, crop_px: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Head-centred crops of sperm tracks (class 0) from every video under ``data``.

    Returns ``(crops (N, 64, 64) uint8, labels (N,) int)``, one label per (video, track).
    """
    from spermtrack.io.visem import iter_video_frames, list_video_folders, read_visem_video

    rng = np.random.default_rng(seed)
    crops, labels = [], []
    next_label = 0
    for folder in list_video_folders(data):
        v = read_visem_video(folder)
        t = v.tracks[v.tracks.cls == 0]
        if t.empty:
            continue
        picks = []
        for _, g in t.groupby("track_id"):
            if len(g) < 2:
                continue
            idx = np.sort(rng.choice(len(g), size=min(crops_per_track, len(g)), replace=False))
            picks.append(g.iloc[idx].assign(label=next_label))
            next_label += 1
        if not picks:
            continue
        sel = pd.concat(picks)
        by_frame = {f: g for f, g in sel.groupby("frame")}
        for f, img in iter_video_frames(v, sorted(by_frame)):
            g = by_frame[f]
            crops.append(crop_heads(img, g[["x", "y"]].to_numpy(), crop_px))
            labels.append(g["label"].to_numpy())
    if not crops:
        raise InputFileError(data, "holds no tracked sperm (labels_ftid/) to train ReID on")
    return np.concatenate(crops), np.concatenate(labels).astype(np.int64)


def _augment(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = np.empty_like(batch)
    n = batch.shape[-1]
    for i, c in enumerate(batch):
        ang = rng.uniform(-180, 180)
        m = cv2.getRotationMatrix2D((n / 2 + rng.uniform(-1.5, 1.5), n / 2 + rng.uniform(-1.5, 1.5)), ang,
                                    rng.uniform(0.9, 1.1))
        a = cv2.warpAffine(c, m, (n, n), borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        if rng.random() < 0.5:
            a = a[:, ::-1]
        if rng.random() < 0.3:
            a = cv2.GaussianBlur(a, (0, 0), rng.uniform(0.3, 1.2))
        a = (a - a.mean()) * rng.uniform(0.7, 1.3) + a.mean() + rng.uniform(-20, 20)
        a += rng.normal(0, rng.uniform(0, 6), a.shape)
        out[i] = np.clip(a, 0, 255).astype(np.uint8)
    return out


def batch_hard_triplet(emb, labels, margin: float):
    """Batch-hard triplet loss: hardest positive and hardest negative of every anchor."""
    import torch

    d = torch.cdist(emb, emb)
    same = labels[:, None] == labels[None, :]
    pos = (d * same.float()).max(dim=1).values
    neg = (d + same.float() * 1e6).min(dim=1).values
    return torch.relu(pos - neg + margin).mean()


def train_reid(data: str | Path, out: str | Path, cfg: ReIDTrainConfig | None = None) -> Path:
    """Train the ReID network on crops of ``data``; write ``out`` (a ``.pt``) and ``out``.json.

    ``out`` holds ``{"header": JSON text, "state_dict": tensors}`` (see :func:`load_checkpoint`).
    """
    import torch

    cfg = cfg or ReIDTrainConfig()
    if cfg.crops_per_id < 2 or cfg.ids_per_batch < 2 or cfg.epochs < 1:
        raise ParameterError(f"ReID training needs crops_per_id >= 2, ids_per_batch >= 2 and epochs >= 1 (got "
                             f"{cfg.crops_per_id}, {cfg.ids_per_batch}, {cfg.epochs})")
    t0 = time.perf_counter()
    crops, labels = collect_crops(data, cfg.crops_per_track, cfg.crop_px, cfg.seed)
    ids = np.unique(labels)
    if len(ids) < 2:
        raise InputFileError(data, "needs at least 2 tracks to train ReID")
    device = choose_device(cfg.device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = build_model(cfg.embedding_dim, int(labels.max()) + 1).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=5e-4)
    ce = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    by_id = {i: np.flatnonzero(labels == i) for i in ids}
    steps = max(1, len(ids) // cfg.ids_per_batch)
    history = []
    model.train()
    for epoch in range(cfg.epochs):
        total = 0.0
        for _ in range(steps):
            chosen = rng.choice(ids, size=min(cfg.ids_per_batch, len(ids)), replace=False)
            idx = np.concatenate([rng.choice(by_id[i], size=cfg.crops_per_id, replace=len(by_id[i]) < cfg.crops_per_id)
                                  for i in chosen])
            x = _to_tensor(_augment(crops[idx], rng), device)
            y = torch.from_numpy(labels[idx]).to(device)
            emb, logits = model(x)
            loss = batch_hard_triplet(emb, y, cfg.margin) + cfg.id_weight * ce(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
        history.append(round(total / steps, 4))
    out = Path(out)
    meta = {"format": FORMAT_VERSION, "embedding_dim": cfg.embedding_dim, "crop_px": cfg.crop_px, "input_px": INPUT_PX,
            "config": asdict(cfg), "n_crops": int(len(crops)), "n_ids": int(len(ids)), "loss_per_epoch": history,
            "device": device, "train_seconds": round(time.perf_counter() - t0, 1),
            "spermtrack_version": __version__, "data": str(Path(data).resolve())}
    from spermtrack.io.atomic import atomic_path, write_json_atomic

    with atomic_path(out) as tmp:
        # tensors and plain values only: the loader reads it with torch.load(weights_only=True)
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        torch.save({"header": json.dumps(meta), "state_dict": state}, tmp)
    write_json_atomic(out.with_suffix(".json"), meta)
    return out
