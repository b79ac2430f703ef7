"""NF4 storage for a frozen base weight (QLoRA): Ŵ = q[c] · absmax_block, 4 bits per parameter.

QLoRA (Dettmers et al. 2023, arXiv 2305.14314) §3 stores the frozen base weight W of a LoRA
layer as 4-bit NormalFloat (NF4) codes. W is flattened and cut into blocks of 64 values; each
block keeps its absolute maximum ``absmax`` (the block's scale) and each value keeps the index
c ∈ {0..15} of the NF4 level q[c] nearest to ``w / absmax``. The 16 levels are quantiles of
N(0, 1) rescaled to [-1, 1], with an exact zero (QLoRA §3, "4-bit NormalFloat Quantization").

Double quantization (QLoRA §3, "Double Quantization") stores the fp32 scales themselves in 8
bits: subtract their mean (the ``offset``), cut them into blocks of 256 and quantize each block
with bitsandbytes' signed 8-bit dynamic map (Dettmers 2015, arXiv 1511.04561) and one fp32
constant per block. The cost per parameter drops from 4 + 32/64 = 4.5 bits to
4 + 8/64 + 32/(64·256) ≈ 4.127 bits.

This module is plain torch and follows bitsandbytes' layout and rounding, so its NF4 codes
match ``bitsandbytes.functional.quantize_4bit(..., quant_type="nf4")`` bit for bit; its 8-bit
scale codes round to the nearest value, which bitsandbytes' CPU kernel only approximates
(tests/adapters/test_nf4.py states the tolerance). ``NF4Tensor.from_float(...,
backend="bitsandbytes")`` uses the bitsandbytes kernels and keeps their output in the same
storage.

Shape legend: n = number of weight entries, n_b = ⌈n / block_size⌉ blocks,
n_s = ⌈n_b / double_quant_block⌉ second-level blocks.

Used by ``AdapterConfig(base_quantization="nf4")`` (QLoRA) and in
docs/quantization-and-multi-adapter.md; measured in benchmarks/nf4_memory.py.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

# fmt: off
NF4_LEVELS: tuple[float, ...] = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)
"""The 16 NF4 levels of QLoRA §3, as bitsandbytes hard-codes them (``get_4bit_type("nf4")``)."""
# fmt: on

ZERO_CODE = 7
"""Index of the exact zero level; padding entries get this code."""

BLOCK_SIZES: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048, 4096)
"""Block sizes bitsandbytes accepts for 4-bit quantization; coursekit accepts the same."""

Backend = Literal["torch", "bitsandbytes"]


class ScaleCodes(NamedTuple):
    """Double-quantized block scales: absmax ≈ dynamic[codes] · scale_absmax_block + offset."""

    codes: Tensor
    """(n_b,) uint8 indices into the 8-bit dynamic map."""
    absmax: Tensor
    """(n_s,) float32 absmax of each block of ``double_quant_block`` centered scales."""
    offset: Tensor
    """() float32 mean of the first-level scales, subtracted before quantizing them."""
    block_size: int
    """Scales per second-level block (QLoRA and bitsandbytes use 256)."""


def nf4_levels(device: torch.device | str | None = None) -> Tensor:
    """Return the 16 NF4 levels q[0..15] as a float32 tensor of shape (16,)."""
    return torch.tensor(NF4_LEVELS, dtype=torch.float32, device=device)


def max_level_gap() -> float:
    """Return max_c (q[c+1] − q[c]), the largest gap between adjacent NF4 levels (≈ 0.277).

    Rounding to the nearest level errs by at most half of it, so every dequantized entry is
    within ``max_level_gap() / 2 · absmax`` of the original (the bound the tests check).
    """
    return max(high - low for low, high in itertools.pairwise(NF4_LEVELS))


def dynamic_map() -> Tensor:
    """Return bitsandbytes' signed 8-bit dynamic map: 256 sorted values in [-1, 1].

    Port of ``bitsandbytes.functional.create_dynamic_map(signed=True, max_exponent_bits=7,
    total_bits=8)`` (Dettmers 2015, arXiv 1511.04561): for exponent i = 0..6 the midpoints of
    2^i + 1 linearly spaced fractions in [0.1, 1] times ±10^(i-6), plus 0 and 1.
    """
    values: list[float] = []
    for i in range(7):
        boundaries = torch.linspace(0.1, 1, 2**i + 1, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0  # (2^i,)
        values += (10 ** (i - 6) * means).tolist() + (-(10 ** (i - 6)) * means).tolist()
    values += [0.0, 1.0]
    return torch.tensor(sorted(values), dtype=torch.float32)


def bits_per_parameter(
    block_size: int = 64, double_quant: bool = True, double_quant_block: int = 256
) -> float:
    """Return the storage cost in bits per weight: 4 + 8/b + 32/(b·b₂), or 4 + 32/b without DQ.

    QLoRA §3: a 4-bit code per weight, plus per block of b weights either one fp32 scale or,
    with double quantization, one 8-bit scale code and 1/b₂ of an fp32 second-level constant.
    The single fp32 offset per tensor is negligible and left out.

    Example:
        >>> round(bits_per_parameter(), 3), bits_per_parameter(double_quant=False)
        (4.127, 4.5)
    """
    if double_quant:
        return 4 + 8 / block_size + 32 / (block_size * double_quant_block)
    return 4 + 32 / block_size


def _check_block_size(name: str, block_size: int, allowed: tuple[int, ...]) -> None:
    if block_size not in allowed:
        raise ValueError(
            f"{name} must be one of {allowed} (got {block_size}); pick one of those sizes"
        )


def _to_blocks(values: Tensor, block_size: int) -> Tensor:
    """Flatten ``values`` to float32 and zero-pad to (n_b, block_size); zeros leave absmax as is."""
    flat = values.detach().reshape(-1).float()  # (n,)
    padding = -flat.numel() % block_size
    return nn.functional.pad(flat, (0, padding)).reshape(-1, block_size)  # (n_b, block_size)


def _nearest(scaled: Tensor, levels: Tensor) -> Tensor:
    """Return the index of the nearest level (ties go to the lower one, as in bitsandbytes)."""
    midpoints = (levels[:-1] + levels[1:]) / 2
    return torch.bucketize(scaled, midpoints).to(torch.uint8)


def _absmax_quantize(values: Tensor, levels: Tensor, block_size: int) -> tuple[Tensor, Tensor]:
    """Return codes (n_b, block_size) uint8 and absmax (n_b,) float32 of absmax rounding."""
    blocks = _to_blocks(values, block_size)  # (n_b, block_size)
    absmax = blocks.abs().amax(dim=1)  # (n_b,)
    # Multiply by the reciprocal, as bitsandbytes does, so that the codes agree bit for bit.
    scaled = (blocks * (1.0 / absmax.clamp(min=1e-38))[:, None]).clamp(-1, 1)
    return _nearest(scaled, levels.to(values.device)), absmax


def quantize_nf4(weight: Tensor, *, block_size: int = 64) -> tuple[Tensor, Tensor]:
    """Quantize W blockwise to NF4: c = argmin_k |q[k] − w/absmax|, absmax = max_block |w|.

    Entries past the end of W (when its size is not a multiple of ``block_size``) are zero
    padding; they get the zero code and do not change the last block's absmax.

    Args:
        weight: any floating tensor (quantized in float32).
        block_size: entries per block (QLoRA uses 64).

    Returns:
        codes of shape (n_b, block_size), uint8 in 0..15, and absmax of shape (n_b,), float32.
    """
    _check_block_size("block_size", block_size, BLOCK_SIZES)
    return _absmax_quantize(weight, nf4_levels(), block_size)


def dequantize_nf4(
    codes: Tensor,
    absmax: Tensor,
    shape: torch.Size | tuple[int, ...],
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Return Ŵ = q[c] · absmax_block, cropped to ``shape`` and cast to ``dtype``.

    Args:
        codes: (n_b, block_size) uint8 NF4 codes from ``quantize_nf4``.
        absmax: (n_b,) float32 block scales.
        shape: the original weight shape.
        dtype: the result's dtype.
    """
    values = nf4_levels(codes.device).index_select(0, codes.reshape(-1).int())  # (n_b·block,)
    values = values.view(codes.shape).mul_(absmax[:, None])  # (n_b, block_size); ≤ 9 B/entry
    return values.reshape(-1)[: math.prod(shape)].reshape(shape).to(dtype)


