#!/usr/bin/python3
"""Every kustomization under deploy/ renders (`kubectl kustomize`) and validates offline against the
Kubernetes API schemas (validate_manifests.mjs, npm kubernetes-models installed by
scripts/setup.sh); the operator-facing content is what docs/kube-ovn.md and the upstream
nodelocaldns.yaml lead one to expect; and a deliberately broken copy of deploy/ fails (so the
check can fail). Exit 0 = pass; any failed check exits 1 with a message."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

SRC = os.environ.get("NLD_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.join(SRC, "tests", "deploy")
VALIDATOR = os.path.join(HERE, "validate_manifests.mjs")
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg)


def run(argv, timeout=60, **kw):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    except FileNotFoundError:
        sys.exit("FAIL: %s not found (scripts/setup.sh installs it)" % argv[0])
    except subprocess.TimeoutExpired:
        sys.exit("FAIL: %s timed out" % " ".join(argv))


def kustomizations(root):
    """Directories under root with a Kustomization (Components are rendered through them)."""
    out = []
    for path in sorted(glob.glob(os.path.join(root, "**", "kustomization.yaml"), recursive=True)):
        with open(path) as f:
            if yaml.safe_load(f).get("kind") == "Kustomization":
                out.append(os.path.dirname(path))
    return out


def render(d):
    r = run(["kubectl", "kustomize", d])
    return r.returncode, r.stdout, r.stderr.strip()


def validate(path):
    r = run(["node", VALIDATOR, path], cwd=HERE)
    return r.returncode, r.stdout


def render_and_validate(root, out_dir):
    """{dir: (docs, error)}: error is None when the directory renders and validates."""
    results = {}
    for d in kustomizations(root):
        rel = os.path.relpath(d, root)
        rc, text, err = render(d)
        if rc != 0:
            results[rel] = ([], "kubectl kustomize: " + err)
            continue
        path = os.path.join(out_dir, rel.replace("/", "_") + ".yaml")
        with open(path, "w") as f:
            f.write(text)
        vrc, vout = validate(path)
        bad = [l for l in vout.splitlines() if l.startswith("INVALID")]
        results[rel] = ([d for d in yaml.safe_load_all(text) if d],
                        None if vrc == 0 and not bad else "schema: " + "; ".join(bad or [vout]))
    return results


# --- tools --------------------------------------------------------------------------------------
if not os.path.isdir(os.path.join(HERE, "node_modules", "kubernetes-models")):
    sys.exit("FAIL: tests/deploy/node_modules missing: run scripts/setup.sh (npm ci of kubernetes-models)")
ver = run(["kubectl", "version", "--client"]).stdout
m = re.search(r"Kustomize Version: v(\d+)", ver)
if not m or int(m.group(1)) < 4:
    # Debian 12's kubernetes-client (1.20) embeds kustomize v2: it cannot read `patches:`,
    # `components:` or generator labels.
    sys.exit("FAIL: kubectl with kustomize v4 or later needed (have: %s)" % ver.strip().replace("\n", "; "))

version = re.search(r"project\(nodelocaldns VERSION ([0-9.]+)", open(os.path.join(SRC, "CMakeLists.txt")).read())
version = version.group(1)

# --- every kustomization renders and validates --------------------------------------------------
tmp = tempfile.mkdtemp(prefix="nld-deploy-test-")
try:
    results = render_and_validate(os.path.join(SRC, "deploy"), tmp)
    check(set(results) >= {"kubernetes", "kube-ovn", "ovn-localdns-controller", "monitoring"},
          "kustomizations found: %s" % sorted(results))
    for rel, (docs, err) in results.items():
        check(err is None, "deploy/%s: %s" % (rel, err))
        print("deploy/%s: %d objects %s" % (rel, len(docs), "valid" if err is None else "INVALID"))

    def objs(rel, kind, name=None):
        return [d for d in results.get(rel, ([], None))[0]
                if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]

    def containers(obj):
        return {c["name"]: c for c in obj["spec"]["template"]["spec"]["containers"]}

    # --- images: named once (deploy/images), tagged with the project version --------------------
    for rel, (docs, _) in results.items():
        for d in docs:
            if d["kind"] not in ("DaemonSet", "Deployment"):
                continue
            for c in d["spec"]["template"]["spec"]["containers"]:
                check(c["image"] in ("nodelocaldns/node-cache:" + version,
                                     "nodelocaldns/ovn-localdns-controller:" + version),
                      "deploy/%s %s/%s: image %s (want nodelocaldns/...:%s from deploy/images)"
                      % (rel, d["kind"], c["name"], c["image"], version))

    # --- the node-cache DaemonSet, as an operator expects from the upstream nodelocaldns.yaml ---
    limit_mib = None
    for rel, local_ip in (("kubernetes", "__PILLAR__LOCAL__DNS__"), ("kube-ovn", "169.254.20.10")):
        for ds in objs(rel, "DaemonSet", "node-local-dns"):
            pod = ds["spec"]["template"]["spec"]
            nc = containers(ds)["node-cache"]
            check(pod.get("priorityClassName") == "system-node-critical", "%s: priorityClassName" % rel)
            check({"operator": "Exists"} in pod.get("tolerations", []),
                  "%s: no toleration of every taint: %s" % (rel, pod.get("tolerations")))
            check(ds["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate":
                                                   {"maxSurge": 1, "maxUnavailable": 0}},
                  "%s: updateStrategy %s" % (rel, ds["spec"]["updateStrategy"]))
            check(nc["livenessProbe"].get("httpGet") == {"host": local_ip, "path": "/health", "port": 8080},
                  "%s: liveness %s" % (rel, nc["livenessProbe"]))
            # Readiness: node-cache itself asks id.server CH TXT and wants its own POD_UID back.
            ready = nc.get("readinessProbe", {})
            check(ready.get("exec") == {"command": ["/node-cache", "-probe-ready", local_ip + ":53"]}
                  and ready.get("periodSeconds") == 5 and ready.get("timeoutSeconds") == 3,
                  "%s: readiness %s" % (rel, ready))
            check({"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}
                  in nc.get("env", []), "%s: POD_UID (the readiness probe's identity) %s"
                  % (rel, nc.get("env")))
            res = nc.get("resources", {})
            check(set(res.get("requests", {})) == {"cpu", "memory"} and
                  set(res.get("limits", {})) == {"memory"},
                  "%s: resources %s (requests cpu+memory, a memory limit, no CPU limit)" % (rel, res))
            lim = re.fullmatch(r"(\d+)Mi", str(res.get("limits", {}).get("memory", "")))
            check(lim is not None, "%s: memory limit %s not in Mi" % (rel, res.get("limits")))
            if lim:
                limit_mib = int(lim.group(1))
        check(len(objs(rel, "DaemonSet", "node-local-dns")) == 1, "%s: one node-local-dns DaemonSet" % rel)

    # --- the controller: NB address from Kube-OVN's ovn-nb Service variables, no literal --------
    for rel in ("ovn-localdns-controller", "kube-ovn"):
        deps = objs(rel, "Deployment", "ovn-localdns-controller")
        check(len(deps) == 1, "%s: one ovn-localdns-controller Deployment" % rel)
        for dep in deps:
            c = containers(dep)["ovn-localdns-controller"]
            check(c["args"][0] == "run", "%s: controller args %s" % (rel, c["args"]))
            check("--ovn-nb-addr=tcp:[$(OVN_NB_SERVICE_HOST)]:$(OVN_NB_SERVICE_PORT)" in c["args"],
                  "%s: controller NB address %s" % (rel, c["args"]))
            text = yaml.safe_dump(dep)
            literals = set(re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text)) - {"169.254.20.10"}
            check(not literals, "%s: address literals in the controller Deployment: %s" % (rel, literals))
    for ds in objs("kube-ovn", "DaemonSet", "node-local-dns"):
        agent = containers(ds).get("localdns-agent", {})
        check(agent.get("image") == "nodelocaldns/ovn-localdns-controller:" + version,
              "kube-ovn: localdns-agent image %s" % agent.get("image"))
        check("--ovn-nb-addr=tcp:[$(OVN_NB_SERVICE_HOST)]:$(OVN_NB_SERVICE_PORT)" in agent.get("args", []),
              "kube-ovn: agent NB address %s" % agent.get("args"))

    # --- monitoring: the memory alert is 80 % of the DaemonSet's limit ----------------------------
    with open(os.path.join(SRC, "deploy", "monitoring", "nodelocaldns-rules.yaml")) as f:
        rules = {r["alert"]: r for g in yaml.safe_load(f)["groups"] for r in g["rules"]}
    mem = rules.get("NodeLocalDNSMemoryNearLimit", {}).get("expr", "")
    check(limit_mib is not None and "> 0.8 * %d * 1024 * 1024" % limit_mib in mem,
          "memory alert %r does not match the DaemonSet limit %sMi" % (mem, limit_mib))
    cms = objs("monitoring", "ConfigMap")
    check(sorted(c["metadata"]["name"] for c in cms) == ["node-local-dns-alerts", "node-local-dns-dashboard"],
          "monitoring ConfigMaps %s" % [c["metadata"]["name"] for c in cms])

    # --- a broken copy must fail --------------------------------------------------------------------
    broken = os.path.join(tmp, "broken")
    cases = {
        # a quantity the API rejects, in the base: both overlays built on it must fail
        "quantity": ("kubernetes/nodelocaldns.yaml", "memory: 32Mi", "memory: 32 MiB",
                     {"kubernetes", "kube-ovn"}),
        # a kind that does not exist
        "kind": ("ovn-localdns-controller/deployment.yaml", "kind: Deployment", "kind: Deploymnet",
                 {"ovn-localdns-controller", "kube-ovn"}),
        # a probe port of the wrong type
        "port": ("kubernetes/nodelocaldns.yaml", "port: 8080", "port: [8080]", {"kubernetes", "kube-ovn"}),
        # a resource file that is not there: rendering itself fails
        "render": ("monitoring/kustomization.yaml", "- nodelocaldns-rules.yaml", "- missing-rules.yaml",
                   {"monitoring"}),
    }
    for name, (rel_file, old, new, expect_bad) in cases.items():
        shutil.rmtree(broken, ignore_errors=True)
        shutil.copytree(os.path.join(SRC, "deploy"), broken)
        path = os.path.join(broken, rel_file)
        with open(path) as f:
            text = f.read()
        check(old in text, "broken copy %s: %r not found in %s" % (name, old, rel_file))
        with open(path, "w") as f:
            f.write(text.replace(old, new, 1))
        out = os.path.join(tmp, "broken-out")
        os.makedirs(out, exist_ok=True)
        res = render_and_validate(broken, out)
        bad = {rel for rel, (_, err) in res.items() if err is not None}
        check(bad == expect_bad, "broken copy %s: failing %s, want %s" % (name, sorted(bad), sorted(expect_bad)))
        print("broken copy %s: rejected in %s" % (name, ", ".join(sorted(bad))))
finally:
    shutil.rmtree(tmp, ignore_errors=True)

if failures:
    sys.exit("%d check(s) failed" % len(failures))
print("OK: every kustomization under deploy/ renders and validates; broken copies are rejected")
