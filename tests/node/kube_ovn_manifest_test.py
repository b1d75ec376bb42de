#!/usr/bin/python3
"""Renders deploy/kube-ovn and deploy/kubernetes with `kubectl kustomize` and checks them.

Writes the Kube-OVN ConfigMap's Corefile to $NLD_BUILD_DIR/deploy/kube-ovn/Corefile.base (and the
whole rendered manifest next to it) so integration tests can load it into node-cache.
Exit 0 = pass; any failed check exits 1 with a message.
"""
import os
import re
import subprocess
import sys

try:
    import yaml
except ImportError:
    sys.exit("FAIL: python3-yaml is missing (scripts/setup.sh installs it)")

SRC = os.environ.get("NLD_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("NLD_BUILD_DIR") or os.path.join(SRC, "build")
IMAGE = "nodelocaldns/node-cache:0.1.0"
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg)


def render(overlay):
    try:
        out = subprocess.run(["kubectl", "kustomize", os.path.join(SRC, "deploy", overlay)],
                             capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        sys.exit("FAIL: kubectl not found (scripts/setup.sh installs kubernetes-client)")
    except subprocess.TimeoutExpired:
        sys.exit("FAIL: kubectl kustomize deploy/%s timed out" % overlay)
    if out.returncode != 0:
        sys.exit("FAIL: kubectl kustomize deploy/%s: %s" % (overlay, out.stderr.strip()))
    return out.stdout, [d for d in yaml.safe_load_all(out.stdout) if d]


def find(docs, kind, name):
    hits = [d for d in docs if d.get("kind") == kind and d["metadata"].get("name") == name]
    check(len(hits) == 1, "expected exactly one %s/%s, found %d" % (kind, name, len(hits)))
    return hits[0] if hits else {}


def common_checks(docs, label, extra=()):
    kinds = sorted("%s/%s" % (d["kind"], d["metadata"]["name"]) for d in docs)
    check(kinds == sorted(["ConfigMap/node-local-dns", "DaemonSet/node-local-dns",
                           "Service/kube-dns-upstream", "Service/node-local-dns",
                           "ServiceAccount/node-local-dns", *extra]), "%s: objects %s" % (label, kinds))
    for d in docs:
        check(d["metadata"].get("namespace") == "kube-system",
              "%s: %s not in kube-system" % (label, d["metadata"]["name"]))
    ds = find(docs, "DaemonSet", "node-local-dns")
    pod = ds.get("spec", {}).get("template", {}).get("spec", {})
    c = (pod.get("containers") or [{}])[0]
    check(c.get("image") == IMAGE, "%s: image %r" % (label, c.get("image")))
    check(pod.get("hostNetwork") is True and pod.get("dnsPolicy") == "Default",
          "%s: hostNetwork/dnsPolicy" % label)
    check(pod.get("priorityClassName") == "system-node-critical", "%s: priorityClassName" % label)
    check(c.get("securityContext", {}).get("capabilities", {}).get("add") == ["NET_ADMIN"],
          "%s: NET_ADMIN" % label)
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    check(mounts == {"xtables-lock": "/run/xtables.lock", "config-volume": "/etc/coredns",
                     "kube-dns-config": "/etc/kube-dns", "state": "/var/run/node-local-dns"},
          "%s: mounts %s" % (label, mounts))
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    check(vols.get("xtables-lock", {}).get("hostPath") ==
          {"path": "/run/xtables.lock", "type": "FileOrCreate"}, "%s: xtables lock" % label)
    check(vols.get("state", {}).get("hostPath") ==
          {"path": "/var/run/node-local-dns", "type": "DirectoryOrCreate"},
          "%s: state dir (handover, snapshot)" % label)
    check(vols.get("kube-dns-config", {}).get("configMap") ==
          {"name": "kube-dns", "optional": True}, "%s: kube-dns volume" % label)
    check(vols.get("config-volume", {}).get("configMap", {}).get("items") ==
          [{"key": "Corefile", "path": "Corefile.base"}], "%s: Corefile.base item" % label)
    probe = c.get("livenessProbe", {})
    check(probe.get("httpGet", {}).get("path") == "/health" and
          probe.get("httpGet", {}).get("port") == 8080 and probe.get("initialDelaySeconds") == 60
          and probe.get("timeoutSeconds") == 5, "%s: liveness probe %s" % (label, probe))
    # Zero-loss rollout: the new pod surges next to the old one, so no hostPorts (with
    # hostNetwork, listed ports become hostPorts and block the surge pod's scheduling).
    check(c.get("ports") is None, "%s: ports %s (they would be hostPorts)" % (label, c.get("ports")))
    strategy = ds.get("spec", {}).get("updateStrategy", {})
    check(strategy.get("rollingUpdate") == {"maxSurge": 1, "maxUnavailable": 0},
          "%s: updateStrategy %s" % (label, strategy))
    env = {e["name"]: e.get("valueFrom", {}) for e in c.get("env", [])}
    check(env.get("POD_UID") == {"fieldRef": {"fieldPath": "metadata.uid"}},
          "%s: POD_UID env %s" % (label, env))
    svc = find(docs, "Service", "node-local-dns")
    check(svc.get("spec", {}).get("clusterIP") == "None" and
          svc["spec"]["ports"][0]["port"] == 9253, "%s: metrics service" % label)
    return c, find(docs, "ConfigMap", "node-local-dns").get("data", {}).get("Corefile", "")


# The upstream layout keeps every placeholder for the deployer.
_, upstream_docs = render("kubernetes")
c, corefile = common_checks(upstream_docs, "deploy/kubernetes")
check(c.get("args") == ["-localip", "__PILLAR__LOCAL__DNS__,__PILLAR__DNS__SERVER__", "-conf",
                        "/etc/Corefile", "-upstreamsvc", "kube-dns-upstream", "-pidfile",
                        "/tmp/node-cache.pid"], "deploy/kubernetes: args %s" % c.get("args"))
for p in ["__PILLAR__DNS__DOMAIN__", "__PILLAR__LOCAL__DNS__", "__PILLAR__DNS__SERVER__",
          "__PILLAR__CLUSTER__DNS__", "__PILLAR__UPSTREAM__SERVERS__"]:
    check(p in corefile, "deploy/kubernetes: Corefile lacks %s" % p)
check(corefile.count("forward . __PILLAR__CLUSTER__DNS__ {\n            force_tcp\n    }\n") == 3,
      "deploy/kubernetes: the three force_tcp cluster forwards")

# The Kube-OVN overlay: only the link-local IP, cluster values filled in.
text, docs = render("kube-ovn")
# It also deploys the policy writer its localdns-agent needs (tests/deploy checks its content).
c, corefile = common_checks(docs, "deploy/kube-ovn", extra=["Deployment/ovn-localdns-controller"])
check(c.get("args") == ["-localip", "169.254.20.10", "-conf", "/etc/Corefile", "-upstreamsvc",
                        "kube-dns-upstream", "-pidfile", "/tmp/node-cache.pid"],
      "deploy/kube-ovn: args %s" % c.get("args"))
check(c.get("livenessProbe", {}).get("httpGet", {}).get("host") == "169.254.20.10",
      "deploy/kube-ovn: probe host")
check(c.get("readinessProbe", {}).get("exec", {}).get("command") ==
      ["/node-cache", "-probe-ready", "169.254.20.10:53"],
      "deploy/kube-ovn: readiness probe %s" % c.get("readinessProbe"))
left = set(re.findall(r"__PILLAR__[A-Z_]*?__(?=[^A-Z_]|$)", text))
check(left == {"__PILLAR__UPSTREAM__SERVERS__"},
      "deploy/kube-ovn: placeholders left in the manifest: %s" % sorted(left))
check(corefile.count("__PILLAR__UPSTREAM__SERVERS__") == 1, "deploy/kube-ovn: one upstream placeholder")
check(corefile.startswith("cluster.local:53 {\n"), "deploy/kube-ovn: cluster.local block first")
binds = re.findall(r"^ *bind (.*)$", corefile, re.M)
check(binds == ["169.254.20.10"] * 4, "deploy/kube-ovn: bind lines %s" % binds)
check("    health 169.254.20.10:8080\n" in corefile, "deploy/kube-ovn: health address")
check(corefile.count("forward . 10.96.0.10 {\n            force_tcp\n    }\n") == 3,
      "deploy/kube-ovn: cluster forwards to 10.96.0.10 with force_tcp")
check("10.96.0.10" not in " ".join(c.get("args", [])), "deploy/kube-ovn: ClusterIP not bound")
# Same block structure as upstream, only the placeholders differ.
expected = find(upstream_docs, "ConfigMap", "node-local-dns")["data"]["Corefile"]
expected = (expected.replace("__PILLAR__DNS__DOMAIN__", "cluster.local")
            .replace(" __PILLAR__DNS__SERVER__", "").replace("__PILLAR__LOCAL__DNS__", "169.254.20.10")
            .replace("__PILLAR__CLUSTER__DNS__", "10.96.0.10"))
check(corefile == expected, "deploy/kube-ovn: Corefile differs from the substituted upstream one")
labels = find(docs, "ConfigMap", "node-local-dns").get("metadata", {}).get("labels", {})
check(labels.get("addonmanager.kubernetes.io/mode") == "Reconcile", "deploy/kube-ovn: ConfigMap labels")

out_dir = os.path.join(BUILD, "deploy", "kube-ovn")
os.makedirs(out_dir, exist_ok=True)
with open(os.path.join(out_dir, "Corefile.base"), "w") as f:
    f.write(corefile)
with open(os.path.join(out_dir, "rendered.yaml"), "w") as f:
    f.write(text)

if failures:
    sys.exit("%d check(s) failed" % len(failures))
print("OK: deploy/kubernetes and deploy/kube-ovn render; Corefile written to %s" %
      os.path.join(out_dir, "Corefile.base"))