def double_quantize(absmax: Tensor, *, block_size: int = 256) -> ScaleCodes:
    """Quantize the block scales to 8 bits: codes of (absmax − mean) in blocks of ``block_size``.

    QLoRA §3 "Double Quantization", as bitsandbytes implements it (``compress_statistics``):
    subtract the mean so the scales are centered, then blockwise absmax quantization with the
    signed 8-bit dynamic map, nearest value.
    """
    if block_size < 1:
        raise ValueError(f"double_quant_block must be >= 1 (got {block_size}); use 256")
    offset = absmax.float().mean()
    codes, scale_absmax = _absmax_quantize(absmax - offset, dynamic_map(), block_size)
    codes = codes.reshape(-1)[: absmax.numel()]  # (n_b,)
    return ScaleCodes(codes=codes, absmax=scale_absmax, offset=offset, block_size=block_size)


def double_dequantize(scales: ScaleCodes) -> Tensor:
    """Return the (n_b,) float32 block scales dynamic[codes] · absmax_block + offset."""
    n_blocks, block_size = scales.codes.numel(), scales.block_size
    codes = nn.functional.pad(scales.codes, (0, -n_blocks % block_size))
    values = dynamic_map().to(codes.device)[codes.long()].reshape(-1, block_size)  # (n_s, b₂)
    return (values * scales.absmax[:, None]).reshape(-1)[:n_blocks] + scales.offset


