"""Sequence priors and oracles of the zoo for design: DNA promoters and SELFIES molecules.

:class:`SequencePrior` is a :class:`~probinfer.diffusion.TorchMaskedDenoiser` that also
knows its tokenizer (``decode`` tokens to DNA or SMILES strings, ``encode`` them back).
:class:`Oracle` is a batched host reward (:class:`~probinfer.steer.HostReward`) of token
sequences, with ``score(strings)`` for designs given as strings.

Failing designs: RDKit cannot score every molecule (a sanitisation error, an empty
molecule). An oracle never lets one failure kill a batch: that design scores NaN, is
counted in :attr:`Oracle.num_failures`, and the steering runners with
``invalid_reward="reject"`` turn it into ``-inf`` (zero weight, never selected) and count
it in ``info.num_invalid_rewards``. With the runners' default ``invalid_reward="raise"``
the run stops with an error that names the count.

Why our own code: SELFIES (``selfies``) and RDKit do the chemistry; what is ours is the
fixed-length padded token layout the masked-diffusion prior works on, and the policy for
failures. The SA score is RDKit's Contrib ``sascorer`` (Ertl & Schuffenhauer 2009), loaded
from ``RDConfig.RDContribDir``.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

from probinfer._optional import require
from probinfer.diffusion.torch_bridge import TorchMaskedDenoiser
from probinfer.steering._rewards import HostReward

CHEMISTRY_ORACLES = ("qed", "sa", "logp", "mw")
_MEMO_SIZE = 200_000


def _tokens_2d(tokens, length: int, vocab_size: int, what: str) -> np.ndarray:
    arr = np.asarray(tokens)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != length:
        raise ValueError(f"{what} must have shape (n, {length}) or ({length},), got "
                         f"{np.shape(tokens)}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{what} must be integer tokens, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        bad = "masked positions" if arr.max() == vocab_size else "out-of-range tokens"
        raise ValueError(f"{what} hold {bad}: tokens must lie in [0, {vocab_size}) "
                         "(decode fully unmasked sequences)")
    return arr


def _strings(strings, what: str) -> list[str]:
    if isinstance(strings, str):
        strings = [strings]
    strings = list(strings)
    if not all(isinstance(s, str) for s in strings):
        raise TypeError(f"{what} must be a string or a sequence of strings")
    return strings


class DNATokenizer:
    """Fixed-length DNA sequences over ``alphabet`` (``"ACGT"`` -> tokens 0..3)."""

    def __init__(self, alphabet: str, length: int):
        self.alphabet, self.length, self.vocab_size = alphabet, int(length), len(alphabet)
        self._lookup = {c: i for i, c in enumerate(alphabet)}

    def encode(self, strings) -> np.ndarray:
        """``(n, length)`` int32 tokens of DNA strings (upper or lower case)."""
        strings = _strings(strings, "sequences")
        out = np.empty((len(strings), self.length), np.int32)
        for row, s in enumerate(strings):
            if len(s) != self.length:
                raise ValueError(f"sequence {row} has length {len(s)}, expected {self.length}")
            try:
                out[row] = [self._lookup[c] for c in s.upper()]
            except KeyError as err:
                raise ValueError(f"sequence {row} has a letter outside {self.alphabet!r}: "
                                 f"{err.args[0]!r}") from None
        return out

    def decode(self, tokens) -> list[str]:
        """DNA strings of tokens ``(n, length)`` or ``(length,)``."""
        arr = _tokens_2d(tokens, self.length, self.vocab_size, "tokens")
        letters = np.array(list(self.alphabet))
        return ["".join(letters[row]) for row in arr]


class SelfiesTokenizer:
    """Molecules as SELFIES token sequences padded with ``[nop]`` to ``length``.

    ``decode`` returns canonical SMILES (RDKit), ``""`` for a sequence of padding only;
    every SELFIES string decodes to a molecule, so nothing else fails.
    """

    def __init__(self, vocab: list[str], length: int, pad: str = "[nop]"):
        self.vocab, self.length, self.pad = list(vocab), int(length), pad
        self.vocab_size = len(self.vocab)
        self._index = {t: i for i, t in enumerate(self.vocab)}
        if pad not in self._index:
            raise ValueError(f"the vocabulary must contain the padding token {pad!r}")

    def encode(self, smiles) -> np.ndarray:
        """``(n, length)`` int32 tokens of SMILES strings.

        Raises ``ValueError`` for a SMILES that SELFIES cannot encode, that needs a token
        outside the vocabulary, or whose encoding is longer than ``length``.
        """
        sf = require("selfies", "chem", "SelfiesTokenizer.encode")
        smiles = _strings(smiles, "smiles")
        out = np.empty((len(smiles), self.length), np.int32)
        for row, s in enumerate(smiles):
            try:
                parts = list(sf.split_selfies(sf.encoder(s)))
            except sf.EncoderError as err:
                raise ValueError(f"SMILES {row} ({s!r}) cannot be encoded: {err}") from None
            if len(parts) > self.length:
                raise ValueError(f"SMILES {row} ({s!r}) needs {len(parts)} SELFIES tokens, "
                                 f"more than the prior's length {self.length}")
            unknown = sorted({p for p in parts if p not in self._index})
            if unknown:
                raise ValueError(f"SMILES {row} ({s!r}) uses tokens outside the vocabulary: "
                                 f"{unknown}")
            out[row] = [self._index[p] for p in parts] + \
                [self._index[self.pad]] * (self.length - len(parts))
        return out

    def to_selfies(self, tokens) -> list[str]:
        arr = _tokens_2d(tokens, self.length, self.vocab_size, "tokens")
        return ["".join(self.vocab[t] for t in row if self.vocab[t] != self.pad) for row in arr]

    def decode(self, tokens) -> list[str]:
        """Canonical SMILES of tokens ``(n, length)`` or ``(length,)``."""
        sf = require("selfies", "chem", "SelfiesTokenizer.decode")
        Chem = require("rdkit.Chem", "chem", "SelfiesTokenizer.decode")
        out = []
        for s in self.to_selfies(tokens):
            smiles = sf.decoder(s) if s else ""
            mol = Chem.MolFromSmiles(smiles) if smiles else None
            out.append(Chem.MolToSmiles(mol) if mol is not None else smiles)
        return out


def tokenizer_from_config(config: dict):
    """The tokenizer described by a zoo config's ``tokenizer`` section."""
    spec = config.get("tokenizer")
    length = config["architecture"]["length"]
    if spec is None:
        raise ValueError(f"zoo model {config.get('name')!r} has no tokenizer")
    if spec["type"] == "dna":
        return DNATokenizer(spec["alphabet"], length)
    if spec["type"] == "selfies":
        return SelfiesTokenizer(spec["vocab"], length, spec.get("pad", "[nop]"))
    raise ValueError(f"unknown tokenizer type {spec['type']!r}")


