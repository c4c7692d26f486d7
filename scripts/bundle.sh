#!/usr/bin/env bash
# make_busybox_bundle DIR [ARGS...]: an OCI bundle whose rootfs is busybox-static,
# with config.json from `berth-runtime spec` running ARGS (default: sh).
make_busybox_bundle() {
  local dir=$1; shift
  local runtime=${BERTH_RUNTIME:-berth-runtime}
  mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" \
           "$dir/rootfs/etc" "$dir/rootfs/tmp" "$dir/rootfs/root"
  cp /bin/busybox "$dir/rootfs/bin/busybox"
  for applet in $("$dir/rootfs/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$dir/rootfs/etc/passwd"
  echo 'root:x:0:' > "$dir/rootfs/etc/group"
  (cd "$dir" && "$runtime" spec)
  if [ "$#" -gt 0 ]; then
    python3 - "$dir/config.json" "$@" <<'PY'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
spec = json.load(open(path))
spec["process"]["args"] = args
spec["process"]["terminal"] = False
json.dump(spec, open(path, "w"), indent=2)
PY
  fi
}
