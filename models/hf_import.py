"""Import OpenAI GPT-2 weights from a Hugging Face `model.safetensors` into our `GPT`.

Our parameter names are GPT-2's, so the import is key for key. Two layouts are read: the Hub's
original files (`h.0.attn.c_attn.weight`, `wte.weight`, plus `attn.bias` mask buffers) and
`transformers` `save_pretrained` output of GPT2LMHeadModel (`transformer.h.0...`, perhaps
`lm_head.weight`). The config comes from tensor shapes, except `n_head`, which shapes cannot tell.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from models.classifier import GPTClassifier, Pooling
from models.download import hub_download
from models.gpt import GPT, PRESETS, GPTConfig

logger = logging.getLogger(__name__)

# HF stores these as Conv1D, (in, out); nn.Linear wants (out, in).
TRANSPOSED = (
    ".attn.c_attn.weight",
    ".attn.c_proj.weight",
    ".mlp.c_fc.weight",
    ".mlp.c_proj.weight",
)
# Causal-mask buffers some files carry (not `c_attn.bias`); our attention has no such buffer.
IGNORED = (".attn.bias", ".attn.masked_bias")
HUB_REPOS = {name: f"openai-community/{name}" for name in PRESETS}
# Activations equal to the tanh-approximated GELU our MLP uses.
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh")
_BLOCK_RE = re.compile(r"h\.(\d+)\.")


class WeightImportError(Exception):
    """A weights file is missing, unreadable, or not a GPT-2 our model can hold."""


def load_gpt2_safetensors(path: str | Path, n_head: int | None = None) -> GPT:
    """Build a `GPT` from a GPT-2 `model.safetensors`, checking every key and shape."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            names = f.keys()  # safe_open is not iterable itself
            raw = {k: f.get_tensor(k) for k in names}
    except FileNotFoundError as e:
        raise WeightImportError(f"weights file not found: {path}") from e
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightImportError(f"{path} is unreadable or not safetensors: {e}") from e

    prefix = "transformer." if any(k.startswith("transformer.") for k in raw) else ""
    lm_head = raw.pop("lm_head.weight", None)
    sd = {k.removeprefix(prefix): v for k, v in raw.items() if not k.endswith(IGNORED)}
    if "wte.weight" not in sd or "wpe.weight" not in sd:
        raise WeightImportError(f"{path} is not a GPT-2 checkpoint: no {prefix}wte/wpe weights")

    config = _infer_config(path, sd, n_head)
    logger.info("importing %s as %s", path, config)
    # Meta device: no memory or time spent on a random init that the import overwrites anyway.
    with torch.device("meta"):
        model = GPT(config)
    expected = {k: v.shape for k, v in model.transformer.state_dict().items()}
    missing, unexpected = sorted(set(expected) - set(sd)), sorted(set(sd) - set(expected))
    if missing or unexpected:
        raise WeightImportError(
            f"{path} does not match a GPT-2 of {config.n_layer} layers: "
            f"missing {[prefix + k for k in missing[:3]]}, "
            f"unexpected {[prefix + k for k in unexpected[:3]]}"
        )
    for k, shape in expected.items():
        want = torch.Size(reversed(shape)) if k.endswith(TRANSPOSED) else shape
        if sd[k].shape != want:
            raise WeightImportError(
                f"{path}: {prefix}{k} has shape {tuple(sd[k].shape)}, "
                f"expected {tuple(want)} for n_embd={config.n_embd}"
            )
    del raw  # from here on each source tensor is freed as soon as it is converted
    state = {}
    for k in expected:
        t = sd.pop(k)
        state[k] = (t.t() if k.endswith(TRANSPOSED) else t).to(torch.float32).contiguous()
    if lm_head is not None and not torch.equal(lm_head.to(torch.float32), state["wte.weight"]):
        raise WeightImportError(f"{path}: lm_head.weight is not tied to wte.weight, as GPT's is")

    model.transformer.load_state_dict(state, strict=True, assign=True)
    model.lm_head.weight = model.transformer.wte.weight  # assign=True replaced the tied tensor
    return model.eval()


