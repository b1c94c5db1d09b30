"""The C2PA side of imgworker's Content Credentials tests, written with the
c2pa-python package (the Content Authenticity Initiative's own Python
binding), independent of the worker's Rust code:

  c2pa_tool.py read ANCHORS FILE...
      For each file, one JSON line: the validation state ("Trusted",
      "Valid" or "Invalid") with the CA in ANCHORS as the only trust anchor,
      the failure codes, and the manifest store ({"state", "codes", "store"});
      {"state": "None"} for a file without a manifest.

  c2pa_tool.py generate CERT KEY SOURCE DEST
      Sign SOURCE (PNG) as an AI image generator would: a c2pa.created
      action with digitalSourceType trainedAlgorithmicMedia, written to DEST.
"""

import io
import json
import sys

import c2pa

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def read(anchors, paths):
    with open(anchors) as f:
        settings = c2pa.Settings.from_json(json.dumps({"trust": {"user_anchors": f.read()}}))
    context = c2pa.Context(settings=settings)
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
            reader = c2pa.Reader(None, io.BytesIO(data), context=context)
        except c2pa.C2paError as e:
            if "ManifestNotFound" in type(e).__name__ or "ManifestNotFound" in str(e) \
                    or "JumbfNotFound" in str(e):
                print(json.dumps({"state": "None"}))
                continue
            raise
        store = json.loads(reader.json())
        codes = [s.get("code") for s in store.get("validation_status", []) or []]
        print(json.dumps({"state": reader.get_validation_state(), "codes": codes, "store": store}))


def generate(cert, key, source, dest):
    with open(cert, "rb") as f:
        cert_pem = f.read()
    with open(key, "rb") as f:
        key_pem = f.read()
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", cert_pem, key_pem, None))
    manifest = {
        "title": "generated.png",
        "claim_generator_info": [{"name": "test-image-generator", "version": "1.0"}],
        "assertions": [{
            "label": "c2pa.actions.v2",
            "data": {"actions": [{
                "action": "c2pa.created",
                "digitalSourceType": IPTC + "trainedAlgorithmicMedia",
                "softwareAgent": {"name": "test-image-model", "version": "7"},
            }]},
        }],
    }
    builder = c2pa.Builder(json.dumps(manifest))
    with open(source, "rb") as src, open(dest, "wb") as out:
        builder.sign(signer, "image/png", src, out)


if __name__ == "__main__":
    if sys.argv[1] == "read":
        read(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "generate":
        generate(*sys.argv[2:6])
    else:
        sys.exit("usage: c2pa_tool.py read ANCHORS FILE... | generate CERT KEY SOURCE DEST")
