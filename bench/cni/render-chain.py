#!/usr/bin/env python3
"""Turns a CNI conflist into the per-plugin configs a runtime would pass (libcni's
buildOneConfig: each plugin object plus the list's name and cniVersion), for cnidriver.

  render-chain.py CONFLIST OUT_DIR [--host-local-data DIR]

Writes OUT_DIR/chain ("TYPE<TAB>FILE" per plugin) and OUT_DIR/plugin-N.json. With
--host-local-data, host-local IPAM state goes to DIR instead of /var/lib/cni/networks, so a
run never touches the machine's own allocations. Prints, one per line, what run.sh needs to
clean up and guard: `bridge NAME` for every bridge the chain makes, `subnet CIDR` for every
IPAM range.
"""
import json
import os
import sys


def fail(msg):
    print(f"render-chain.py: {msg}", file=sys.stderr)
    sys.exit(2)


def ipam_subnets(ipam):
    if "subnet" in ipam:
        yield ipam["subnet"]
    for rangeset in ipam.get("ranges", []):
        for r in rangeset:
            if "subnet" in r:
                yield r["subnet"]


def main(argv):
    if len(argv) not in (3, 5) or (len(argv) == 5 and argv[3] != "--host-local-data"):
        fail("usage: render-chain.py CONFLIST OUT_DIR [--host-local-data DIR]")
    path, out = argv[1], argv[2]
    data_dir = argv[4] if len(argv) == 5 else None
    try:
        with open(path) as f:
            conflist = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"cannot read {path} as JSON: {e}")
    for field in ("cniVersion", "name", "plugins"):
        if field not in conflist:
            fail(f"{path} has no \"{field}\": a conflist needs cniVersion, name and plugins")
    if not isinstance(conflist["plugins"], list) or not conflist["plugins"]:
        fail(f"{path}: \"plugins\" must be a non-empty array")
    os.makedirs(out, exist_ok=True)
    lines, notes = [], []
    for i, plugin in enumerate(conflist["plugins"]):
        if not isinstance(plugin, dict) or not plugin.get("type"):
            fail(f"{path}: plugins[{i}] has no \"type\" (the binary to run)")
        config = dict(plugin)
        config["name"] = conflist["name"]
        config["cniVersion"] = conflist["cniVersion"]
        ipam = config.get("ipam")
        if isinstance(ipam, dict):
            ipam = dict(ipam)
            if data_dir and ipam.get("type") == "host-local":
                ipam["dataDir"] = data_dir
            config["ipam"] = ipam
            notes += [f"subnet {s}" for s in ipam_subnets(ipam)]
        if plugin["type"] == "bridge":
            notes.append(f"bridge {plugin.get('bridge', 'cni0')}")
        file = os.path.join(out, f"plugin-{i}.json")
        with open(file, "w") as f:
            json.dump(config, f, separators=(",", ":"))
        lines.append(f"{plugin['type']}\t{file}\n")
    with open(os.path.join(out, "chain"), "w") as f:
        f.writelines(lines)
    print("\n".join(notes))


if __name__ == "__main__":
    main(sys.argv)
