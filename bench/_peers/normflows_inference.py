"""Peer of bench/inference.py: scoring and sampling speed of normflows (PyTorch) models matched to
the zoo's flows, for a side-by-side table.

    ../peers-venv/bin/python bench/_peers/normflows_inference.py            # every flow
    ... normflows_inference.py --flows glow maf --repeats 5 --batch 256 --no-compile
    ... normflows_inference.py --check                                     # tiny correctness run

Runs in an environment with torch and normflows (never a dependency of the project). Each flow
runs in its own subprocess of this script (``--one NAME``), so that the peak RSS it reports
(``getrusage``'s ``ru_maxrss``) is that flow's own. One JSON object per flow on stdout, one line
each; progress on stderr::

    {"flow": "glow", "weights": 169792, "matching": "...",
     "log_prob eager": [img_per_s, ms, MiB], "log_prob torch.compile": [...] or "Error: ...",
     "sample eager": [...], "sample torch.compile": [...],
     "compile s": {"log_prob": [s, s], "sample": [s, s]}, "peak RSS MiB": 487.3,
     "torch": "2.13.0+cpu", "normflows": "1.7.3", "threads": 2, "repeats": 7}

``MiB``: the process's peak RSS while that mode ran (``VmHWM`` reset before it, as
bench/_memory.py does); ``"peak RSS MiB"``: the flow's process's peak, building included.
``"matching"``: one line on how the model matches the zoo's (below, in full).

Protocol (bench/inference.py's): 28x28x1 inputs (torch layout ``[N, 1, 28, 28]``) uniform in
(0.02, 0.98); random weights, after one ``log_prob`` call on 64 images that initializes the
ActNorms from data; ``torch.set_num_threads(2)`` (``--threads``); ``model.eval()`` and
``torch.no_grad()``.
``log_prob`` of ``--batch`` images (images/s) and of one image (ms per call); sampling of as
many; eagerly and through ``torch.compile`` (inductor, default mode). Each figure is the median
of ``--repeats`` timed calls (``time.perf_counter``) after one untimed call; the untimed calls
of the compiled function compile it (``"compile s"`` gives their seconds, compile plus one
call, at the batch and at 1); one that has not returned after ``--compile-timeout`` seconds is
reported as an error string, as is any exception. MAF sampling and IAF scoring invert one MADE
pass per dimension (784 passes a layer): ``max(1, repeats // 3)`` repeats, as the zoo does;
``torch.compile`` unrolls that Python loop over units, so expect the timeout there.

Sampling: `normflows.MultiscaleFlow.sample` and `normflows.NormalizingFlow.sample` return
``(x, log_q)``; every normflows flow returns its log-det in both directions, so no call skips the
log-dets' arithmetic (it is small beside the networks'). The flat models sample with
``model.forward(z)`` on standard normal ``z`` (the base), which at least skips the base density
and the ``log_q`` sums; the multi-scale ones with ``model.sample(n)``, their only sampling call.

The models (zoo defaults from zoo/options.json; "weights" counts torch parameters, not buffers
such as masks, permutations and batch-norm running statistics; Keras' ``count_params`` on the
zoo side also counts non-trainable weights). Direction: in normflows a flow's ``forward`` maps
latent to data (sampling) and ``inverse`` data to latent (scoring). Layers below are listed data
side first, as the zoo lists its bijectors, and reversed into normflows' order.

* ``nice``: 4 additive couplings on the flattened image, alternating odd / even units, each
  shift net `nf.nets.MLP` 392 -> 5 x 1000 ReLU -> 392 (last layer zero-initialized, as the
  zoo's), then a diagonal scaling (`nf.flows.AffineConstFlow`, scale only). Couplings are
  `nf.flows.AffineCouplingBlock(scale=False)` with ``split_mode="checkerboard"`` /
  ``"checkerboard_inv"``, which on ``[N, 784]`` gathers the even / odd units as the zoo's
  alternating mask does (same nets, same weights). `nf.flows.MaskedAffineFlow(b, t, s=None)`,
  the other additive coupling, would feed the masked 784 units to a 784 -> 784 net (16% more
  weights and FLOPs). Differences: a standard normal base (`nf.distributions.DiagGaussian`,
  fixed) where the zoo's NICE has a standard logistic prior (normflows has no logistic base).
* ``realnvp_flat``: ``Logit(0.05)``, flatten, 8 affine couplings on alternating units (the
  same gathering split), `nf.nets.MLP` 392 -> 256 -> 256 -> 784 conditioners (zero-initialized
  output), ``scale_map="exp"``, a batch norm after each coupling but the last.
  Differences: the zoo bounds the log-scale, ``s = a tanh(r)`` with a learned ``a`` per unit;
  normflows uses ``exp(r)``. The batch norm is `BatchNorm` below: normflows' own
  `nf.flows.BatchNorm` has no inverse (no ``log_prob``) and always uses the batch's statistics.
* ``realnvp`` (multi-scale, 2 scales, 32 filters, 2 residual blocks): ``Logit(0.05)``; scale 1
  on 1x28x28: 3 checkerboard couplings, squeeze to 4x14x14, 3 channel couplings, half of the
  channels factored out (`nf.flows.Merge`); scale 2 on 2x14x14: 4 checkerboard couplings; a
  per-channel batch norm after every coupling; affine couplings
  (`nf.flows.AffineCouplingBlock`, ``scale_map="exp"``, masks alternating) whose conditioner is
  `ResNet` below, a copy of the zoo's `tfflows.nets.ResNet` (3x3 conv in, residual blocks
  ``h + conv(relu(conv(relu(h))))``, relu, zero-initialized 3x3 conv out): the zoo's
  structure and conditioner sizes. Differences: normflows' checkerboard split *gathers* the
  conditioning half into a ``[C, H, W/2]`` map (and, with 2 channels, alternates the pattern
  across channels too), so the conditioner convolves half as many positions as the zoo's,
  which feeds the masked full-size image (``m * x``) and uses its outputs at the other half:
  about half the conditioner FLOPs of the zoo's checkerboard couplings (7 of the 10), same
  weights. Log-scales unbounded (``exp``), as in ``realnvp_flat``. The extra flow
  ``realnvp_masked`` (run by bench/inference.py beside ``realnvp``) does the zoo's work: its
  checkerboard couplings (`MaskedCheckerboardCoupling` below) convolve the masked full-size
  map, as the zoo's and Dinh et al.'s do.
* ``glow`` (2 scales, 4 steps per scale, 32 filters, 1 residual block): normflows'
  `nf.flows.GlowBlock` (ActNorm, LU-decomposed `Invertible1x1Conv`, affine channel coupling
  with Glow's ``sigmoid(r + 2)`` scale) in `nf.MultiscaleFlow`, built as
  ../shared/peers/glow_normflows.py builds it (squeeze, K blocks, merge; ``Logit(0.05)``),
  with K = 4 and each block's coupling net replaced by `ResNet` (32 filters, 1 block), the
  zoo's conditioner: GlowBlock's own net (3x3, 1x1, 3x3 convolutions, `nf.nets.ConvNet2d`) has
  no 3x3 32 -> 32 convolution; its 8 nets have 29,488 weights against the zoo's 169,008, and a
  fraction of their FLOPs. The stock block is available as the extra flow ``glow_stock`` (not run by
  default). Differences: the zoo bounds the log-scale (``a tanh``) where Glow's sigmoid scale
  is used here; base Gaussians fixed (not trainable, as in the zoo).
* ``nsf``: the zoo's nsf is its Glow with rational-quadratic spline couplings (8 bins on
  [-3, 3], identity outside). Here: the ``glow`` model above with each GlowBlock's coupling
  replaced by normflows' (nflows') `PiecewiseRationalQuadraticCoupling` on the channel split
  (``tails="linear"``, ``tail_bound=3``, 8 bins: 23 parameters per transformed channel, as the
  zoo's ``3 bins - 1``), its conditioner `ResNet` (32 filters, 1 block), wrapped in
  `nf.flows.Reverse` because nflows' ``forward`` is the data -> latent map. That is the zoo's
  structure; `nf.flows.CoupledRationalQuadraticSpline` (the class normflows exports for spline
  couplings) works on flat vectors with an MLP ResidualNet conditioner and an extra
  elementwise spline on the identity half, a different model. Differences: nflows' spline
  details (width / height logits scaled by ``1 / sqrt(32)``, minimum bin widths, heights and
  derivatives of 1e-3), elementwise costs small beside the nets'.
* ``maf``: ``Logit(0.05)``, flatten, 5 MADE layers (784 -> 1024 ReLU -> 2 x 784, masked, one
  hidden layer), affine, a batch norm between layers. normflows'
  `nf.flows.MaskedAffineAutoregressive` maps ``u -> scale(u_<i) u + shift(u_<i)`` (parameters
  from its own input) in one MADE pass in its ``forward`` and inverts that unit by unit (784
  passes) in its ``inverse``; as
  normflows runs ``forward`` to sample and ``inverse`` to score, the class used as it is
  samples in one pass and scores in 784: an IAF. (normflows' autoregressive *spline* wrapper
  swaps the two; the affine class does not.) The MAF is therefore
  ``nf.flows.Reverse(MaskedAffineAutoregressive(...))``: scoring in one pass per layer,
  sampling in 784. Its MADE is built with ``num_blocks=0`` and a ReLU appended to its first
  layer: normflows' MADE applies its activation inside its blocks only, so with no block it
  would be linear, and with one (``use_residual_blocks=False``) it would add a 1024 x 1024
  layer the zoo's MADE has not (the same 2,411,040 weights a layer as the zoo's; masks are
  buffers). Differences: normflows' affine map is ``scale = sigmoid(r + 2) + 1e-3`` (the
  zoo's ``exp(a tanh(r))``); every MADE reads the natural order, with a fixed random
  permutation of the units (`nf.flows.Permute`, normflows' idiom) between layers where the zoo
  alternates natural and reversed MADE orders; the MADE output layer is not zero-initialized.
* ``iaf``: the same stack with `MaskedAffineAutoregressive` used as it is (see ``maf``):
  sampling one MADE pass per layer, scoring 784. The zoo has no registry ``iaf`` (its
  `tfflows.bijectors.MaskedAutoregressive` can run in the IAF direction); this is the MAF
  above with the direction of every autoregressive layer swapped.

`BatchNorm` (realnvp_flat, realnvp, maf, iaf): the zoo's `tfflows.bijectors.BatchNorm` at
inference: running mean and variance (buffers), learned ``log_gamma`` and ``beta``, per unit
for vectors and per channel for images, epsilon 1e-3.

``--check`` runs a tiny correctness pass instead (no speed figures), with every weight
perturbed by N(0, 0.01^2) so that the zero-initialized couplings are not identities:
``log_prob`` of 4 images finite;
``x, log_q = model.sample(2)`` then ``log_prob(x)`` finite and equal to ``log_q`` (each flow's
``inverse`` undoes its ``forward`` with the opposite log-det); for the flat models also
``inverse(forward(z)) == z``: for the IAF that runs its 784-pass inverse against its one-pass
forward.
"""

