"""Checkpoint I/O: safetensors tensors + str->str metadata, atomic writes, strict loads.

No pickle anywhere: a checkpoint can be read without executing anything it contains.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from models.classifier import GPTClassifier, Pooling
from models.ensemble import GPTEnsemble
from models.gpt import GPT, GPTConfig
from models.tokenizer import BPE_SHA256, TOKENIZER_NAME, TextForm

FORMAT = "mailfilter-checkpoint"
SCHEMA = "1"
KINDS = ("classifier", "lm")
MAX_MEMBERS = 8


class CheckpointError(Exception):
    """A checkpoint is missing, corrupt, or does not match what it claims to be."""


@dataclass
class CheckpointMeta:
    """Everything besides the tensors that is needed to use a checkpoint."""

    config: GPTConfig
    kind: str = "classifier"
    labels: tuple[str, ...] = ("ham", "spam")
    max_length: int = 256
    pooling: str = "last_real"
    threshold: float = 0.5
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    members: int = 1  # >1: a GPTEnsemble of that many classifiers of this config
    text_case: str = "keep"  # models.tokenizer.TEXT_CASES: how text is cased before tokenising
    text_sender: str = "keep"  # models.tokenizer.TEXT_SENDERS: whether it reads From/Reply-To
    text_punct: str = "keep"  # models.tokenizer.TEXT_PUNCTS: how punctuation is spaced

    @property
    def text_form(self) -> TextForm:
        """How this checkpoint reads text (sender lines, punctuation and case as it was trained)."""
        return TextForm(self.text_case, self.text_sender, self.text_punct)

    def with_form(self, form: TextForm) -> CheckpointMeta:
        """This metadata for a model that reads text in `form` (the inverse of `text_form`)."""
        return replace(self, text_case=form.case, text_sender=form.sender, text_punct=form.punct)

    def to_metadata(self) -> dict[str, str]:
        """The str->str header safetensors stores."""
        return {
            "format": FORMAT,
            "schema": SCHEMA,
            "kind": self.kind,
            "config": json.dumps(self.config.to_dict(), sort_keys=True),
            "labels": json.dumps(list(self.labels)),
            "max_length": str(self.max_length),
            "pooling": self.pooling,
            "tokenizer": TOKENIZER_NAME,
            "bpe_sha256": BPE_SHA256,
            "threshold": repr(float(self.threshold)),
            "training": json.dumps(self.training, sort_keys=True),
            "metrics": json.dumps(self.metrics, sort_keys=True),
        } | ({"members": str(self.members)} if self.members != 1 else {}) | {
            # only what differs from the text as it is, so older files read as before
            key: value for key, value in self.text_form.metadata().items() if value != "keep"
        }

    @classmethod
    def from_metadata(cls, md: dict[str, str]) -> CheckpointMeta:
        """Parse and validate a safetensors header written by `to_metadata`."""
        if md.get("format") != FORMAT:
            raise CheckpointError(f"not a mailfilter checkpoint (format={md.get('format')!r})")
        if md.get("schema") != SCHEMA:
            raise CheckpointError(f"unsupported checkpoint schema {md.get('schema')!r}")
        if md.get("tokenizer") != TOKENIZER_NAME or md.get("bpe_sha256") != BPE_SHA256:
            raise CheckpointError("checkpoint was trained with a different tokenizer")
        try:
            meta = cls(
                config=GPTConfig.from_dict(json.loads(md["config"])),
                kind=md["kind"],
                labels=tuple(json.loads(md["labels"])),
                max_length=int(md["max_length"]),
                pooling=md["pooling"],
                threshold=float(md["threshold"]),
                training=json.loads(md.get("training", "{}")),
                metrics=json.loads(md.get("metrics", "{}")),
                members=int(md.get("members", "1")),
                text_case=md.get("text_case", "keep"),
                text_sender=md.get("text_sender", "keep"),
                text_punct=md.get("text_punct", "keep"),
            )
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"checkpoint metadata is invalid: {e}") from e
        if meta.kind not in KINDS:
            raise CheckpointError(f"unknown checkpoint kind {meta.kind!r}")
        if meta.pooling not in ("last_real", "last_position"):
            raise CheckpointError(f"unknown pooling {meta.pooling!r}")
        try:
            meta.text_form  # noqa: B018 (checks the three values)
        except ValueError as e:
            raise CheckpointError(str(e)) from e
        if not 1 <= meta.members <= MAX_MEMBERS:
            raise CheckpointError(f"members {meta.members} outside 1..{MAX_MEMBERS}")
        if meta.members > 1 and (meta.kind != "classifier" or len(meta.labels) != 2):
            raise CheckpointError("only two-class classifiers can be ensembles")
        if not 0 < meta.max_length <= meta.config.block_size:
            raise CheckpointError(f"max_length {meta.max_length} outside 1..block_size")
        return meta


@dataclass
class Checkpoint:
    """A loaded model, its metadata, and the sha256 of the file it came from."""

    model: torch.nn.Module
    meta: CheckpointMeta
    sha256: str


def _tensors_to_save(model: torch.nn.Module, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    state = model.state_dict()
    if isinstance(model, GPT):
        state.pop("lm_head.weight")  # tied to transformer.wte.weight
    out = {}
    for k, v in state.items():
        t = v.detach().to("cpu")
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        out[k] = t.contiguous()
    return out


@torch.no_grad()
def round_to_dtype(model: torch.nn.Module, dtype: torch.dtype | None) -> None:
    """Round the model's floating-point tensors, in place, to the values `dtype` can hold: what a
    checkpoint saved with `dtype` loads back as, so that a threshold chosen after this holds for
    the file (None: nothing to do)."""
    if dtype is None:
        return
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            t.copy_(t.to(dtype).to(t.dtype))


def save_checkpoint(
    model: torch.nn.Module, meta: CheckpointMeta, path: str | Path, dtype: torch.dtype | None = None
) -> Path:
    """Write model + metadata to `path` atomically (temp file in the same dir, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(_tensors_to_save(model, dtype), tmp, metadata=meta.to_metadata())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make a shared model unreadable
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_meta(path: str | Path) -> CheckpointMeta:
    """Read only the metadata header of a checkpoint."""
    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
    except FileNotFoundError as e:
        raise CheckpointError(f"checkpoint not found: {path}") from e
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is unreadable or corrupt: {e}") from e
    return CheckpointMeta.from_metadata(md)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_model(meta: CheckpointMeta) -> torch.nn.Module:
    """An untrained model of the shape the metadata describes."""
    if meta.kind == "lm":
        return GPT(meta.config)
    pooling: Pooling = "last_real" if meta.pooling == "last_real" else "last_position"
    if meta.members > 1:
        return GPTEnsemble(
            [GPTClassifier(meta.config, 2, pooling) for _ in range(meta.members)],
            spam_index=list(meta.labels).index("spam") if "spam" in meta.labels else 1,
        )
    return GPTClassifier(meta.config, num_classes=len(meta.labels), pooling=pooling)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model from metadata and load its tensors strictly, as float32. The global
    random state is left as it was: the initial weights are overwritten, and loading must not
    change what a later random draw (a new head's initialisation) gives."""
    meta = read_meta(path)
    with torch.random.fork_rng(devices=[]):
        model = build_model(meta)
    expected = _tensors_to_save(model, None)
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
            missing, extra = set(expected) - keys, keys - set(expected)
            if missing or extra:
                raise CheckpointError(
                    f"checkpoint {path} does not match its config: "
                    f"missing {sorted(missing)[:3]}, unexpected {sorted(extra)[:3]}"
                )
            state = {}
            for k in expected:
                t = f.get_tensor(k)
                if t.shape != expected[k].shape:
                    raise CheckpointError(
                        f"checkpoint {path}: {k} has shape {tuple(t.shape)}, "
                        f"config says {tuple(expected[k].shape)}"
                    )
                state[k] = t.float() if t.is_floating_point() else t
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint {path} is unreadable or corrupt: {e}") from e
    model.load_state_dict(state, strict=not isinstance(model, GPT))
    model.to(device).eval()
    return Checkpoint(model=model, meta=meta, sha256=file_sha256(path))
