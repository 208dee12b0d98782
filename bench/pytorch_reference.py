#!/usr/bin/env python3
"""The harness's DCGAN training step in plain PyTorch eager, timed like `dcgan bench`.

    python bench/pytorch_reference.py [--device cpu|cuda|cuda:N] [--width W] [--steps N]
                                      [--warmup K] [--threads T] [--seed S]

It prints one `bench ...` line on stdout with the same keys, rounding and FLOP count as
`dcgan bench`, so `bench/compare.sh` can set the two side by side; the torch version and device
go to stderr. The code is deliberately ordinary eager PyTorch (no torch.compile, no
channels_last, default cuDNN settings): it stands for what a PyTorch user would write, which is
the bar the Rust backends are measured against.

What mirrors the Rust harness (src/model.rs, src/step.rs, src/bench.rs):
- 64x64 images, 1 channel, z of 100, batch 64 plus 64 extra z per step.
- Every linear and conv layer has a bias, and weights *and* biases start N(0, 0.02): Burn's
  `Initializer::Normal` initialises both. Batch-norm keeps PyTorch's start (scale 1, shift 0),
  which is Burn's too, as are its momentum 0.1 and epsilon 1e-5.
- One device-to-host read per step (D's losses and accuracies plus the previous step's G loss),
  D updated first, then G through the just-updated D.
"""

import argparse
import math
import sys
import time
import warnings

# The venvs made by scripts/setup-libtorch.sh have no numpy, and torch warns about that on
# import; nothing here needs numpy, so the warning would only be noise on stderr.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402  (after the warning filter on purpose)
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

IMAGE_SIDE = 64
CHANNELS = 1
Z_DIM = 100
BATCH = 64
EXTRA_Z = 64
KERNEL = 5
BASE_SIDE = 4
INIT_STD = 0.02
LEAK = 0.2
DROPOUT = 0.3
LR_D = 5e-5
LR_G = 2e-4
BETAS = (0.5, 0.999)
EPS = 1e-8


class Generator(nn.Module):
    def __init__(self, width):
        super().__init__()
        ch = [8 * width, 4 * width, 2 * width, width, CHANNELS]
        self.base_channels = ch[0]
        self.project = nn.Linear(Z_DIM, ch[0] * BASE_SIDE * BASE_SIDE)
        self.project_norm = nn.BatchNorm2d(ch[0])
        # kernel 5, stride 2, padding 2, output_padding 1 doubles the side exactly: 4 -> 64.
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(cin, cout, KERNEL, stride=2, padding=2, output_padding=1)
            for cin, cout in zip(ch[:-1], ch[1:])
        )
        self.norms = nn.ModuleList(nn.BatchNorm2d(c) for c in ch[1:4])

    def forward(self, z):
        x = self.project(z).view(z.shape[0], self.base_channels, BASE_SIDE, BASE_SIDE)
        x = F.relu(self.project_norm(x))
        last = len(self.ups) - 1
        for i, up in enumerate(self.ups):
            x = up(x)
            x = F.relu(self.norms[i](x)) if i < last else torch.tanh(x)
        return x


class Discriminator(nn.Module):
    def __init__(self, width):
        super().__init__()
        ch = [CHANNELS, width, 2 * width, 4 * width, 8 * width]
        self.downs = nn.ModuleList(
            nn.Conv2d(cin, cout, KERNEL, stride=2, padding=2)
            for cin, cout in zip(ch[:-1], ch[1:])
        )
        self.dropout = nn.Dropout(DROPOUT)
        self.classify = nn.Linear(ch[4] * BASE_SIDE * BASE_SIDE, 1)

    def forward(self, images):
        x = images
        for i, down in enumerate(self.downs):
            x = F.leaky_relu(down(x), LEAK)
            if i % 2 == 1:  # after the 2nd and 4th conv, as in the harness
                x = self.dropout(x)
        return self.classify(x.flatten(1)).view(-1)  # one logit per image


