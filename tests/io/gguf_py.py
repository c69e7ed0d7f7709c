"""gguf_py.py - a minimal GGUF reader/writer for the tests (header, key/values kept as raw
bytes, tensor infos, data section), so test files can be taken apart and rebuilt with faults."""
import struct

FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
STRING, ARRAY = 8, 9


def _value_size(buf, pos, vtype):
    if vtype in FIXED:
        return FIXED[vtype]
    if vtype == STRING:
        return 8 + struct.unpack_from("<Q", buf, pos)[0]
    etype, n = struct.unpack_from("<IQ", buf, pos)
    size = 12
    for _ in range(n):
        size += _value_size(buf, pos + size, etype)
    return size


def parse(buf):
    """-> dict(version, kvs=[(key, vtype, raw value bytes)], infos=[dict], data=bytes)."""
    magic, version, n_t, n_kv = struct.unpack_from("<4sIQQ", buf, 0)
    pos = 24
    kvs = []
    for _ in range(n_kv):
        (klen,) = struct.unpack_from("<Q", buf, pos)
        key = buf[pos + 8:pos + 8 + klen].decode()
        pos += 8 + klen
        (vtype,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        size = _value_size(buf, pos, vtype)
        kvs.append((key, vtype, bytes(buf[pos:pos + size])))
        pos += size
    infos = []
    for _ in range(n_t):
        (nlen,) = struct.unpack_from("<Q", buf, pos)
        name = buf[pos + 8:pos + 8 + nlen].decode()
        pos += 8 + nlen
        (nd,) = struct.unpack_from("<I", buf, pos)
        dims = list(struct.unpack_from("<%dq" % nd, buf, pos + 4))
        pos += 4 + 8 * nd
        ttype, off = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        infos.append({"name": name, "dims": dims, "type": ttype, "offset": off})
    align = 32
    for k, t, v in kvs:
        if k == "general.alignment":
            align = struct.unpack("<I", v)[0]
    start = (pos + align - 1) // align * align
    return {"version": version, "kvs": kvs, "infos": infos, "data": bytes(buf[start:])}


def build(g, n_tensors=None, n_kv=None, align=32, magic=b"GGUF"):
    """Serialize g (as parse returns it); counts may be overridden to lie."""
    out = bytearray(struct.pack("<4sIQQ", magic, g["version"],
                                len(g["infos"]) if n_tensors is None else n_tensors,
                                len(g["kvs"]) if n_kv is None else n_kv))
    for k, t, v in g["kvs"]:
        kb = k.encode()
        out += struct.pack("<Q", len(kb)) + kb + struct.pack("<I", t) + v
    for ti in g["infos"]:
        nb = ti["name"].encode()
        out += struct.pack("<Q", len(nb)) + nb + struct.pack("<I", len(ti["dims"]))
        out += struct.pack("<%dq" % len(ti["dims"]), *ti["dims"])
        out += struct.pack("<IQ", ti["type"], ti["offset"])
    out += b"\0" * ((-len(out)) % align)
    return bytes(out) + g["data"]


def tensor_bytes(g, name):
    """The data of one tensor (for an F32/F16/Q8_0... file parsed with parse)."""
    sizes = {0: (1, 4), 1: (1, 2), 30: (1, 2), 8: (32, 34), 2: (32, 18), 3: (32, 20),
             6: (32, 22), 7: (32, 24), 12: (256, 144), 13: (256, 176), 14: (256, 210)}
    for ti in g["infos"]:
        if ti["name"] == name:
            blk, bs = sizes[ti["type"]]
            n = 1
            for d in ti["dims"]:
                n *= d
            return g["data"][ti["offset"]:ti["offset"] + n // blk * bs]
    return None