class SequencePrior(TorchMaskedDenoiser):
    """A zoo masked-diffusion prior over token sequences that decodes to strings.

    All of :class:`~probinfer.diffusion.TorchMaskedDenoiser` (sampling, ``denoise``,
    steering), plus :meth:`decode`, :meth:`encode` and :meth:`elbo`. Built by
    :func:`probinfer.zoo.load_prior`.
    """

    def __init__(self, module, tokenizer, name: str, config: dict, **kwargs):
        super().__init__(module, tokenizer.vocab_size, tokenizer.length, time_input=None,
                         schedule=config["masking"]["schedule"], **kwargs)
        self.tokenizer, self.name, self.config = tokenizer, name, config

    def decode(self, tokens) -> list[str]:
        """Strings (DNA, or canonical SMILES) of unmasked tokens ``(n, length)``."""
        return self.tokenizer.decode(np.asarray(tokens))

    def encode(self, strings) -> np.ndarray:
        """Tokens ``(n, length)`` int32 of strings (DNA, or SMILES); raises on bad input."""
        return self.tokenizer.encode(strings)

    def elbo(self, tokens, num_orders: int = 8, seed: int = 0) -> np.ndarray:
        """Monte-Carlo upper bound on ``-log p(x)`` in nats per sequence, ``(n,)``, over
        ``num_orders`` random masks per sequence (see
        :func:`probinfer._zoo_networks.masked_elbo`); lower is more natural."""
        torch = require("torch", "torch", "SequencePrior.elbo")
        from probinfer._zoo_networks import masked_elbo

        arr = _tokens_2d(tokens, self.length, self.vocab_size, "tokens")
        if isinstance(num_orders, bool) or not isinstance(num_orders, int) or num_orders < 1:
            raise ValueError(f"num_orders must be a positive integer, got {num_orders!r}")
        generator = torch.Generator().manual_seed(int(seed))
        return masked_elbo(self.module, torch.from_numpy(arr.astype(np.int64)), num_orders,
                           generator).numpy()

    def __repr__(self):
        return (f"SequencePrior({self.name!r}, length={self.length}, vocab_size="
                f"{self.vocab_size}, num_steps={self.num_steps}, sampler={self.sampler.name!r})")


