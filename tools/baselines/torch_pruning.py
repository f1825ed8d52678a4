#!/usr/bin/env python3
"""Torch-Pruning's usual recipe in the example's harness: train dense, prune, fine-tune.

    python tools/baselines/torch_pruning.py --config configs/resnet18_adamw_w8_80ep.json \\
        --data-dir DIR --flops-ratio 0.45 --seed 0 --out runs/tp/seed_0

The network, data, augmentation, optimizer and learning-rate schedule are those of
examples/resnet18_cifar10 for the same config file:

- ResNet-18 for CIFAR (3x3 stem, no max-pool, 2-2-2-2 basic blocks of 64/128/256/512 channels
  times `width`, rounded, 1x1 conv + BN projections where the shape changes, identity shortcuts),
  Kaiming-normal convolutions (fan out), BatchNorm at 1/0, LibTorch's default Linear;
- the CIFAR-10 binary release, normalized with the example's mean and std; each training batch
  reflection-padded by 4, cropped back to 32x32 at random and flipped horizontally at random;
  batches of `batch_size`, the last partial batch dropped, a new order every epoch;
- `optimizer` adamw or sgd with `lr`, `weight_decay` (and `momentum`), and the one-cycle
  learning rate `lr_schedule` (as the example, "step" when absent): one_cycle (optax's
  cosine_onecycle_schedule: peak/25 rising to the peak at 30% of the phase, then falling to
  peak/25e4), step (times `lr_decay_factor` at each of `lr_decay_epochs`, placed at the same
  fractions of each phase as of the whole run) or constant.

The run's epochs are split: `--dense-fraction` of them (default 0.5) train the dense network
over one one-cycle phase; then Torch-Pruning prunes it to `--flops-ratio` of its FLOPs, as its
CIFAR benchmark does (GroupMagnitudeImportance with p=2, MetaPruner with pruning_ratio 1 over 400
iterative steps, stepped until the FLOPs ratio is reached; the classifier is not pruned); the
rest of the epochs fine-tune the pruned network with a fresh optimizer over a second one-cycle
phase whose peak is `--finetune-lr-scale` (default 0.1) times `lr`.

FLOPs are counted as demon counts them: two per multiply-add of the convolution and linear layers
(biases left out), for one 32x32 image. `--check-network` prints the dense network's parameters and FLOPs and, with
`--reference SUMMARY.json` (a summary of the example), fails unless they equal the example's
`initial_parameters` and `initial_flops`.

`--device cuda`, `--amp bf16` and `--channels-last` run it as the example runs on a GPU (the
data set then lives on the device, and augmentation runs there from the same random draws).

Writes OUT/metrics.jsonl (one line per epoch), OUT/checkpoint.pt after every epoch (atomically;
a killed run started again with the same arguments continues from it: `--resume` is accepted
for tools/sweep.py and changes nothing) and OUT/summary.json
(accuracy, FLOPs, parameters, mean FLOPs over the run, seconds, the versions of torch and
torch_pruning, the command).
"""

import argparse
import json
import math
import os
import sys
import time

# This file shares its name with the package it drives: keep its own folder off the import path.
sys.path = [p for p in sys.path
            if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2023, 0.1994, 0.2010)


# --- the network -----------------------------------------------------------------------------


class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.projection = None
        if stride != 1 or in_channels != out_channels:
            self.projection = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, 0, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.projection is None else self.projection(x)
        return F.relu(out + shortcut)


