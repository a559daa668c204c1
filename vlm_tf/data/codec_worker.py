"""Encodes frames with a real video encoder and decodes them back, in a process of its own.

`vlm_tf.data.corruptions` runs this file as a script (never imports it) for its `h264` and
`mpeg4` corruptions. OpenCV's wheel bundles an FFmpeg of its own: with it loaded before PyAV's,
libx264 gave a different video for the same frames in 36 of 40 calls under load, although one
encoder thread was asked for; in a process that loads only PyAV it gave the same bytes every
time. So the encoder lives here, where nothing but PyAV and NumPy is imported.

Even here, 1 to 7 calls in 60 still gave a different video, the first frame included, until the
colour conversion moved out of FFmpeg: its RGB to YUV 4:2:0 conversion (swscale), not the
encoder, gave the differences, and with the frames converted here in NumPy (BT.601, limited
range, what swscale does for yuv420p) none of 100 calls under load differed.

Protocol, on stdin and stdout: a request is a 4-byte big-endian length, that many bytes of JSON
(`codec`, `fps`, `bit_rate`, `shape`), then the uint8 frames `(T, H, W, 3)`; the reply is the
same with JSON `{"shape": ...}` and the decoded frames, or `{"error": "..."}` and nothing. The
process ends when stdin closes.
"""

import sys

if __name__ == "__main__":
    # Run as a script, Python puts this file's folder first on sys.path, where vlm_tf's own
    # module names would shadow whatever PyAV and NumPy import.
    sys.path.pop(0)

import io  # noqa: E402
import json  # noqa: E402
import struct  # noqa: E402

import numpy as np  # noqa: E402

try:
    import av
except ImportError as error:  # answered per request, so the caller says what is missing
    av, MISSING = None, f"the h264 and mpeg4 corruptions need PyAV ({error})"


def encode_decode(frames, codec, fps, bit_rate):
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        # One encoder thread, lookahead and slices included: threaded rate control depends on
        # timing.
        stream.codec_context.thread_count = 1
        if codec == "libx264":
            stream.codec_context.options = {
                "x264-params": "threads=1:lookahead-threads=1:sliced-threads=0"
            }
        stream.bit_rate = bit_rate
        for frame in frames:
            planes = av.VideoFrame.from_ndarray(rgb_to_yuv420p(frame), format="yuv420p")
            container.mux(stream.encode(planes))
        container.mux(stream.encode())
    buffer.seek(0)
    height, width = frames.shape[1:3]
    with av.open(buffer, "r") as container:
        decoded = container.decode(video=0)
        return np.stack([yuv420p_to_rgb(frame.to_ndarray(), height, width) for frame in decoded])


def rgb_to_yuv420p(rgb):
    """`(H, W, 3)` uint8 RGB (even sides) → `(H * 3 / 2, W)` uint8 planes Y, U, V: BT.601 in
    limited range, each chroma value the mean of a 2×2 block.
    """
    r, g, b = (rgb[..., channel].astype(np.float64) for channel in range(3))
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    height, width = rgb.shape[:2]

    def quarter(plane):
        return plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))

    planes = np.concatenate([y.reshape(-1), quarter(u).reshape(-1), quarter(v).reshape(-1)])
    return np.clip(np.rint(planes), 0, 255).astype(np.uint8).reshape(height * 3 // 2, width)


def yuv420p_to_rgb(planes, height, width):
    """`rgb_to_yuv420p`'s inverse: `(H * 3 / 2, W)` planes → `(H, W, 3)` uint8 RGB."""
    flat = planes.reshape(-1).astype(np.float64)
    area = height * width

    def upsampled(plane):
        return plane.reshape(height // 2, width // 2).repeat(2, axis=0).repeat(2, axis=1)

    y = flat[:area].reshape(height, width) - 16
    u = upsampled(flat[area : area * 5 // 4]) - 128
    v = upsampled(flat[area * 5 // 4 :]) - 128
    rgb = np.stack(
        [1.164 * y + 1.596 * v, 1.164 * y - 0.392 * u - 0.813 * v, 1.164 * y + 2.017 * u], axis=-1
    )
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def read_exactly(stream, size):
    data = stream.read(size)
    if len(data) != size:
        raise EOFError
    return data


def reply(out, header, payload=b""):
    encoded = json.dumps(header).encode()
    out.write(struct.pack(">I", len(encoded)) + encoded + payload)
    out.flush()


def serve(source, out):
    while True:
        try:
            (size,) = struct.unpack(">I", read_exactly(source, 4))
        except EOFError:
            return
        request = json.loads(read_exactly(source, size))
        shape = request["shape"]
        frames = np.frombuffer(read_exactly(source, int(np.prod(shape))), np.uint8).reshape(shape)
        if av is None:
            reply(out, {"error": MISSING})
            continue
        try:
            decoded = encode_decode(frames, request["codec"], request["fps"], request["bit_rate"])
        except Exception as error:  # the caller raises it, with the codec's words
            reply(out, {"error": f"{type(error).__name__}: {error}"})
            continue
        reply(out, {"shape": list(decoded.shape)}, np.ascontiguousarray(decoded).tobytes())


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
