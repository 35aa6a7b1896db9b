#!/usr/bin/python3
"""Turns PyTorch weights into a safetensors file that deepshift loads (nn::load_weights).

    /usr/bin/python3 tools/export_torch_weights.py CHECKPOINT.pth -o model.safetensors
    /usr/bin/python3 tools/export_torch_weights.py --torchvision resnet18 -o resnet18.safetensors

CHECKPOINT is a file saved with torch.save holding a state dict, a whole module, or a dict with
the state dict under 'state_dict' (as the original DeepShift trainers save it); the 'module.'
prefix that DataParallel adds is removed. --torchvision takes the pre-trained weights of a
torchvision model from the local torch hub cache only: nothing is downloaded.

The file is written with struct and json alone (no safetensors package); docs/weights-file.md
describes the format and the dtypes. float16/bfloat16 tensors are widened to F32 and bool to U8,
since deepshift computes in f32.
"""
import argparse
import json
import os
import struct
import sys
from urllib.parse import urlparse

import torch

STORED_DTYPES = {
    torch.float32: "F32",
    torch.float64: "F64",
    torch.int32: "I32",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.int64: "I64",
}
WIDENED = {torch.float16: torch.float32, torch.bfloat16: torch.float32, torch.bool: torch.uint8}
DATA_PARALLEL_PREFIX = "module."


class ExportError(Exception):
    pass


def state_dict_of(loaded, source):
    """The flat name -> tensor map inside whatever torch.load returned."""
    if isinstance(loaded, torch.nn.Module):
        loaded = loaded.state_dict()
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not loaded:
        raise ExportError(f"{source}: no state dict found (expected a dict of tensors, a module, "
                          f"or a dict with a 'state_dict' entry)")
    for name, value in loaded.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise ExportError(f"{source}: entry {name!r} is a {type(value).__name__}, not a "
                              f"tensor; is this a state dict?")
    if all(name.startswith(DATA_PARALLEL_PREFIX) for name in loaded):
        loaded = {name[len(DATA_PARALLEL_PREFIX):]: value for name, value in loaded.items()}
    return loaded


def load_checkpoint(path, trust):
    if not os.path.isfile(path):
        raise ExportError(f"{path}: no such file")
    try:
        # weights_only refuses arbitrary pickled objects, so an untrusted file cannot run code.
        loaded = torch.load(path, map_location="cpu", weights_only=not trust)
    except Exception as error:  # torch raises several types for a refused or broken pickle
        hint = "" if trust else (" (if it holds other Python objects and you trust the file, "
                                 "pass --trust-checkpoint)")
        raise ExportError(f"{path}: cannot load: {error}{hint}") from error
    return state_dict_of(loaded, path), {"source": os.path.basename(path)}


def load_torchvision(name, weights_name):
    import torchvision.models

    try:
        weights_enum = torchvision.models.get_model_weights(name)
    except (ValueError, KeyError) as error:
        raise ExportError(f"unknown torchvision model {name!r}") from error
    try:
        weights = weights_enum[weights_name] if weights_name != "DEFAULT" else weights_enum.DEFAULT
    except KeyError as error:
        choices = ", ".join(w.name for w in weights_enum)
        raise ExportError(f"{name}: no weights {weights_name!r} (choices: {choices})") from error
    filename = os.path.basename(urlparse(weights.url).path)
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", filename)
    if not os.path.isfile(cached):
        raise ExportError(f"{name}: the weights {weights} are not in the local torch hub cache "
                          f"(expected {cached}); nothing is downloaded here: copy the file "
                          f"from {weights.url} to that path, or pass a checkpoint file instead")
    # Building the model through torchvision applies its fixes to old key names (densenet).
    model = torchvision.models.get_model(name, weights=weights)
    return model.state_dict(), {"source": f"torchvision {name} {weights}"}


def stored_form(name, tensor):
    tensor = tensor.detach().cpu()
    tensor = tensor.to(WIDENED.get(tensor.dtype, tensor.dtype))
    if tensor.dtype not in STORED_DTYPES:
        raise ExportError(f"tensor {name!r} has dtype {tensor.dtype}, which deepshift cannot read")
    data = tensor.contiguous().numpy()
    if data.dtype.byteorder == ">" or (data.dtype.byteorder == "=" and sys.byteorder == "big"):
        data = data.byteswap()
    return STORED_DTYPES[tensor.dtype], list(tensor.shape), data.tobytes()


def write_safetensors(path, state, metadata):
    """Writes path + '.tmp' and renames it, so a failure never leaves a partial file at path."""
    header = {"__metadata__": metadata} if metadata else {}
    blobs = []
    offset = 0
    for name, tensor in state.items():
        dtype, shape, blob = stored_form(name, tensor)
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # aligns the data section to 8 bytes, as the reference does
    temp = path + ".tmp"
    try:
        with open(temp, "wb") as out:
            out.write(struct.pack("<Q", len(text)))
            out.write(text)
            for blob in blobs:
                out.write(blob)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except OSError as error:
        if os.path.lexists(temp):
            os.remove(temp)
        raise ExportError(f"{path}: cannot write: {error}") from error
    return offset


def parse_metadata(pairs):
    metadata = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ExportError(f"--metadata {pair!r}: expected KEY=VALUE")
        metadata[key] = value
    return metadata


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Export PyTorch weights to a safetensors file for deepshift.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("checkpoint", nargs="?", help="a .pth/.pt file saved with torch.save")
    source.add_argument("--torchvision", metavar="MODEL",
                        help="a torchvision model name (e.g. resnet18); weights from the local "
                             "torch hub cache")
    parser.add_argument("--weights", default="DEFAULT",
                        help="which torchvision weights (default: DEFAULT)")
    parser.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    parser.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                        help="extra string metadata stored in the file (repeatable)")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow arbitrary pickled objects in the checkpoint (runs its code)")
    args = parser.parse_args(argv)
    try:
        if args.torchvision:
            state, metadata = load_torchvision(args.torchvision, args.weights)
        else:
            state, metadata = load_checkpoint(args.checkpoint, args.trust_checkpoint)
        metadata = {"format": "pt", **metadata, **parse_metadata(args.metadata)}
        data_bytes = write_safetensors(args.output, state, metadata)
    except ExportError as error:
        print(f"export_torch_weights: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: {len(state)} tensors, {data_bytes} bytes of data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
