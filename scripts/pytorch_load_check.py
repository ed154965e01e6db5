#!/usr/bin/env python3
"""Loads an iekd ResNet checkpoint into the usual PyTorch CIFAR ResNet with `load_state_dict`
(strict) and evaluates it on the Fashion-MNIST test set, for comparison with `iekd eval`.

Usage: python scripts/pytorch_load_check.py MODEL.safetensors [--depth 20] [--data DIR]
Needs torch, numpy and safetensors. The images are prepared as iekd prepares them: zero-padded
from 28x28 to 32x32 and normalised with mean 0.2860, std 0.3530.
"""
import argparse
import gzip
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

from cifar_block import BasicBlock


class ResNet(nn.Module):
    def __init__(self, depth, in_channels=1, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for g, (w, s) in enumerate([(16, 1), (32, 2), (64, 2)]):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(cin, w, s if i == 0 else 1))
                cin = w
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()
    net = ResNet(args.depth)
    net.load_state_dict(load_file(args.model), strict=True)
    net.eval()
    images = read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    labels = torch.from_numpy(read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")).astype(np.int64))
    x = torch.from_numpy((np.pad(images, ((0, 0), (2, 2), (2, 2))) - 0.2860) / 0.3530)[:, None]
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), 500):
            logits = net(x[i:i + 500])
            loss += F.cross_entropy(logits, labels[i:i + 500], reduction="sum").item()
            correct += (logits.argmax(1) == labels[i:i + 500]).sum().item()
    print(f"pytorch load_state_dict(strict=True): test loss {loss / len(x):.4f}, top-1 accuracy {100.0 * correct / len(x):.2f}%")


if __name__ == "__main__":
    main()
