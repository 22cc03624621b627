// A minimal Prometheus remote-write 1.0 client for the tests: protobuf `WriteRequest` encoded
// by hand (three message types) inside a snappy block that holds only literals, which every
// snappy decoder accepts. Enough to append samples to Vigil at a moment the test chooses.

function varint(n) {
  const out = [];
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n; // int64 two's complement, as protobuf does
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return out;
}

function field(num, wire, payload) {
  return [...varint((num << 3) | wire), ...payload];
}

function bytesField(num, bytes) {
  return field(num, 2, [...varint(bytes.length), ...bytes]);
}

const utf8 = (s) => [...new TextEncoder().encode(s)];

function sample(value, timestampMs) {
  const f = Buffer.alloc(8);
  f.writeDoubleLE(value);
  return [...field(1, 1, [...f]), ...field(2, 0, varint(timestampMs))];
}

/** Encodes `[{labels: {name: value}, samples: [[t, v]]}]` as a snappy-framed WriteRequest. */
export function encodeWrite(series) {
  const body = [];
  for (const s of series) {
    const ts = [];
    for (const [name, value] of Object.entries(s.labels).sort(([a], [b]) => (a < b ? -1 : 1))) {
      ts.push(...bytesField(1, [...bytesField(1, utf8(name)), ...bytesField(2, utf8(value))]));
    }
    for (const [t, v] of s.samples) ts.push(...bytesField(2, sample(v, t)));
    body.push(...bytesField(1, ts));
  }
  // Snappy block: uncompressed length, then literal chunks of at most 60 bytes (one-byte tag).
  const out = [...varint(body.length)];
  for (let i = 0; i < body.length; i += 60) {
    const chunk = body.slice(i, i + 60);
    out.push((chunk.length - 1) << 2, ...chunk);
  }
  return Buffer.from(out);
}

export async function remoteWrite(base, series) {
  const r = await fetch(`${base}/api/v1/write`, {
    method: 'POST',
    headers: {
      'Content-Encoding': 'snappy',
      'Content-Type': 'application/x-protobuf',
      'X-Prometheus-Remote-Write-Version': '0.1.0',
    },
    body: encodeWrite(series),
  });
  if (r.status !== 204 && r.status !== 200) throw new Error(`remote write: ${r.status} ${await r.text()}`);
}
