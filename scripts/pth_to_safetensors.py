#!/usr/bin/env python3
"""Converts a PyTorch state dict saved with `torch.save` (`.pth`/`.pt`/`.pth.tar`: the zip format
of PyTorch >= 1.6 and the legacy pickle stream before it) to safetensors, which `iekd` reads.
Needs only the Python standard library: no torch.

    python3 scripts/pth_to_safetensors.py MODEL.pth OUT.safetensors [--key state_dict]
        [--rename OLD=NEW ...] [--keep-prefix]

The state dict is the file's top-level dict of tensors, or the dict under --key (by default the
first of state_dict, model, model_state_dict, net that holds tensors: how training scripts wrap
it with the epoch and optimiser). A `module.` prefix (DataParallel) is removed unless
--keep-prefix. --rename replaces a substring of every key, e.g. `--rename downsample=shortcut`
for RepDistiller's option-B shortcuts. Tensors keep their dtype (iekd converts f16, bf16 and f64
to f32); only the pickle globals a state dict uses are allowed, so the file cannot run code.
"""
import argparse
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile

# Storage class -> (safetensors dtype, bytes per element).
STORAGES = {
    "FloatStorage": ("F32", 4), "DoubleStorage": ("F64", 8), "HalfStorage": ("F16", 2),
    "BFloat16Storage": ("BF16", 2), "LongStorage": ("I64", 8), "IntStorage": ("I32", 4),
    "ShortStorage": ("I16", 2), "CharStorage": ("I8", 1), "ByteStorage": ("U8", 1),
    "BoolStorage": ("BOOL", 1),
}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
WRAPPERS = ("state_dict", "model", "model_state_dict", "net")


class StorageType:
    def __init__(self, name):
        self.dtype, self.size = STORAGES[name]


class Tensor:
    """A tensor's view of a storage: read out as contiguous little-endian bytes."""

    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)

    def to_bytes(self, read_storage):
        dtype, size, data = read_storage(self.storage)
        count = 1
        for d in self.shape:
            count *= d
        contiguous, expect = True, 1
        for d, s in zip(reversed(self.shape), reversed(self.stride)):
            if d != 1 and s != expect:
                contiguous = False
            expect *= d
        if contiguous:
            start = self.offset * size
            return dtype, data[start:start + count * size]
        out = bytearray()
        for index in range(count):
            pos, rest = self.offset, index
            for d, s in zip(reversed(self.shape), reversed(self.stride)):
                pos, rest = pos + (rest % d) * s, rest // d
            out += data[pos * size:(pos + 1) * size]
        return dtype, bytes(out)


def rebuild_tensor(storage, offset, shape, stride, *_):
    return Tensor(storage, offset, shape, stride)


def rebuild_parameter(tensor, *_):
    return tensor


class Unpickler(pickle.Unpickler):
    """Allows exactly the globals of a saved state dict; storages come back as keys."""

    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return rebuild_parameter
        if module == "torch" and name in STORAGES:
            return StorageType(name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a state dict")

    def persistent_load(self, pid):
        # ('storage', storage type, key, location, numel[, view metadata])
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        kind, key = pid[1], str(pid[2])
        self.storages.setdefault(key, kind)
        return key


def load_zip(path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = next(n for n in names if n.endswith("/data.pkl") or n == "data.pkl")
        root = pkl[: -len("data.pkl")]
        order = z.read(root + "byteorder").decode() if root + "byteorder" in names else "little"
        if order != "little":
            raise SystemExit(f"{path}: big-endian files are not supported")
        types = {}
        obj = Unpickler(io.BytesIO(z.read(pkl)), types).load()
        blobs = {key: z.read(f"{root}data/{key}") for key in types}
    return obj, lambda key: (types[key].dtype, types[key].size, blobs[key])


def load_legacy(path):
    with open(path, "rb") as f:
        if pickle.load(f) != LEGACY_MAGIC:
            raise SystemExit(f"{path}: neither a zip nor a legacy PyTorch file")
        pickle.load(f)  # protocol version
        pickle.load(f)  # system info
        types = {}
        obj = Unpickler(f, types).load()
        blobs = {}
        for key in pickle.load(f):
            (count,) = struct.unpack("<q", f.read(8))
            blobs[key] = f.read(count * types[key].size)
    return obj, lambda key: (types[key].dtype, types[key].size, blobs[key])


def state_dict(obj, key):
    is_tensors = lambda d: isinstance(d, dict) and d and all(isinstance(v, Tensor) for v in d.values())
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            raise SystemExit(f"no key {key!r} at the top of the file")
        obj = obj[key]
    elif not is_tensors(obj) and isinstance(obj, dict):
        obj = next((obj[k] for k in WRAPPERS if is_tensors(obj.get(k))), obj)
    if not is_tensors(obj):
        raise SystemExit("the file holds no dict of tensors (name the wrapping key with --key)")
    return obj


def write_safetensors(path, tensors):
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        dtype, shape, data = tensors[name]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--key", help="the key holding the state dict")
    ap.add_argument("--rename", action="append", default=[], metavar="OLD=NEW")
    ap.add_argument("--keep-prefix", action="store_true", help="keep a leading 'module.'")
    args = ap.parse_args()
    try:
        obj, read = (load_zip if zipfile.is_zipfile(args.model) else load_legacy)(args.model)
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, StopIteration, struct.error) as e:
        raise SystemExit(f"{args.model}: not a readable PyTorch file ({e})")
    tensors = {}
    for name, t in state_dict(obj, args.key).items():
        if not args.keep_prefix and name.startswith("module."):
            name = name[len("module."):]
        for rule in args.rename:
            old, _, new = rule.partition("=")
            name = name.replace(old, new)
        dtype, data = t.to_bytes(read)
        tensors[name] = (dtype, t.shape, data)
    write_safetensors(args.out, tensors)
    print(f"{len(tensors)} tensors from {args.model} written to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