def pack_4bit(codes: Tensor) -> Tensor:
    """Pack pairs of 4-bit codes into bytes, the first of each pair in the high nibble.

    Any shape with an even number m of uint8 codes → (m/2,) uint8; bitsandbytes' layout.
    """
    flat = codes.reshape(-1)
    if flat.numel() % 2:
        raise ValueError(f"pack_4bit needs an even number of codes (got {flat.numel()}); pad")
    return (flat[0::2] << 4) | flat[1::2]


def unpack_4bit(packed: Tensor) -> Tensor:
    """Inverse of ``pack_4bit``: (m/2,) uint8 → (m,) uint8 codes."""
    return torch.stack((packed >> 4, packed & 0xF), dim=1).reshape(-1)  # (m/2, 2) → (m,)


class _Quantized(NamedTuple):
    """What a backend returns: NF4 codes plus either fp32 scales or double-quantized ones."""

    codes: Tensor  # (n_b, block_size) uint8
    absmax: Tensor | None  # (n_b,) float32, without double quantization
    scales: ScaleCodes | None  # with double quantization


def _quantize_torch(
    weight: Tensor, block_size: int, double_quant: bool, double_quant_block: int
) -> _Quantized:
    codes, absmax = quantize_nf4(weight, block_size=block_size)
    if not double_quant:
        return _Quantized(codes, absmax, None)
    return _Quantized(codes, None, double_quantize(absmax, block_size=double_quant_block))


def _quantize_bitsandbytes(
    weight: Tensor, block_size: int, double_quant: bool, double_quant_block: int
) -> _Quantized:
    try:
        from bitsandbytes import functional as bnb_functional
    except ImportError as error:  # pragma: no cover - bitsandbytes is a pinned dependency
        raise ImportError(
            "NF4Tensor.from_float(backend='bitsandbytes') needs bitsandbytes; "
            "install bitsandbytes==0.50.2 or use backend='torch'"
        ) from error
    if double_quant and double_quant_block != 256:
        raise ValueError(
            f"double_quant_block must be 256 with backend='bitsandbytes' (got "
            f"{double_quant_block}); bitsandbytes fixes it, use backend='torch' for other sizes"
        )
    packed, state = bnb_functional.quantize_4bit(
        weight.detach().contiguous(),
        blocksize=block_size,
        compress_statistics=double_quant,
        quant_type="nf4",
    )
    n = weight.numel()
    codes = unpack_4bit(packed.reshape(-1))[:n]  # bitsandbytes pads only to an even length
    codes = nn.functional.pad(codes, (0, -n % block_size), value=ZERO_CODE)
    codes = codes.reshape(-1, block_size)  # (n_b, block_size)
    if not double_quant:
        return _Quantized(codes, state.absmax.float(), None)
    scales = ScaleCodes(
        codes=state.absmax,
        absmax=state.state2.absmax.float(),
        offset=state.offset.float(),
        block_size=state.state2.blocksize,
    )
    return _Quantized(codes, None, scales)


_BACKENDS: Mapping[str, Callable[[Tensor, int, bool, int], _Quantized]] = MappingProxyType(
    {"torch": _quantize_torch, "bitsandbytes": _quantize_bitsandbytes}
)


def _to_bytes(values: Tensor) -> Tensor:
    """View float32 values as raw bytes (uint8), so ``module.half()`` cannot round them."""
    return values.detach().float().reshape(-1).contiguous().view(torch.uint8)