class Oracle(HostReward):
    """A batched reward of token sequences (a :class:`~probinfer.steer.HostReward`).

    ``oracle(tokens_of_one_design)`` inside JAX code (one host call per batch under
    ``vmap``); :meth:`score_tokens` and :meth:`score` on the host. A design whose scoring
    raises gets NaN (rejected by the runners' ``invalid_reward="reject"``) and is counted in
    :attr:`num_failures`.
    """

    def __init__(self, name: str, score_strings, tokenizer, score_tokens=None,
                 description: str = ""):
        self.name, self.tokenizer, self.description = name, tokenizer, description
        self._score_strings, self._score_tokens = score_strings, score_tokens
        self.num_failures = 0
        # Steering scores the same designs many times (clean draws, resampled copies);
        # decoding and RDKit dominate the cost, so decoded scores are memoised per row.
        self._memo: dict[bytes, float] = {}
        super().__init__(self.score_tokens)

    def score_tokens(self, tokens) -> np.ndarray:
        """Rewards ``(n,)`` of token sequences ``(n, length)``; NaN where scoring failed."""
        arr = _tokens_2d(tokens, self.tokenizer.length, self.tokenizer.vocab_size, "tokens")
        if self._score_tokens is not None:
            out = np.asarray(self._score_tokens(arr), np.float64)
        else:
            keys = [row.tobytes() for row in arr.astype(np.int32)]
            todo = sorted({k: i for i, k in enumerate(keys) if k not in self._memo}.items(),
                          key=lambda item: item[1])
            if todo:
                fresh = self._score_many(self.tokenizer.decode(arr[[i for _, i in todo]]))
                if len(self._memo) > _MEMO_SIZE:
                    self._memo.clear()
                self._memo.update(zip([k for k, _ in todo], fresh.tolist()))
            out = np.array([self._memo[k] for k in keys], np.float64)
        self.num_failures += int(np.sum(np.isnan(out)))
        return out

    def score(self, strings) -> np.ndarray:
        """Rewards ``(n,)`` of designs given as strings (DNA or SMILES); NaN where failed."""
        strings = _strings(strings, "designs")
        if self._score_tokens is not None:
            return np.asarray(self._score_tokens(self.tokenizer.encode(strings)), np.float64)
        out = self._score_many(strings)
        self.num_failures += int(np.sum(np.isnan(out)))
        return out

    def _score_many(self, strings: list[str]) -> np.ndarray:
        out = np.empty(len(strings))
        for i, s in enumerate(strings):
            try:
                out[i] = self._score_strings(s)
            except Exception:          # one bad design must not stop the batch (see module doc)
                out[i] = math.nan
        return out

    def __repr__(self):
        return f"Oracle({self.name!r})"


def _sascorer():
    require("rdkit", "chem", "the 'sa' oracle")
    from rdkit.Chem import RDConfig

    path = os.path.join(RDConfig.RDContribDir, "SA_Score")
    if path not in sys.path:
        sys.path.append(path)
    import sascorer

    return sascorer