def _infer_config(path: Path, sd: dict[str, torch.Tensor], n_head: int | None) -> GPTConfig:
    """Everything from shapes, but n_head: argument, then config.json, then the preset."""
    if sd["wte.weight"].ndim != 2 or sd["wpe.weight"].ndim != 2:
        raise WeightImportError(f"{path}: wte/wpe weights are not matrices")
    vocab_size, n_embd = sd["wte.weight"].shape
    block_size = sd["wpe.weight"].shape[0]
    layers = {int(m.group(1)) for k in sd if (m := _BLOCK_RE.match(k))}
    if not layers:
        raise WeightImportError(f"{path} holds no transformer blocks (h.N.*)")
    n_layer = max(layers) + 1
    hf = _read_hf_config(path.parent / "config.json")
    eps = float(hf.get("layer_norm_epsilon", 1e-5))

    hf_n_head = hf.get("n_head")
    if isinstance(hf_n_head, int):
        if n_head is not None and n_head != hf_n_head:
            raise WeightImportError(
                f"n_head={n_head} contradicts n_head={hf_n_head} in config.json"
            )
        n_head = hf_n_head
    if n_head is None:
        preset = next(
            (c for c in PRESETS.values() if (c.n_embd, c.n_layer) == (n_embd, n_layer)), None
        )
        if preset is None:
            raise WeightImportError(
                f"{path}: no n_head in a config.json beside it and no preset with n_embd={n_embd}, "
                f"n_layer={n_layer}; pass n_head"
            )
        n_head = preset.n_head
    if n_head <= 0 or n_embd % n_head:
        raise WeightImportError(f"{path}: n_embd={n_embd} is not divisible by n_head={n_head}")
    return GPTConfig(
        vocab_size=vocab_size,
        block_size=block_size,
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        layer_norm_epsilon=eps,
    )


def _read_hf_config(path: Path) -> dict[str, Any]:
    """A `transformers` GPT2Config JSON, refusing variants our model would compute differently."""
    if not path.is_file():
        return {}
    try:
        hf = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WeightImportError(f"{path} is unreadable: {e}") from e
    if not isinstance(hf, dict):
        raise WeightImportError(f"{path} is not a JSON object")
    if hf.get("model_type", "gpt2") != "gpt2":
        raise WeightImportError(f"{path}: model_type {hf['model_type']!r} is not gpt2")
    if hf.get("activation_function", "gelu_new") not in TANH_GELUS:
        raise WeightImportError(f"{path}: activation {hf['activation_function']!r} is unsupported")
    if hf.get("scale_attn_by_inverse_layer_idx") or hf.get("scale_attn_weights") is False:
        raise WeightImportError(f"{path}: non-standard attention scaling is unsupported")
    return hf


def classifier_from_gpt2(
    gpt: GPT, num_classes: int = 2, pooling: Pooling = "last_real"
) -> GPTClassifier:
    """A `GPTClassifier` with a copy of `gpt`'s trunk and a freshly initialised head."""
    with torch.device("meta"):  # skip the trunk's random init; the copy replaces it
        clf = GPTClassifier(gpt.config, num_classes=num_classes, pooling=pooling)
    trunk = {k: v.detach().clone() for k, v in gpt.transformer.state_dict().items()}
    clf.transformer.load_state_dict(trunk, strict=True, assign=True)
    clf.head.to_empty(device=gpt.transformer.wte.weight.device)
    clf.head.reset_parameters()  # nn.Linear's default init, as GPTClassifier's own head gets
    return clf


def resolve_base_model(
    name_or_path: str | Path,
    cache_dir: Path | None = None,
    *,
    endpoint: str | None = None,
    revision: str = "main",
    n_head: int | None = None,
    progress: bool | None = None,
) -> GPT:
    """A preset name (`gpt2` ... `gpt2-xl`, fetched from the Hub into the cache) or a local path."""
    if isinstance(name_or_path, str) and name_or_path in HUB_REPOS:
        repo = HUB_REPOS[name_or_path]
        # config.json first: it is tiny, and must sit beside the weights to give n_head.
        for filename in ("config.json", "model.safetensors"):
            weights = hub_download(
                repo,
                filename,
                revision=revision,
                cache_dir=cache_dir,
                endpoint=endpoint,
                progress=progress,
            )
        return load_gpt2_safetensors(weights, n_head=n_head)
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise WeightImportError(
            f"{name_or_path!s} is neither a GPT-2 preset ({', '.join(HUB_REPOS)}) "
            "nor a safetensors file or a directory holding model.safetensors"
        )
    return load_gpt2_safetensors(path, n_head=n_head)
