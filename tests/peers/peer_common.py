"""What the PyTorch peer scripts share: safetensors in a dozen lines (torch 1.13 has no
safetensors module), the Fashion-MNIST test images, the networks of peer_models.hpp built
module for module in PyTorch, and the comparison."""
import gzip
import json
import os
import struct
import sys

SKIP = 77  # ctest's SKIP_RETURN_CODE for these tests


def skip(reason):
    print("SKIPPED: " + reason)
    sys.exit(SKIP)


try:
    import numpy as np
except ImportError:
    skip("python3-numpy is not installed (apt-get install python3-numpy)")

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
KINDS = ("mlp", "bn", "cnn")
TOLERANCE = 1e-5  # max |difference| relative to max |logit|


def write_safetensors(path, arrays):
    """arrays: name -> numpy array, written in this order."""
    header, offset, blobs = {}, 0, []
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        dtype = {v: k for k, v in DTYPES.items()}[a.dtype.type]
        blob = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    """name -> numpy array, in the file's header order."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = data[8 + n + b:8 + n + end]
        out[name] = np.frombuffer(raw, dtype=np.dtype(DTYPES[e["dtype"]]).newbyteorder("<")).reshape(e["shape"])
    return out


def test_images(count=1000, directory="/usr/share/datasets/fashion-mnist"):
    path = os.path.join(directory, "t10k-images-idx3-ubyte.gz")
    if not os.path.exists(path):
        skip("Fashion-MNIST not found at " + path + " (Debian package dataset-fashion-mnist)")
    with gzip.open(path, "rb") as f:
        data = f.read()
    pixels = np.frombuffer(data, dtype=np.uint8, offset=16)[:count * 784]
    return pixels.reshape(count, 784).astype(np.float32) / np.float32(255)


def build(torch, kind, seed):
    """The network `kind` of peer_models.hpp, with random weights and BatchNorm statistics."""
    nn = torch.nn
    torch.manual_seed(seed)
    if kind == "mlp":
        m = nn.Sequential(nn.Linear(784, 120), nn.ReLU(), nn.Linear(120, 60), nn.ReLU(), nn.Linear(60, 10))
    elif kind == "bn":
        m = nn.Sequential(nn.Linear(784, 64), nn.BatchNorm1d(64), nn.GELU(), nn.Dropout(0.2),
                          nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
    else:
        layers = []
        channels = 1
        for out in (32, 64):
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(),
                       nn.Dropout2d(0.1), nn.MaxPool2d(2)]
            channels = out
        m = nn.Sequential(*layers, nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.25),
                          nn.Linear(128, 10))
    with torch.no_grad():
        for module in m.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.num_batches_tracked.fill_(123)
    return m.eval()


def forward(torch, model, images):
    x = torch.from_numpy(np.array(images, dtype=np.float32))
    if any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        x = x.reshape(-1, 1, 28, 28)
    with torch.no_grad():
        return model(x).numpy()


def compare(what, expected, got):
    """Prints the max difference; returns True when within TOLERANCE of the logit scale."""
    diff = float(np.max(np.abs(expected.astype(np.float64) - got.astype(np.float64))))
    scale = float(np.max(np.abs(expected)))
    ok = expected.shape == got.shape and diff <= TOLERANCE * scale
    print(f"{what}: {expected.shape[0]} images, max |logit| {scale:.4g}, max abs difference "
          f"{diff:.3g} ({diff / scale:.3g} relative) {'OK' if ok else 'FAIL'}")
    return ok
