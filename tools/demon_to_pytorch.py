#!/usr/bin/env python3
"""A demon-pruned ResNet-18 (CIFAR) in PyTorch.

`resnet18_cifar10 --config C --export CHECKPOINT --out DIR` writes DIR/model.safetensors (weights
and buffers under PyTorch names), DIR/model.json (widths, input normalization, the test accuracy
the run recorded and the test set it used) and DIR/check.safetensors (test images and the C++
logits on them). This script rebuilds the network at the pruned widths, read from the tensors'
shapes, loads the weights, and checks that its logits match the C++ ones (and, with --data-dir,
its CIFAR-10 test accuracy against the run's, when the run tested on CIFAR-10). Use it as a
module to get the model:

    from demon_to_pytorch import load_pruned_resnet
    model = load_pruned_resnet("DIR")        # an nn.Module in eval mode

Exit status: 0 when the logits agree within --tolerance, 1 when they do not, 2 on bad input.
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file


class ChannelSelection(nn.Module):
    """demon::ChannelSelection: output channel target[k] is input channel source[k]; other
    output channels are zero (the shortcut of a channel the block no longer has)."""

    def __init__(self, source, target, channels):
        super().__init__()
        self.register_buffer("source", source)
        self.register_buffer("target", target)
        self.register_buffer("channels", channels)

    def forward(self, x):
        picked = x.index_select(1, self.source)
        out_channels = int(self.channels[1])
        if self.target.numel() == out_channels and torch.equal(
            self.target, torch.arange(out_channels, device=self.target.device)
        ):
            return picked
        out = x.new_zeros((x.size(0), out_channels) + tuple(x.shape[2:]))
        return out.index_copy(1, self.target, picked)


def conv(weight, stride):
    out_channels, in_channels, k, _ = weight.shape
    return nn.Conv2d(in_channels, out_channels, k, stride=stride, padding=k // 2, bias=False)


def batch_norm(state, prefix):
    return nn.BatchNorm2d(state[prefix + ".weight"].shape[0])


class BasicBlock(nn.Module):
    def __init__(self, state, prefix, stride):
        super().__init__()
        self.conv1 = conv(state[prefix + ".conv1.weight"], stride)
        self.bn1 = batch_norm(state, prefix + ".bn1")
        self.conv2 = conv(state[prefix + ".conv2.weight"], 1)
        self.bn2 = batch_norm(state, prefix + ".bn2")
        self.projection = self.projection_bn = self.selection = None
        if prefix + ".projection.weight" in state:
            self.projection = conv(state[prefix + ".projection.weight"], stride)
            self.projection_bn = batch_norm(state, prefix + ".projection_bn")
        elif prefix + ".selection.source" in state:
            self.selection = ChannelSelection(
                *(state[f"{prefix}.selection.{n}"] for n in ("source", "target", "channels"))
            )

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.projection is not None:
            out = out + self.projection_bn(self.projection(x))
        elif self.selection is not None:
            out = out + self.selection(x)
        else:
            out = out + x
        return F.relu(out)


class PrunedResNet18(nn.Module):
    """The example's ResNet-18 (3x3 stem, no max-pool, 2-2-2-2 basic blocks) at the widths of
    `state`, a state dict from model.safetensors."""

    def __init__(self, state):
        super().__init__()
        self.stem = conv(state["stem.weight"], 1)
        self.stem_bn = batch_norm(state, "stem_bn")
        for stage, stride in zip(range(1, 5), (1, 2, 2, 2)):
            blocks = [BasicBlock(state, f"layer{stage}.{b}", stride if b == 0 else 1) for b in range(2)]
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.head = nn.Linear(state["head.weight"].shape[1], state["head.weight"].shape[0])

    def forward(self, x):
        h = F.relu(self.stem_bn(self.stem(x)))
        for stage in range(1, 5):
            h = getattr(self, f"layer{stage}")(h)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


def load_pruned_resnet(directory):
    state = load_file(os.path.join(directory, "model.safetensors"))
    model = PrunedResNet18(state)
    # strict: every tensor of the file has a place in the module and every place a tensor.
    model.load_state_dict(state, strict=True)
    return model.eval()


def cifar10_test(data_dir):
    """The test set of CIFAR-10's binary release: uint8 images [N, 3, 32, 32], labels [N]."""
    for path in (os.path.join(data_dir, "test_batch.bin"),
                 os.path.join(data_dir, "cifar-10-batches-bin", "test_batch.bin")):
        if os.path.exists(path):
            raw = torch.frombuffer(bytearray(open(path, "rb").read()), dtype=torch.uint8)
            records = raw.view(-1, 3073)
            return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].long()
    raise FileNotFoundError(f"no test_batch.bin in {data_dir}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export_dir", help="the --out of resnet18_cifar10 --export")
    parser.add_argument("--data-dir", help="CIFAR-10 binary release: also check test accuracy")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max |logit difference|")
    args = parser.parse_args()
    torch.manual_seed(0)
    try:
        model = load_pruned_resnet(args.export_dir)
        description = json.load(open(os.path.join(args.export_dir, "model.json")))
        check = load_file(os.path.join(args.export_dir, "check.safetensors"))
    except (OSError, KeyError, RuntimeError, ValueError) as error:
        print(f"demon_to_pytorch: {error}", file=sys.stderr)
        return 2
    parameters = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        logits = model(check["input"])
    difference = (logits - check["logits"]).abs().max().item()
    agree = (logits.argmax(1) == check["logits"].argmax(1)).float().mean().item()
    print(f"parameters {parameters} (C++: {description['parameters']}); logits on "
          f"{check['input'].shape[0]} images: max |difference| {difference:.3g}, same class "
          f"for {agree:.2%}")
    ok = difference <= args.tolerance and parameters == description["parameters"]
    if args.data_dir:
        images, labels = cifar10_test(args.data_dir)
        norm = description["normalization"]
        mean = torch.tensor(norm["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(norm["std"]).view(1, 3, 1, 1)
        correct = 0
        with torch.no_grad():
            for start in range(0, len(labels), 1000):
                x = (images[start:start + 1000].float() / 255.0 - mean) / std
                correct += (model(x).argmax(1) == labels[start:start + 1000]).sum().item()
        accuracy = correct / len(labels)
        # The C++ accuracy is the run's own; it compares only when the run tested on CIFAR-10.
        if description.get("test_accuracy_on") == "cifar10":
            print(f"test accuracy {accuracy:.4f} (C++: {description['test_accuracy']:.4f})")
            ok = ok and abs(accuracy - description["test_accuracy"]) <= 2 / len(labels)
        else:
            print(f"test accuracy {accuracy:.4f} (the run recorded no CIFAR-10 accuracy to "
                  "compare with)")
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
