#!/usr/bin/env python3
"""Writes the PyTorch files of tests/data/torch/ (needs torch and safetensors): a CIFAR ResNet-8
for 1-channel images with random weights and batch-norm statistics, rounded to bf16 so that
every file holds the same values, saved as PyTorch users save it:

- resnet8.safetensors: `safetensors.torch.save_file(state_dict)` (f32, 0-dim int64 counters);
- resnet8-bf16.pth: `torch.save({"epoch": 3, "state_dict": ...})` of a DataParallel model
  (`module.` prefixes), weights in bf16 (the zip format);
- resnet8-legacy.pth: `torch.save(state_dict, _use_new_zipfile_serialization=False)`, f32;
- resnet8-logits.json: the model's eval-mode logits on two fixed 32x32 images.

    /path/to/torch/python scripts/make_torch_fixtures.py tests/data/torch
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from pytorch_load_check import ResNet  # noqa: E402


def images():
    """Two fixed 1x32x32 images: pixel (i, j) of image n is sin(0.3 i + 0.2 j + n)."""
    i = torch.arange(32, dtype=torch.float32)[:, None]
    j = torch.arange(32, dtype=torch.float32)[None, :]
    return torch.stack([torch.sin(0.3 * i + 0.2 * j + n) for n in range(2)])[:, None]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(20261202)
    net = ResNet(8)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(123)
        for p in net.state_dict().values():
            if p.is_floating_point():
                p.copy_(p.bfloat16().float())
    net.eval()
    sd = net.state_dict()
    save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(out, "resnet8.safetensors"))
    wrapped = {"module." + k: (v.bfloat16() if v.is_floating_point() else v) for k, v in sd.items()}
    torch.save({"epoch": 3, "state_dict": wrapped}, os.path.join(out, "resnet8-bf16.pth"))
    torch.save(sd, os.path.join(out, "resnet8-legacy.pth"), _use_new_zipfile_serialization=False)
    x = images()
    with torch.no_grad():
        logits = net(x)
    with open(os.path.join(out, "resnet8-logits.json"), "w") as f:
        json.dump({"torch": torch.__version__, "images": "sin(0.3 i + 0.2 j + n)",
                   "logits": logits.tolist()}, f, indent=1)
        f.write("\n")
    print(f"wrote {out} with torch {torch.__version__}")


if __name__ == "__main__":
    main()
