"""Minimal safetensors reader and writer for the oracles (numpy only).

Written from the format description, independently of the C loader it is
used to check: an 8-byte little-endian header length N, then N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
then the data; offsets are relative to the first byte after the header.

The reader validates what it needs so that a broken oracle input fails loudly
instead of producing a plausible-looking wrong reference. The writer is also
used by test_bad_files.py to build deliberately malformed files, so it exposes
the raw pieces (header dict, data blob) as well as the convenient path.
"""

import json
import struct

import numpy as np

# dtype name -> (bytes per element, numpy dtype of the stored bits)
DTYPES = {
    "F64": (8, np.dtype("<f8")),
    "F32": (4, np.dtype("<f4")),
    "F16": (2, np.dtype("<f2")),
    "BF16": (2, np.dtype("<u2")),  # decoded by hand: numpy has no bfloat16
}


def bf16_bits_to_f32(bits):
    """bf16 is the top half of an IEEE f32, so widening is a 16-bit shift."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x):
    """Round f32 to bf16 with round-to-nearest-even (what torch .to(bfloat16) does)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def round_to_dtype(x, dtype):
    """The f32 values a tensor really holds once stored as `dtype`."""
    x = np.asarray(x, dtype=np.float32)
    if dtype == "F32":
        return x
    if dtype == "F16":
        return x.astype(np.float16).astype(np.float32)
    if dtype == "BF16":
        return bf16_bits_to_f32(f32_to_bf16_bits(x)).reshape(x.shape)
    raise ValueError("unsupported dtype " + dtype)


def encode_tensor(x, dtype):
    """Raw little-endian bytes of array x stored as dtype (F32, F16, BF16)."""
    x = np.asarray(x, dtype=np.float32)
    if dtype == "F32":
        return x.astype("<f4").tobytes()
    if dtype == "F16":
        return x.astype("<f2").tobytes()
    if dtype == "BF16":
        return f32_to_bf16_bits(x).astype("<u2").tobytes()
    raise ValueError("unsupported dtype " + dtype)


def build(tensors, metadata=None, lead=0):
    """Lay out tensors back to back, after `lead` unused bytes (lead=1 makes
    every tensor start at an odd address: legal, and a test of alignment).

    tensors: list of (name, dtype, array). Returns (header dict, data bytes);
    pass them to pack() (possibly after corrupting them) to get file bytes.
    """
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs = [b"\0" * lead]
    offset = lead
    for name, dtype, arr in tensors:
        raw = encode_tensor(arr, dtype)
        header[name] = {
            "dtype": dtype,
            "shape": list(np.shape(arr)),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    return header, b"".join(blobs)


def pack(header, data, header_len=None):
    """File bytes: length prefix + JSON header (space-padded to 8 bytes, as the
    reference writer does, so tensor data stays aligned) + data.
    header may be a dict or already-encoded bytes (for malformed-header tests);
    header_len overrides the length prefix (for lying-length tests)."""
    if isinstance(header, (bytes, bytearray)):
        hbytes = bytes(header)
    else:
        hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
        hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    n = len(hbytes) if header_len is None else header_len
    return struct.pack("<Q", n) + hbytes + data


def write(path, tensors, metadata=None, lead=0):
    """Write tensors [(name, dtype, array)] to a .safetensors file."""
    if metadata is None:
        metadata = {"format": "pt"}
    header, data = build(tensors, metadata, lead)
    with open(path, "wb") as f:
        f.write(pack(header, data))


def read(path):
    """Read a .safetensors file into {name: (dtype, float32 ndarray)}.

    Values are widened to float32 exactly (F16/BF16 -> F32 is lossless), so the
    reference computes with precisely the weights the engine sees."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("%s: shorter than 8 bytes" % path)
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError("%s: header length %d past end of file" % (path, n))
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("%s: header is not a JSON object" % path)
    data = memoryview(blob)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = info["dtype"]
        if dtype not in DTYPES:
            raise ValueError("%s: tensor %s has unsupported dtype %s" % (path, name, dtype))
        size, npdt = DTYPES[dtype]
        shape = [int(d) for d in info["shape"]]
        begin, end = info["data_offsets"]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not (0 <= begin <= end <= len(data)) or end - begin != count * size:
            raise ValueError("%s: tensor %s has bad data_offsets" % (path, name))
        arr = np.frombuffer(data[begin:end], dtype=npdt).reshape(shape)
        if dtype == "BF16":
            arr = bf16_bits_to_f32(arr).reshape(shape)
        out[name] = (dtype, arr.astype(np.float32))
    return out