import argparse
import contextlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
import warnings

import normflows as nf
import torch
from normflows.flows.neural_spline.coupling import PiecewiseRationalQuadraticCoupling
from torch import nn

FLOWS = ["nice", "realnvp_flat", "realnvp", "glow", "nsf", "maf", "iaf"]
# normflows' GlowBlock as it comes (3x3-1x1-3x3 coupling nets); the multi-scale RealNVP with
# the zoo's masked full-resolution checkerboard couplings (the same work as the zoo's).
EXTRA = ["glow_stock", "realnvp_masked"]
IMAGE = (1, 28, 28)
DIMS = 784
ALPHA = 0.05  # the zoo's Logit margin
SEQUENTIAL = {"maf": "sample", "iaf": "log_prob"}  # one MADE pass per dimension
# normflows' Invertible1x1Conv factorizes with the deprecated torch.lu.
warnings.filterwarnings("ignore", message="torch.lu is deprecated")


# -- Pieces normflows lacks ---------------------------------------------------------------------


class Flatten(nf.flows.Flow):
    """``[N, 1, 28, 28]`` images (data side) <-> ``[N, 784]`` vectors, as the zoo's flatten."""

    def forward(self, z):
        return z.reshape(len(z), *IMAGE), 0

    def inverse(self, x):
        return x.reshape(len(x), -1), 0