class ResNet18(nn.Module):
    def __init__(self, width, num_classes=10):
        super().__init__()

        def scaled(channels):
            return max(1, int(math.floor(channels * width + 0.5)))

        stem = scaled(64)
        self.stem = nn.Conv2d(3, stem, 3, 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(stem)
        blocks, channels = [], stem
        for widths, stride in zip((64, 128, 256, 512), (1, 2, 2, 2)):
            for b in range(2):
                out = scaled(widths)
                blocks.append(BasicBlock(channels, out, stride if b == 0 else 1))
                channels = out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        h = F.relu(self.stem_bn(self.stem(x)))
        h = self.blocks(h)
        return self.head(F.adaptive_avg_pool2d(h, 1).flatten(1))


def device_of(model):
    return next(model.parameters()).device


def flops_of(model):
    """FLOPs of the convolution and linear layers for one 32x32 image: two per multiply-add."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kernel = module.weight.shape[1] * module.weight.shape[2] * module.weight.shape[3]
            total += 2 * output.numel() * kernel
        elif isinstance(module, nn.Linear):
            total += 2 * output.numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32, device=device_of(model)))
    model.train(was_training)
    for hook in hooks:
        hook.remove()
    return total


def parameters_of(model):
    return sum(p.numel() for p in model.parameters())


# --- data ------------------------------------------------------------------------------------


def read_cifar10(directory):
    nested = os.path.join(directory, "cifar-10-batches-bin")
    if os.path.isdir(nested):
        directory = nested

    def read(names):
        images, labels = [], []
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                raw = f.read()
            if len(raw) % 3073 != 0 or not raw:
                sys.exit(f"torch_pruning baseline: {path} is not a CIFAR-10 binary batch")
            records = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, 3073)
            labels.append(records[:, 0].long())
            images.append(records[:, 1:].reshape(-1, 3, 32, 32).clone())
        return torch.cat(images), torch.cat(labels)

    train = read([f"data_batch_{i}.bin" for i in range(1, 6)])
    test = read(["test_batch.bin"])
    return train, test


def normalize(images):
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def augment(images, generator):
    """Reflection-pad 4, a random 32x32 crop and a random horizontal flip per image. The draws
    come from `generator` (on the CPU), whatever the images' device."""
    n = images.shape[0]
    offsets = torch.randint(0, 9, (n, 2), generator=generator).to(images.device)
    flips = torch.randint(0, 2, (n,), generator=generator).bool().to(images.device)
    padded = F.pad(images, (4, 4, 4, 4), mode="reflect")
    span = torch.arange(32, device=images.device)
    rows = (offsets[:, 0:1] + span).view(n, 1, 32, 1).expand(n, 3, 32, 40)
    out = padded.gather(2, rows)
    cols = offsets[:, 1:2] + span
    cols = torch.where(flips.unsqueeze(1), cols.flip(1), cols)
    return out.gather(3, cols.view(n, 1, 1, 32).expand(n, 3, 32, 32))


# --- schedule --------------------------------------------------------------------------------


def one_cycle(step, span, peak, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
    """optax's cosine_onecycle_schedule, as demon::Schedule computes it."""
    rise_end = float(int(pct_start * span))
    start = peak / div_factor
    end = peak / (div_factor * final_div_factor)

    def interpolate(a, b, fraction):
        return b + (a - b) * 0.5 * (1.0 + math.cos(math.pi * fraction))

    if step < rise_end:
        return interpolate(start, peak, step / rise_end)
    if step < span:
        return interpolate(peak, end, (step - rise_end) / (span - rise_end))
    return end


def phase_lr(config, step, phase_steps, steps_per_epoch, epochs, peak):
    """The learning rate at `step` of a phase of `phase_steps` (the run has `epochs`)."""
    schedule = config.get("lr_schedule", "step")
    if schedule == "one_cycle":
        return one_cycle(step, phase_steps, peak)
    if schedule == "constant":
        return peak
    if schedule == "step":
        phase_epochs = phase_steps // steps_per_epoch
        lr = peak
        for at in config.get("lr_decay_epochs", [77, 154, 231]):
            if step // steps_per_epoch >= round(at * phase_epochs / epochs):
                lr *= config.get("lr_decay_factor", 0.2)
        return lr
    sys.exit(f"torch_pruning baseline: unknown lr_schedule \"{schedule}\"")


def make_optimizer(config, parameters, lr):
    if config.get("optimizer", "adamw") == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=config.get("momentum", 0.9),
                               weight_decay=config.get("weight_decay", 0.0))
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=config.get("weight_decay", 0.0))


# --- pruning ---------------------------------------------------------------------------------


def prune_to(model, flops_ratio):
    """Torch-Pruning's progressive pruning to a FLOPs ratio; returns the ratio reached."""
    import torch_pruning as tp

    example = torch.zeros(1, 3, 32, 32, device=device_of(model))
    base = flops_of(model)
    pruner = tp.pruner.MetaPruner(
        model, example, importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=1.0, iterative_steps=400, ignored_layers=[model.head])
    model.eval()
    ratio = 1.0
    for _ in range(400):
        pruner.step()
        ratio = flops_of(model) / base
        if ratio <= flops_ratio:
            break
    model.train()
    return ratio