def molecule_property(name: str):
    """``f(smiles) -> float`` for ``"qed"``, ``"sa"`` (the SA score, 1 easy .. 10 hard),
    ``"logp"`` (Crippen) or ``"mw"`` (molecular weight); raises on an unparsable SMILES."""
    Chem = require("rdkit.Chem", "chem", f"the {name!r} oracle")
    from rdkit.Chem import Crippen, Descriptors, QED

    sascorer = _sascorer() if name == "sa" else None
    compute = {"qed": QED.qed, "logp": Crippen.MolLogP, "mw": Descriptors.MolWt,
               "sa": sascorer.calculateScore if sascorer else None}[name]

    def score(smiles: str) -> float:
        mol = Chem.MolFromSmiles(smiles) if smiles else None
        if mol is None or mol.GetNumAtoms() == 0:
            raise ValueError(f"not a molecule: {smiles!r}")
        return float(compute(mol))

    return score


def chemistry_oracle(name: str, tokenizer) -> Oracle:
    """The RDKit oracle ``name`` on SELFIES tokens. Rewards: ``qed`` (0..1), ``logp``,
    ``mw`` as computed, ``sa`` NEGATED (``-SA``, -1 best .. -10 worst) so that higher is
    better for every reward."""
    prop = molecule_property(name)
    if name == "sa":
        def fn(smiles):
            return -prop(smiles)
        description = "-SA score (RDKit Contrib sascorer); higher is easier to synthesise"
    else:
        fn = prop
        description = {"qed": "QED drug-likeness (RDKit), 0..1",
                       "logp": "Crippen logP (RDKit)",
                       "mw": "molecular weight (RDKit Descriptors.MolWt)"}[name]
    return Oracle(name, fn, tokenizer, description=description)


def torch_sequence_oracle(name: str, module, tokenizer, description: str) -> Oracle:
    """An oracle from a zoo torch regressor of token sequences ``(B, L) -> (B,)``."""
    torch = require("torch", "torch", "the expression oracles")

    def score_tokens(arr):
        with torch.inference_mode():
            return module(torch.from_numpy(arr.astype(np.int64))).double().numpy()

    return Oracle(name, None, tokenizer, score_tokens=score_tokens, description=description)


JASPAR_RELEASE = "JASPAR2024"
JASPAR_PSEUDOCOUNT = 0.5


class MotifReward:
    """JASPAR motif reward of DNA token sequences: the best PWM match on either strand.

    ``reward(tokens)`` on ONE sequence ``(L,)`` (tokens 0..3 = A, C, G, T) is a pure JAX
    function: the maximum, over window starts and both strands, of the summed log2-odds of
    the window under the matrix against a uniform background. No host call, so steering
    runners ``vmap`` and ``jit`` it like any JAX reward; :meth:`score_tokens` and
    :meth:`score` score batches on the host.

    The log-odds matrix is Biopython's (``counts.normalize(pseudocounts).log_odds()``), so
    a score matches what ``Bio.motifs`` reports for the same JASPAR matrix.
    """

    def __init__(self, name: str, log_odds: np.ndarray, tokenizer, description: str = ""):
        log_odds = np.asarray(log_odds, np.float32)
        if log_odds.ndim != 2 or log_odds.shape[1] != 4:
            raise ValueError(f"log_odds must have shape (width, 4), got {log_odds.shape}")
        if tokenizer.alphabet != "ACGT":
            raise ValueError(f"a motif reward needs the ACGT alphabet, got {tokenizer.alphabet!r}")
        if log_odds.shape[0] > tokenizer.length:
            raise ValueError(f"the motif ({log_odds.shape[0]} bp) is longer than the sequences "
                             f"({tokenizer.length} bp)")
        self.name, self.tokenizer, self.description = name, tokenizer, description
        self.log_odds = log_odds
        # The reverse strand read 5'->3': reversed positions, complemented bases
        # (A<->T, C<->G is token b -> 3 - b in the ACGT order).
        self.reverse_log_odds = log_odds[::-1, ::-1].copy()
        self._batched = None

    @property
    def width(self) -> int:
        return self.log_odds.shape[0]

    def __call__(self, tokens):
        import jax.numpy as jnp

        tokens = jnp.asarray(tokens)
        starts = jnp.arange(tokens.shape[-1] - self.width + 1)
        columns = jnp.arange(self.width)
        windows = tokens[starts[:, None] + columns[None]]             # (starts, width)
        forward = jnp.asarray(self.log_odds)[columns[None], windows].sum(-1)
        reverse = jnp.asarray(self.reverse_log_odds)[columns[None], windows].sum(-1)
        return jnp.maximum(forward.max(), reverse.max())

    def score_tokens(self, tokens) -> np.ndarray:
        """Rewards ``(n,)`` of token sequences ``(n, length)`` (on the host)."""
        import jax

        arr = _tokens_2d(tokens, self.tokenizer.length, self.tokenizer.vocab_size, "tokens")
        if self._batched is None:
            self._batched = jax.jit(jax.vmap(self))
        return np.asarray(self._batched(arr), np.float64)

    def score(self, strings) -> np.ndarray:
        """Rewards ``(n,)`` of DNA strings."""
        return self.score_tokens(self.tokenizer.encode(strings))

    def __repr__(self):
        return f"MotifReward({self.name!r}, width={self.width})"