class BatchNorm(nf.flows.Flow):
    """The zoo's batch-norm bijector at inference, per unit (``shape=(D,)``) or per channel
    (``shape=(C, 1, 1)``): data -> latent ``(x - mean) / sqrt(var + eps) * exp(log_gamma) +
    beta`` with the running statistics."""

    def __init__(self, shape, eps=1e-3):
        super().__init__()
        self.eps = eps
        self.log_gamma = nn.Parameter(torch.zeros(1, *shape))
        self.beta = nn.Parameter(torch.zeros(1, *shape))
        self.register_buffer("running_mean", torch.zeros(1, *shape))
        self.register_buffer("running_var", torch.ones(1, *shape))

    def _log_scale(self, x):
        """Per-unit log-scale of the inverse, and its log-det summed over positions."""
        s = self.log_gamma - 0.5 * torch.log(self.running_var + self.eps)
        return s, s.sum() * (x[0].numel() // s.numel())

    def forward(self, z):
        s, log_det = self._log_scale(z)
        return (z - self.beta) * torch.exp(-s) + self.running_mean, -log_det

    def inverse(self, x):
        s, log_det = self._log_scale(x)
        return (x - self.running_mean) * torch.exp(s) + self.beta, log_det


class ResNet(nn.Module):
    """The zoo's coupling conditioner (`tfflows.nets.ResNet`) in torch: 3x3 conv to ``filters``,
    ``num_blocks`` residual blocks ``h + conv(relu(conv(relu(h))))``, relu, zero-initialized 3x3
    conv to ``out_channels``. Takes (and ignores) nflows' ``context`` argument."""

    def __init__(self, in_channels, out_channels, filters=32, num_blocks=1):
        super().__init__()
        self.hidden_channels = filters  # nflows' spline coupling scales its logits by this

        def conv(cin, cout):
            return nn.Conv2d(cin, cout, 3, padding=1)

        self.conv_in = conv(in_channels, filters)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ReLU(), conv(filters, filters), nn.ReLU(), conv(filters, filters))
            for _ in range(num_blocks)
        )
        self.conv_out = conv(filters, out_channels)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x, context=None):
        h = self.conv_in(x)
        for block in self.blocks:
            h = h + block(h)
        return self.conv_out(torch.relu(h))