class NF4Tensor(nn.Module):
    """A frozen weight W stored in NF4: Ŵ = q[c] · absmax_block (QLoRA §3), ≈ 4.127 bits each.

    Build one with ``NF4Tensor.from_float(weight)``; read it back with ``.dequantize(dtype)``.
    It is an ``nn.Module`` holding only uint8 buffers and no parameters, so that
    ``model.to(device)`` moves it, ``state_dict`` saves it, the optimizer never sees it, and
    ``model.half()`` cannot round its fp32 scales (they are stored as raw bytes). Treat it as
    immutable: nothing in coursekit writes to its buffers after construction.

    Buffers: ``packed`` (n_b·block_size/2,) two codes per byte, high nibble first; then either
    ``absmax`` (4·n_b,) fp32 bytes, or ``scale_codes`` (n_b,), ``scale_absmax`` (4·n_s,) fp32
    bytes and ``scale_offset`` (4,) fp32 bytes with double quantization.
    """

    packed: Tensor
    absmax: Tensor | None
    scale_codes: Tensor | None
    scale_absmax: Tensor | None
    scale_offset: Tensor | None

    def __init__(
        self, *, quantized: _Quantized, shape: torch.Size, dtype: torch.dtype, block_size: int
    ) -> None:
        super().__init__()
        self.shape = torch.Size(shape)
        self.dtype = dtype
        self.block_size = block_size
        self.double_quant_block = None if quantized.scales is None else quantized.scales.block_size
        self.register_buffer("packed", pack_4bit(quantized.codes))
        absmax = None if quantized.absmax is None else _to_bytes(quantized.absmax)
        self.register_buffer("absmax", absmax)
        scales = quantized.scales
        self.register_buffer("scale_codes", None if scales is None else scales.codes)
        self.register_buffer("scale_absmax", None if scales is None else _to_bytes(scales.absmax))
        self.register_buffer("scale_offset", None if scales is None else _to_bytes(scales.offset))

    @classmethod
    def from_float(
        cls,
        weight: Tensor,
        *,
        block_size: int = 64,
        double_quant: bool = True,
        double_quant_block: int = 256,
        backend: Backend = "torch",
    ) -> NF4Tensor:
        """Quantize a floating weight W to NF4 (QLoRA §3), optionally double-quantizing scales.

        Args:
            weight: the frozen base weight, any shape, float32/float16/bfloat16.
            block_size: weights per absmax block (QLoRA: 64).
            double_quant: also store the block scales in 8 bits (QLoRA: True).
            double_quant_block: scales per second-level block (QLoRA: 256).
            backend: ``"torch"`` (coursekit's code) or ``"bitsandbytes"`` (its kernels).
        """
        if backend not in _BACKENDS:
            raise ValueError(
                f"backend must be one of {tuple(_BACKENDS)} (got {backend!r}); use 'torch'"
            )
        if not weight.is_floating_point():
            raise ValueError(f"weight must be a floating tensor (got {weight.dtype}); cast it")
        _check_block_size("block_size", block_size, BLOCK_SIZES)
        quantized = _BACKENDS[backend](weight, block_size, double_quant, double_quant_block)
        return cls(
            quantized=quantized, shape=weight.shape, dtype=weight.dtype, block_size=block_size
        )

    @property
    def double_quant(self) -> bool:
        """Whether the block scales are double-quantized to 8 bits."""
        return self.scale_codes is not None

    @property
    def device(self) -> torch.device:
        """The device the codes live on."""
        return self.packed.device

    @property
    def nbytes(self) -> int:
        """Bytes of storage: codes, scales and second-level constants (all buffers are uint8)."""
        return sum(buffer.numel() for buffer in self.buffers())

    @property
    def bits_per_parameter(self) -> float:
        """Measured storage cost, 8 · nbytes / numel (includes padding of the last block)."""
        return 8 * self.nbytes / self.shape.numel()

    def codes(self) -> Tensor:
        """Return the NF4 codes, shape (n_b, block_size), uint8 in 0..15."""
        return unpack_4bit(self.packed).reshape(-1, self.block_size)

    def block_absmax(self) -> Tensor:
        """Return the (n_b,) float32 block scales (double-dequantized if need be)."""
        if self.absmax is not None:
            return self.absmax.view(torch.float32)
        scales = ScaleCodes(
            codes=self.scale_codes,
            absmax=self.scale_absmax.view(torch.float32),
            offset=self.scale_offset.view(torch.float32)[0],
            block_size=self.double_quant_block,
        )
        return double_dequantize(scales)

    def dequantize(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """Return Ŵ = q[c] · absmax_block with the original shape, in ``dtype``."""
        return dequantize_nf4(self.codes(), self.block_absmax(), self.shape, dtype)

    def extra_repr(self) -> str:
        """Summarize shape, block sizes and measured bits per parameter for ``repr``."""
        return (
            f"shape={tuple(self.shape)}, block_size={self.block_size}, "
            f"double_quant_block={self.double_quant_block}, "
            f"bits_per_parameter={self.bits_per_parameter:.3f}"
        )