def init_weights(module):
    """N(0, 0.02) for the weights and biases of every linear and (transposed) conv layer."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, INIT_STD)
            nn.init.normal_(m.bias, 0.0, INIT_STD)


# FLOPs, counted exactly as src/bench.rs counts them: 2 per multiply-add of the linear and conv
# layers only (biases, batch-norm and activations left out), for one image:
#   F_G = 2*100*(8w*16) + sum over the transposed convs of 2*Cin*Cout*25*H_in*W_in,
#         (Cin, Cout, H_in) = (8w,4w,4), (4w,2w,8), (2w,w,16), (w,1,32)
#   F_D = sum over the convs of 2*Cin*Cout*25*H_out*W_out + 2*(8w*16)*1,
#         (Cin, Cout, H_out) = (1,w,32), (w,2w,16), (2w,4w,8), (4w,8w,4)
# A step is 3*F_G*(B+E) + 3*F_D*(2B) + 2*F_D*(B+E): forward plus full backward is 3x the
# forward; G's loss pass through D needs D's forward and the gradient w.r.t. its input only, 2x.
def generator_flops(width):
    ladder = [8 * width, 4 * width, 2 * width, width, CHANNELS]
    # A transposed conv does Cin*Cout*k^2 multiply-adds per *input* pixel.
    convs = sum(
        ladder[i] * ladder[i + 1] * KERNEL * KERNEL * (BASE_SIDE << i) ** 2 for i in range(4)
    )
    return 2 * (Z_DIM * 8 * width * BASE_SIDE * BASE_SIDE + convs)


def discriminator_flops(width):
    ladder = [CHANNELS, width, 2 * width, 4 * width, 8 * width]
    # A conv does Cin*Cout*k^2 multiply-adds per *output* pixel: 32, 16, 8, 4.
    convs = sum(
        ladder[i] * ladder[i + 1] * KERNEL * KERNEL * ((IMAGE_SIDE // 2) >> i) ** 2
        for i in range(4)
    )
    return 2 * (convs + 8 * width * BASE_SIDE * BASE_SIDE)


def step_flops(width, batch=BATCH, extra=EXTRA_Z):
    g, d = generator_flops(width), discriminator_flops(width)
    return 3 * g * (batch + extra) + 3 * d * (2 * batch) + 2 * d * (batch + extra)


def percentile(values, q):
    """Linear interpolation between order statistics (numpy's default), like src/bench.rs."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


class Trainer:
    def __init__(self, width, device):
        self.device = device
        self.g = Generator(width).to(device)
        self.d = Discriminator(width).to(device)
        init_weights(self.g)
        init_weights(self.d)
        self.g.train()
        self.d.train()
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=LR_G, betas=BETAS, eps=EPS)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=LR_D, betas=BETAS, eps=EPS)
        # The harness's bench also trains on a fixed random "real" batch made once on the
        # device, so neither side times data loading.
        shape = (BATCH, CHANNELS, IMAGE_SIDE, IMAGE_SIDE)
        self.real = torch.rand(shape, device=device) * 2 - 1
        self.pending_g_loss = None

    def step(self):
        """One training step; returns the host values read in the step's one transfer."""
        z = torch.randn(BATCH + EXTRA_Z, Z_DIM, device=self.device)
        fake = self.g(z)  # one G pass for the batch D sees and the extra z
        # One D pass over real and fake together is exact because D has no batch-norm.
        logits = self.d(torch.cat([self.real, fake[:BATCH].detach()]))
        real_logits, fake_logits = logits[:BATCH], logits[BATCH:]
        loss_real = -F.logsigmoid(real_logits).mean()
        loss_fake = -F.logsigmoid(-fake_logits).mean()
        acc_real = (real_logits > 0).float().mean()
        acc_fake = (fake_logits < 0).float().mean()

        # The step's only device-to-host read. The previous G loss rides along, so the host
        # waits for the device once per step, as in src/step.rs.
        parts = [loss_real.detach(), loss_fake.detach(), acc_real, acc_fake]
        if self.pending_g_loss is not None:
            parts.append(self.pending_g_loss)
        values = torch.stack(parts).tolist()

        self.opt_d.zero_grad(set_to_none=True)
        (loss_real + loss_fake).backward()
        self.opt_d.step()

        # G's loss goes through the just-updated D, whose weight gradients nobody needs:
        # freezing D leaves only the gradient w.r.t. its input to compute (Burn's no_grad).
        self.d.requires_grad_(False)
        g_loss = -F.logsigmoid(self.d(fake)).mean()
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.d.requires_grad_(True)
        self.pending_g_loss = g_loss.detach()
        return values


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Time the harness's DCGAN training step in PyTorch eager."
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--width", type=int, default=64, help="model width (default 64)")
    p.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's own choice)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = p.parse_args(argv)
    if args.width < 1 or args.steps < 1 or args.warmup < 0:
        p.error("--width and --steps must be at least 1, --warmup at least 0")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be at least 1")
    return args


def main(argv):
    args = parse_args(argv)
    try:
        device = torch.device(args.device)
    except RuntimeError as e:
        print(f"pytorch_reference: bad --device {args.device!r}: {e}", file=sys.stderr)
        return 2
    if device.type not in ("cpu", "cuda"):
        print(f"pytorch_reference: unsupported device {args.device}", file=sys.stderr)
        return 2
    cuda = device.type == "cuda"
    if cuda:
        if not torch.cuda.is_available():
            print("pytorch_reference: --device cuda, but torch sees no CUDA GPU",
                  file=sys.stderr)
            return 2
        index = device.index if device.index is not None else 0
        if index >= torch.cuda.device_count():
            print(f"pytorch_reference: no CUDA device {index}", file=sys.stderr)
            return 2
        device = torch.device("cuda", index)
        torch.cuda.set_device(device)
        # Named like the Rust backends (tch-cuda, tch-cuda:N).
        backend = "pytorch-cuda" if index == 0 else f"pytorch-cuda:{index}"
        where = torch.cuda.get_device_name(device)
    else:
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        backend = "pytorch-cpu"
        where = f"cpu, {torch.get_num_threads()} threads"
    print(f"pytorch_reference: torch {torch.__version__} on {device} ({where})",
          file=sys.stderr)

    torch.manual_seed(args.seed)  # seeds the CUDA generators too
    trainer = Trainer(args.width, device)

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        trainer.step()
    step_ms = []
    values = None
    for _ in range(args.steps):
        # The step's own read already waits for D's pass; the syncs make each timed step
        # also own its G update rather than leave it to the next step.
        sync()
        started = time.perf_counter()
        values = trainer.step()
        sync()
        step_ms.append((time.perf_counter() - started) * 1e3)
    last_g = trainer.pending_g_loss.item()
    if not all(math.isfinite(v) for v in values + [last_g]):
        print(f"pytorch_reference: a loss is not finite: {values + [last_g]}", file=sys.stderr)
        return 1

    flop = step_flops(args.width)
    median = percentile(step_ms, 0.5)
    threads = 0 if cuda else torch.get_num_threads()
    print(
        f"bench backend={backend} width={args.width} batch={BATCH} extra_z={EXTRA_Z} "
        f"steps={len(step_ms)} threads={threads} median_ms={median:.1f} "
        f"p25_ms={percentile(step_ms, 0.25):.1f} p75_ms={percentile(step_ms, 0.75):.1f} "
        f"min_ms={min(step_ms):.1f} max_ms={max(step_ms):.1f} "
        f"gflop_per_step={flop / 1e9:.3f} gflops={flop / (median / 1e3) / 1e9:.1f}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