# -- The models ---------------------------------------------------------------------------------


def flat_flow(layers):
    """`nf.NormalizingFlow` over images from ``layers`` listed data side first."""
    return nf.NormalizingFlow(nf.distributions.DiagGaussian(DIMS, trainable=False), layers[::-1])


def multiscale(levels, shapes):
    """`nf.MultiscaleFlow` with ``Logit(0.05)``: ``levels[i]`` the layers of level ``i``
    (innermost first) listed data side first, ``shapes[i]`` its latent's shape; channel merges."""
    return nf.MultiscaleFlow(
        [nf.distributions.DiagGaussian(shape, trainable=False) for shape in shapes],
        [layers[::-1] for layers in levels],
        [nf.flows.Merge() for _ in levels[1:]],
        transform=nf.transforms.Logit(ALPHA),
        class_cond=False,
    )


def alternating(i):
    """normflows' split of a flat vector into even / odd units, alternating with ``i``."""
    return "checkerboard" if i % 2 == 0 else "checkerboard_inv"


def nice():
    layers = [Flatten()]
    for i in range(4):
        net = nf.nets.MLP([DIMS // 2, *[1000] * 5, DIMS // 2], init_zeros=True)
        layers.append(nf.flows.AffineCouplingBlock(net, scale=False, split_mode=alternating(i)))
    layers.append(nf.flows.AffineConstFlow((DIMS,), scale=True, shift=False))
    return flat_flow(layers)


def realnvp_flat():
    layers = [nf.transforms.Logit(ALPHA), Flatten()]
    for i in range(8):
        net = nf.nets.MLP([DIMS // 2, 256, 256, DIMS], init_zeros=True)
        layers.append(nf.flows.AffineCouplingBlock(net, scale_map="exp", split_mode=alternating(i)))
        if i < 7:
            layers.append(BatchNorm((DIMS,)))
    return flat_flow(layers)


def realnvp_couplings(kind, channels, count):
    """``count`` affine couplings with ResNet(32, 2) conditioners, each followed by a
    per-channel batch norm; ``kind`` "checkerboard" or "channel", alternating."""
    layers = []
    for i in range(count):
        if kind == "checkerboard":
            net = ResNet(channels, 2 * channels, num_blocks=2)
        else:
            net = ResNet(channels // 2, channels, num_blocks=2)
        mode = kind if i % 2 == 0 else f"{kind}_inv"
        layers += [
            nf.flows.AffineCouplingBlock(net, scale_map="exp", split_mode=mode),
            BatchNorm((channels, 1, 1)),
        ]
    return layers


class MaskedCheckerboardCoupling(nf.flows.Flow):
    """Dinh et al.'s checkerboard affine coupling computed as the zoo computes it (and as
    normflows' `nf.flows.MaskedAffineFlow` does, with one net giving both ``s`` and ``t``): the
    conditioner convolves the masked full-resolution map ``b * x``; data -> latent
    ``y = b * x + (1 - b) * (x * exp(s) + t)``, ``log|det| = sum((1 - b) * s)``."""

    def __init__(self, mask, net):
        super().__init__()
        self.register_buffer("b", mask)
        self.net = net

    def _shift_and_log_scale(self, x):
        s, t = self.net(self.b * x).chunk(2, dim=1)
        return (1 - self.b) * s, (1 - self.b) * t

    def forward(self, z):
        s, t = self._shift_and_log_scale(z)
        return self.b * z + (1 - self.b) * (z - t) * torch.exp(-s), -s.sum(dim=(1, 2, 3))

    def inverse(self, x):
        s, t = self._shift_and_log_scale(x)
        return self.b * x + (1 - self.b) * (x * torch.exp(s) + t), s.sum(dim=(1, 2, 3))


def masked_checkerboard_couplings(channels, size, count):
    """`realnvp_couplings`' checkerboard couplings on full-resolution masked maps."""
    rows = torch.arange(size)
    layers = []
    for i in range(count):
        mask = ((rows[:, None] + rows[None, :] + i) % 2).float()
        mask = mask.expand(1, channels, size, size).clone()
        net = ResNet(channels, 2 * channels, num_blocks=2)
        layers += [MaskedCheckerboardCoupling(mask, net), BatchNorm((channels, 1, 1))]
    return layers


def realnvp_masked():
    """`realnvp` with the zoo's (the paper's) checkerboard couplings: the same work."""
    outer = [
        *masked_checkerboard_couplings(1, 28, 3),
        nf.flows.Squeeze(),
        *realnvp_couplings("channel", 4, 3),
    ]
    inner = masked_checkerboard_couplings(2, 14, 4)
    return multiscale([inner, outer], [(2, 14, 14), (2, 14, 14)])


def realnvp():
    outer = [
        *realnvp_couplings("checkerboard", 1, 3),
        nf.flows.Squeeze(),  # its inverse (data -> latent) squeezes 1x28x28 to 4x14x14
        *realnvp_couplings("channel", 4, 3),
    ]
    inner = realnvp_couplings("checkerboard", 2, 4)
    return multiscale([inner, outer], [(2, 14, 14), (2, 14, 14)])


def glow_like(coupling, steps=4):
    """glow_normflows.py's MultiscaleFlow (2 scales, ``steps`` GlowBlocks of 32 hidden
    channels per scale) with each block's coupling replaced by ``coupling(channels)`` (None:
    GlowBlock's own)."""
    levels = []
    for channels in (8, 4):  # innermost level first: 8x7x7, then 4x14x14
        blocks = []
        for _ in range(steps):
            block = nf.flows.GlowBlock(channels, 32, split_mode="channel", scale=True)
            if coupling is not None:
                block.flows[0] = coupling(channels)
            blocks.append(block)
        levels.append([nf.flows.Squeeze(), *blocks])
    return multiscale(levels, [(8, 7, 7), (2, 14, 14)])


def glow():
    def coupling(channels):
        net = ResNet(channels // 2, channels, num_blocks=1)
        return nf.flows.AffineCouplingBlock(net, scale_map="sigmoid", split_mode="channel")

    return glow_like(coupling)


def glow_stock():
    return glow_like(None)


def nsf():
    def coupling(channels):
        mask = torch.tensor([0] * (channels // 2) + [1] * (channels - channels // 2))
        spline = PiecewiseRationalQuadraticCoupling(
            mask,
            lambda cin, cout: ResNet(cin, cout, num_blocks=1),
            num_bins=8,
            tails="linear",
            tail_bound=3.0,
        )
        return nf.flows.Reverse(spline)  # nflows' forward is data -> latent

    return glow_like(coupling)


def made_layer():
    """normflows' MaskedAffineAutoregressive with the zoo's MADE: 784 -> 1024 ReLU -> 1568."""
    layer = nf.flows.MaskedAffineAutoregressive(DIMS, 1024, num_blocks=0, use_residual_blocks=False)
    made = layer.autoregressive_net
    made.initial_layer = nn.Sequential(made.initial_layer, nn.ReLU())
    return layer


def autoregressive(direction):
    """5 MADE layers on the flattened logits, batch norms between: ``direction(layer)`` turns
    each `MaskedAffineAutoregressive` into the MAF or the IAF."""
    layers = [nf.transforms.Logit(ALPHA), Flatten()]
    for i in range(5):
        if i:
            layers += [BatchNorm((DIMS,)), nf.flows.Permute(DIMS, mode="shuffle")]
        layers.append(direction(made_layer()))
    return flat_flow(layers)


def maf():
    return autoregressive(nf.flows.Reverse)  # scoring: the layer's one-pass forward


def iaf():
    return autoregressive(lambda layer: layer)  # sampling: the one-pass forward


BUILDERS = {
    "nice": nice,
    "realnvp_flat": realnvp_flat,
    "realnvp": realnvp,
    "glow": glow,
    "nsf": nsf,
    "maf": maf,
    "iaf": iaf,
    "glow_stock": glow_stock,
    "realnvp_masked": realnvp_masked,
}


def build(name):
    """The model, ActNorms initialized from 64 images, in eval mode."""
    torch.manual_seed(0)
    model = BUILDERS[name]()
    with torch.no_grad():
        score(model)(images(64, seed=1))
    return model.eval()


def images(n, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return 0.02 + 0.96 * torch.rand(n, *IMAGE, generator=generator)


def score(model):
    """``x -> log p(x)``."""
    if isinstance(model, nf.MultiscaleFlow):
        return lambda x: model.log_prob(x, None)
    return model.log_prob


def sampler(model):
    """``n -> n images``: the cheapest sampling call (see the module docstring)."""
    if isinstance(model, nf.MultiscaleFlow):
        return lambda n: model.sample(n)[0]
    return lambda n: model.forward(torch.randn(n, DIMS))


def weights(model):
    return sum(p.numel() for p in model.parameters())


MATCHING = {
    "nice": "zoo's structure and nets; standard normal base (zoo: logistic)",
    "realnvp_flat": "zoo's structure and nets; exp scale (zoo: bounded a*tanh)",
    "realnvp": "zoo's structure and ResNets; normflows' checkerboard halves the width the "
    "checkerboard couplings convolve",
    "glow": "GlowBlock with the zoo's ResNet as its coupling net (stock: 3x3-1x1-3x3)",
    "nsf": "the glow model with nflows' rational-quadratic coupling (8 bins, linear tails at 3)",
    "maf": "Reverse(MaskedAffineAutoregressive), the zoo's one-hidden-layer MADE; sigmoid scale",
    "iaf": "MaskedAffineAutoregressive as normflows runs it (one pass to sample); sigmoid scale",
    "glow_stock": "normflows' GlowBlock as it comes (hidden 32), K = 4",
    "realnvp_masked": "realnvp with masked full-resolution checkerboard couplings, as the zoo's",
}


# -- Measurement --------------------------------------------------------------------------------


def reset_peak():
    """Starts a new peak RSS at the current RSS (Linux; elsewhere a no-op)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_mib():
    """Peak RSS in MiB since `reset_peak` (Linux ``VmHWM``), else since the process started."""
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def deadline(seconds):
    """Raises TimeoutError in the block after ``seconds`` (None: no limit)."""
    if seconds is None:
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"torch.compile warm-up (compile + one call) over {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timed(call, repeats, limit=None):
    """``(median seconds of repeats calls, seconds of the untimed first call)``; the first call
    must return within ``limit`` seconds."""
    start = time.perf_counter()
    with deadline(limit):
        call()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), first


def failure(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:120] if text else ''}"


def figures(call, batch, repeats, limit=None):
    """``([images/s at batch, ms at 1], [first-call seconds at batch, at 1])`` of ``call(n)``
    under ``torch.no_grad()``."""
    with torch.no_grad():
        t_batch, first_batch = timed(lambda: call(batch), repeats, limit)
        t_one, first_one = timed(lambda: call(1), repeats, limit)
    return [batch / t_batch, 1e3 * t_one], [first_batch, first_one]


def measure(name, repeats, batch, compile_, limit):
    """The JSON row of one flow (bench/inference.py's protocol)."""
    model = build(name)
    inputs = {n: images(n) for n in (batch, 1)}
    log_prob, sample = score(model), sampler(model)

    def on_images(fn):
        return lambda n: fn(inputs[n])

    calls = {
        "log_prob": lambda wrap: on_images(wrap(log_prob)),
        "sample": lambda wrap: wrap(sample),
    }
    row = {"flow": name, "weights": weights(model), "matching": MATCHING[name]}
    modes = {"eager": lambda fn: fn}
    if compile_:
        modes["torch.compile"] = torch.compile
    compile_seconds = {}
    peak = peak_mib()  # building the model and initializing it
    for what, make in calls.items():
        few = max(1, repeats // 3) if SEQUENTIAL.get(name) == what else repeats
        for mode, wrap in modes.items():
            key = f"{what} {mode}"
            compiled = mode == "torch.compile"
            reset_peak()
            try:
                rates, first = figures(make(wrap), batch, few, limit if compiled else None)
                row[key] = [*rates, peak_mib()]
                peak = max(peak, row[key][2])
                if compiled:
                    compile_seconds[what] = first
            except Exception as error:
                row[key] = failure(error)
                peak = max(peak, peak_mib())
                if compiled:
                    torch._dynamo.reset()
            print(f"{name}: {key} {row[key]}", file=sys.stderr, flush=True)
    if compile_:
        row["compile s"] = compile_seconds
    row["peak RSS MiB"] = peak
    row["torch"] = torch.__version__
    row["normflows"] = nf.__version__
    row["threads"] = torch.get_num_threads()
    row["repeats"] = repeats
    return row


def check(name):
    """Tiny correctness run: finite densities, sample -> log_prob round trip, inverse."""
    model = build(name)
    row = {"flow": name, "weights": weights(model)}
    with torch.no_grad():
        for parameter in model.parameters():  # leave the zero-initialized identity start
            parameter.add_(0.01 * torch.randn_like(parameter))
        log_p = score(model)(images(4))
        row["log_prob finite"] = bool(torch.isfinite(log_p).all())
        row["log_prob nats/image"] = log_p.mean().item()
        start = time.perf_counter()
        x, log_q = model.sample(2)
        row["sample s"] = time.perf_counter() - start
        start = time.perf_counter()
        log_p = score(model)(x)
        row["log_prob(sample) s"] = time.perf_counter() - start
        row["sample shape"] = list(x.shape)
        row["log_prob(sample) finite"] = bool(torch.isfinite(log_p).all())
        row["max |log_prob(sample) - log_q|"] = (log_p - log_q).abs().max().item()
        if isinstance(model, nf.NormalizingFlow):
            z = torch.randn(2, DIMS)
            row["max |inverse(forward(z)) - z|"] = (
                (model.inverse(model.forward(z)) - z).abs().max().item()
            )
    return row


def run_one(args):
    torch.set_num_threads(args.threads)
    try:
        if args.check:
            row = check(args.one)
        else:
            row = measure(args.one, args.repeats, args.batch, args.compile, args.compile_timeout)
    except Exception as error:
        row = {"flow": args.one, "error": failure(error)}
    print(json.dumps(row), flush=True)


def run_all(args):
    """Each flow in a subprocess of this script; their rows, one per line."""
    options = [
        *("--repeats", str(args.repeats), "--batch", str(args.batch)),
        *("--threads", str(args.threads)),
        "--compile" if args.compile else "--no-compile",
        *("--compile-timeout", str(args.compile_timeout)),
        *(["--check"] if args.check else []),
    ]
    for name in args.flows:
        command = [sys.executable, os.path.abspath(__file__), "--one", name, *options]
        print(f"{name}: running", file=sys.stderr, flush=True)
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
        lines = done.stdout.strip().splitlines()
        if done.returncode or not lines:
            row = {"flow": name, "error": f"subprocess exited with {done.returncode}"}
            print(json.dumps(row), flush=True)
        else:
            print(lines[-1], flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flows", nargs="+", default=FLOWS, choices=FLOWS + EXTRA)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--compile-timeout", type=float, default=120.0, help="seconds (compile + first call)"
    )
    parser.add_argument("--check", action="store_true", help="tiny correctness run, no timing")
    parser.add_argument("--one", choices=FLOWS + EXTRA, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_one(args)
    else:
        run_all(args)


if __name__ == "__main__":
    main()