# --- the run ---------------------------------------------------------------------------------


def evaluate(model, images, labels, autocast):
    model.eval()
    correct = 0
    with torch.no_grad(), autocast():
        for start in range(0, images.shape[0], 1000):
            logits = model(normalize(images[start:start + 1000]))
            correct += (logits.argmax(1) == labels[start:start + 1000]).sum().item()
    model.train()
    return correct / images.shape[0]


def save_atomically(obj, path):
    temporary = path + ".tmp"
    torch.save(obj, temporary)
    os.replace(temporary, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the example's JSON config")
    parser.add_argument("--data-dir", help="CIFAR-10 binary release ($CIFAR10_DIR)")
    parser.add_argument("--flops-ratio", type=float, help="prune to this fraction of the FLOPs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="output directory")
    parser.add_argument("--dense-fraction", type=float, default=0.5,
                        help="fraction of the epochs trained dense before pruning")
    parser.add_argument("--finetune-lr-scale", type=float, default=0.1,
                        help="fine-tuning's peak learning rate over the config's lr")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--amp", choices=["off", "bf16"], default="off",
                        help="bf16: forward passes under autocast, as the example's --amp bf16")
    parser.add_argument("--channels-last", action="store_true",
                        help="the model and its inputs in channels-last memory format")
    parser.add_argument("--resume", action="store_true",
                        help="accepted for tools/sweep.py: a run always continues its checkpoint")
    parser.add_argument("--train-images", type=int,
                        help="train on the first N training images only (a quick check)")
    parser.add_argument("--check-network", action="store_true",
                        help="print the dense network's parameters and FLOPs, then exit")
    parser.add_argument("--reference", help="with --check-network: an example summary.json")
    args = parser.parse_args()

    with open(args.config) as f:
        config = json.load(f)
    width = config.get("width", 1.0)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device")
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = ResNet18(width)

    def autocast():
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                              enabled=args.amp == "bf16")

    if args.check_network:
        params, flops = parameters_of(model), flops_of(model)
        print(f"ResNet-18 width {width}: {params} parameters, {flops} FLOPs")
        if args.reference:
            with open(args.reference) as f:
                reference = json.load(f)
            expected = (reference["initial_parameters"], reference["initial_flops"])
            if (params, flops) != expected:
                sys.exit(f"the example's network has {expected[0]} parameters and "
                         f"{expected[1]} FLOPs; this one {params} and {flops}")
            print("matches the example's network")
        return

    if args.flops_ratio is None or args.out is None:
        parser.error("--flops-ratio and --out are required")
    if not 0.0 < args.flops_ratio < 1.0:
        parser.error(f"--flops-ratio must be in (0, 1), got {args.flops_ratio}")
    if not 0.0 < args.dense_fraction < 1.0:
        parser.error(f"--dense-fraction must be in (0, 1), got {args.dense_fraction}")
    data_dir = args.data_dir or os.environ.get("CIFAR10_DIR")
    if not data_dir:
        parser.error("--data-dir (or CIFAR10_DIR) is required")
    os.makedirs(args.out, exist_ok=True)
    (train_images, train_labels), (test_images, test_labels) = read_cifar10(data_dir)
    if args.train_images:
        train_images, train_labels = (train_images[:args.train_images],
                                      train_labels[:args.train_images])
    train_images, train_labels, test_images, test_labels = (
        t.to(device) for t in (train_images, train_labels, test_images, test_labels))
    model = model.to(device, memory_format=memory_format)

    epochs = int(config["epochs"])
    batch = int(config["batch_size"])
    lr = float(config["lr"])
    steps_per_epoch = train_images.shape[0] // batch
    dense_epochs = max(1, min(epochs - 1, round(epochs * args.dense_fraction)))
    dense_steps = dense_epochs * steps_per_epoch
    finetune_steps = (epochs - dense_epochs) * steps_per_epoch

    initial_flops, initial_parameters = flops_of(model), parameters_of(model)
    optimizer = make_optimizer(config, model.parameters(), lr)
    state = {"epoch": 0, "seconds": 0.0, "flops_ratio_sum": 0.0, "pruned_ratio": None}
    checkpoint_path = os.path.join(args.out, "checkpoint.pt")
    metrics_path = os.path.join(args.out, "metrics.jsonl")
    if os.path.exists(checkpoint_path):
        saved = torch.load(checkpoint_path, weights_only=False, map_location=device)
        model = saved["model"]
        optimizer = make_optimizer(config, model.parameters(), lr)
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["state"]
        torch.set_rng_state(saved["rng"])
        print(f"resumed after epoch {state['epoch']}")
    # Lines of epochs after the checkpoint were written by a run that died before saving.
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            kept = [line for line in f if json.loads(line)["epoch"] <= state["epoch"]]
        with open(metrics_path, "w") as f:
            f.writelines(kept)

    for epoch in range(state["epoch"], epochs):
        started = time.time()
        if epoch == dense_epochs and state["pruned_ratio"] is None:
            state["pruned_ratio"] = prune_to(model, args.flops_ratio)
            model = model.to(memory_format=memory_format)  # the cut tensors are new ones
            optimizer = make_optimizer(config, model.parameters(), lr * args.finetune_lr_scale)
            print(f"pruned to {state['pruned_ratio']:.4f} of the FLOPs "
                  f"({parameters_of(model)} parameters)")
        generator = torch.Generator().manual_seed(args.seed * 1000003 + epoch)
        order = torch.randperm(train_images.shape[0], generator=generator)
        finetuning = epoch >= dense_epochs
        phase_steps = finetune_steps if finetuning else dense_steps
        phase_peak = lr * args.finetune_lr_scale if finetuning else lr
        phase_start = dense_steps if finetuning else 0
        ratio = flops_of(model) / initial_flops
        # Summed on the device: a read per step would stall a GPU.
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        for b in range(steps_per_epoch):
            step = epoch * steps_per_epoch + b
            for group in optimizer.param_groups:
                group["lr"] = phase_lr(config, step - phase_start, phase_steps, steps_per_epoch,
                                       epochs, phase_peak)
            indices = order[b * batch:(b + 1) * batch].to(device)
            images = augment(normalize(train_images[indices]), generator)
            labels = train_labels[indices]
            with autocast():
                logits = model(images.contiguous(memory_format=memory_format))
                loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach().float()
            correct += (logits.argmax(1) == labels).sum()
        state["flops_ratio_sum"] += ratio * steps_per_epoch
        if device.type == "cuda":
            torch.cuda.synchronize()  # the epoch's kernels are done before its time is taken
        state["seconds"] += time.time() - started
        state["epoch"] = epoch + 1
        accuracy = evaluate(model, test_images, test_labels, autocast)
        line = {"epoch": epoch + 1, "loss": loss_sum.item() / steps_per_epoch,
                "train_accuracy": correct.item() / (steps_per_epoch * batch),
                "test_accuracy": accuracy, "flops_ratio": ratio,
                "parameters": parameters_of(model), "seconds": state["seconds"]}
        with open(metrics_path, "a") as f:
            f.write(json.dumps(line) + "\n")
        print(json.dumps(line), flush=True)
        save_atomically({"model": model, "optimizer": optimizer.state_dict(), "state": state,
                         "rng": torch.get_rng_state()}, checkpoint_path)

    from importlib.metadata import version

    summary = {
        "baseline": "torch_pruning", "torch_pruning_version": version("torch-pruning"),
        "torch_version": torch.__version__, "command": " ".join(sys.argv),
        "config": config, "seed": args.seed, "threads": args.threads,
        "device": str(device), "amp": args.amp, "channels_last": args.channels_last,
        "epochs": epochs, "dense_epochs": dense_epochs,
        "finetune_lr_scale": args.finetune_lr_scale, "flops_ratio_asked": args.flops_ratio,
        "test_accuracy": evaluate(model, test_images, test_labels, autocast),
        "flops": flops_of(model), "initial_flops": initial_flops,
        "flops_ratio": flops_of(model) / initial_flops,
        "parameters": parameters_of(model), "initial_parameters": initial_parameters,
        "mean_flops_ratio": state["flops_ratio_sum"] / (epochs * steps_per_epoch),
        "train_seconds": state["seconds"],
    }
    save_atomically_json(summary, os.path.join(args.out, "summary.json"))
    print(json.dumps(summary))


def save_atomically_json(obj, path):
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(temporary, path)


if __name__ == "__main__":
    main()