def jaspar_oracle(matrix_id: str, tokenizer, release: str = JASPAR_RELEASE) -> MotifReward:
    """The :class:`MotifReward` of JASPAR matrix ``matrix_id`` (``"MA0108.3"``, or a base id
    ``"MA0108"`` for its latest version in ``release``) on ``tokenizer``'s sequences."""
    require("pyjaspar", "dna", "the JASPAR motif oracles")
    from pyjaspar import jaspardb

    motif = jaspardb(release=release).fetch_motif_by_id(matrix_id)
    if motif is None:
        raise ValueError(f"no matrix {matrix_id!r} in {release} (JASPAR matrix ids look like "
                         "'MA0108.3' or 'MA0108'; browse them at https://jaspar.elixir.no)")
    pssm = motif.counts.normalize(pseudocounts=JASPAR_PSEUDOCOUNT).log_odds()
    log_odds = np.array([pssm[base] for base in "ACGT"]).T
    species = ", ".join(s for s in motif.species if s) or "unspecified"
    description = (f"{release} {motif.matrix_id} {motif.name} (taxon {species}): best log2-odds "
                   f"match of the {motif.length}-bp matrix on either strand, pseudocount "
                   f"{JASPAR_PSEUDOCOUNT}, uniform background")
    return MotifReward(f"jaspar:{motif.matrix_id}", log_odds, tokenizer, description)


def combine_oracles(weighted: dict, name: str | None = None) -> Oracle:
    """The oracle ``sum_i w_i * oracle_i`` of oracles sharing one tokenizer.

    ``weighted`` maps oracles (:class:`Oracle` or :class:`MotifReward`) to float weights.
    NaN in any component (a failed design) makes the sum NaN, so the runners' failure policy
    applies to the combination as to its parts.
    """
    if not weighted:
        raise ValueError("weighted must name at least one oracle")
    items = list(weighted.items())
    tokenizers = {(o.tokenizer.length, o.tokenizer.vocab_size) for o, _ in items}
    if len(tokenizers) != 1:
        raise ValueError("combined oracles must score the same sequences (one length and "
                         f"vocabulary), got (length, vocab_size) {sorted(tokenizers)}")
    for oracle, weight in items:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) \
                or not math.isfinite(weight):
            raise ValueError(f"the weight of {oracle.name!r} must be a finite number, "
                             f"got {weight!r}")

    def score_tokens(arr):
        return sum(float(w) * o.score_tokens(arr) for o, w in items)

    name = name or " + ".join(f"{w:g}*{o.name}" for o, w in items)
    description = "weighted sum: " + "; ".join(f"{w:g} x ({o.description or o.name})"
                                               for o, w in items)
    return Oracle(name, None, items[0][0].tokenizer, score_tokens=score_tokens,
                  description=description)
