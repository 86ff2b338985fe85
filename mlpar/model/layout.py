"""The layout of the parameter vector p of the network ĝ(z) = Σ_i v_i σ(w_iᵀz + b_i).

For z ∈ ℝᵈ and r neurons, p = [v; w⁽¹⁾; …; w⁽ᵈ⁾; b] ∈ ℝ^{(d+2)r}: d + 2 blocks of
r entries, block k holding one kind of weight of every neuron.  Everything that
needs the number of blocks or a block's position asks the layout, so a change of
architecture (more input dimensions) needs no change elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ParameterLayout:
    """d + 2 blocks of ``width`` entries: v, w⁽¹⁾ … w⁽ᵈ⁾, b.

    >>> layout = ParameterLayout(width=4)
    >>> layout.size, layout.blocks
    (12, ('v', 'w', 'b'))
    """

    width: int
    input_dim: int = 1

    @property
    def n_blocks(self) -> int:
        """d + 2."""
        return self.input_dim + 2

    @property
    def size(self) -> int:
        """n = (d + 2) r."""
        return self.n_blocks * self.width

    @property
    def blocks(self) -> tuple[str, ...]:
        """Block names in order."""
        if self.input_dim == 1:
            return ("v", "w", "b")
        return ("v",) + tuple(f"w{k + 1}" for k in range(self.input_dim)) + ("b",)

    def with_width(self, width: int) -> "ParameterLayout":
        """The same architecture with ``width`` neurons (a coarse level)."""
        return ParameterLayout(width, self.input_dim)

    def as_blocks(self, p: np.ndarray) -> np.ndarray:
        """p as a (d + 2, r) view: row k is block k."""
        return p.reshape(self.n_blocks, self.width)

    def split(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The views (v, W, b) of p; W is w for d = 1 and the (d, r) block rows otherwise."""
        blocks = self.as_blocks(p)
        inner = blocks[1] if self.input_dim == 1 else blocks[1:-1]
        return blocks[0], inner, blocks[-1]

    def describe(self) -> str:
        """The layout in words (stored with the weights in output files)."""
        inner = "w" if self.input_dim == 1 else "w1..w%d" % self.input_dim
        arg = "w_i z + b_i" if self.input_dim == 1 else "w_i . z + b_i"
        return (f"[v; {inner}; b], each block of length width = {self.width}: "
                f"g(z) = sum_i v_i sigma({arg})")
