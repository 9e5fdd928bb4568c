"""Read a committed message's content straight from its queue file, for
tests that must see the exact stored bytes (queue/queue.h "file format":
a 64-byte header holding the envelope offset and length, envelope records
TYPE(u8) LEN(u32) PAYLOAD, and an 'M' record per message giving its index,
content offset and content length, then in format 3 its content's CRC-32C). Files live in
queue_dir/{incoming,active}/HH/FILEID; a message id is its file id plus two
characters. Read-only; never used on a queue a test did not make.
"""

import struct


def _find_file(queue_dir, qid):
    fid = qid[:16]
    for place in ("incoming", "active"):
        for path in queue_dir.glob("%s/*/%s" % (place, fid)):
            return path
    raise AssertionError("no queue file for %s under %s" % (qid, queue_dir))


def stored_content(queue_dir, qid):
    """The bytes of message qid exactly as the queue stores them."""
    data = _find_file(queue_dir, qid).read_bytes()
    assert data[:8] in (b"OHQUEUE1", b"OHQUEUE2", b"OHQUEUE3"), "not a queue file"
    env_off, env_len = struct.unpack(">QI", data[8:20])
    env = data[env_off:env_off + env_len]
    index = _index(qid)
    pos = 0
    while pos + 5 <= len(env):
        rtype, rlen = env[pos:pos + 1], struct.unpack(">I", env[pos + 1:pos + 5])[0]
        payload = env[pos + 5:pos + 5 + rlen]
        pos += 5 + rlen
        if rtype == b"M":
            msg_index, offset, length = struct.unpack(">IQQ", payload[:20])
            if msg_index == index:
                return data[offset:offset + length]
    raise AssertionError("message %s not in its file" % qid)


_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _index(qid):
    """The message's index in its file: the last two base-32 characters."""
    return _ALPHABET.index(qid[16]) * 32 + _ALPHABET.index(qid[17])
