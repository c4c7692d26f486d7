#!/usr/bin/env python3
"""Turns a captured config.json + docker inspect into test_data/<case>/{input,docker}.json:
IDs, paths and host-specific parts replaced by placeholders the golden test also uses."""
import json, sys

FAKE_ID = "0123456789ab" + "c" * 52
cid, config_path, inspect_path, out = sys.argv[1:5]

def replace(text):
    text = text.replace(cid, FAKE_ID).replace(cid[:12], FAKE_ID[:12])
    return text

raw = replace(open(config_path).read())
spec = json.loads(raw)
inspect = json.loads(replace(open(inspect_path).read()))[0]
hosts = [m for m in spec["mounts"] if m["destination"] == "/etc/hosts"]
container_dir = hosts[0]["source"].rsplit("/", 1)[0]
# Parts berth does not produce on purpose (see spec/mod.rs): the default seccomp profile
# (issue 8), libnetwork's hook, the host netns file of --network host.
spec["linux"].pop("seccomp", None)
spec.pop("hooks", None)
spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if "path" not in n]
# Host-specific: the host's device nodes of privileged containers.
spec["linux"].pop("devices", None)
spec["root"]["path"] = "ROOTFS"
text = json.dumps(spec, indent=1, sort_keys=True)
text = text.replace(container_dir, "CONTAINER_DIR").replace("/tmp/pure/vol", "VOLUME_DIR")
open(f"{out}/docker.json", "w").write(text + "\n")
record = {"id": FAKE_ID, "config": inspect["Config"], "host_config": inspect["HostConfig"],
          "path": inspect["Path"], "args": inspect["Args"]}
text = json.dumps(record, indent=1, sort_keys=True).replace("/tmp/pure/vol", "VOLUME_DIR")
open(f"{out}/input.json", "w").write(text + "\n")
