#!/usr/bin/python3
"""The shipped images, built by scripts/images.sh and run the way the manifests run them (issue 13).

setUpClass builds both images with scripts/images.sh (podman; the base image made from Debian
packages by mmdebstrap, or reused). Then:
  * contents: `-version` of both binaries carries the version and the source tree's commit; in each
    image ldd resolves every library, there is no compiler and no -dev package, every package the
    build added to the base is the owner of a library the binary loads (or iptables, for
    node-cache) or one of their dependencies; the controller runs as 65534, node-cache as root;
  * node-cache: the Kube-OVN overlay's DaemonSet (`kubectl kustomize deploy/kube-ovn`): its args,
    env, NET_ADMIN, its volumes (the ConfigMap's Corefile at /etc/coredns/Corefile.base, the
    host's /run/xtables.lock, the statedir as a private dir) with `podman run --network host`
    (in a network namespace this test made: nsenter --net) (veth `nodelocaldns`, knotd as kube-dns,
    kube-dns-upstream and the node's resolver): answers on 169.254.20.10 over UDP and TCP, /health
    200, coredns_build_info carries the commit, exactly the 12 rules upstream node-cache installs per local IP (kubernetes/dns cache_app.go); `podman stop`
    (SIGTERM) → exit 0, rules and address gone, link kept;
  * ovn-localdns-controller: the Deployment (`kubectl kustomize deploy/ovn-localdns-controller`):
    args with $(VAR)s expanded as the kubelet does (Kube-OVN's ovn-nb Service variables point at a
    real ovsdb-server with OVN's NB schema listening on TCP inside the namespace), its
    securityContext (user, read-only root, no capabilities, no privilege escalation): it writes
    the per-node policies, /healthz is 200, `podman stop` → exit 0;
  * manifests: every container of the rendered manifests that runs one of our images names a
    command the image has.
Image sizes are printed (IMAGE lines). podman needs `--runtime runc` and low ulimits here
(../shared/testbed/NOTES.md). Every container is removed and every namespace deleted by cleanups;
every wait is bounded.

Environment: NLD_SOURCE_DIR (set by ctest), NLD_IT_KEEP=1 keeps the temp dirs,
NLD_IMAGES_TIMEOUT (seconds for scripts/images.sh, default 1500)."""

import json
import os
import re
import subprocess
import sys
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "system"))
sys.path.insert(0, os.path.join(HERE, "..", "ovn"))

import dns.rcode  # noqa: E402

import sys_support as s  # noqa: E402  (path set above)
import ovn_controller_test as ovn  # noqa: E402

h = s.h
SOURCE_DIR = s.SOURCE_DIR
PREFIX = "localhost/nodelocaldns"
PODMAN = ["podman", "--runtime", "runc"]
RUN_OPTS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
TARGETS = ("node-cache", "ovn-localdns-controller")
NB_IP = "10.99.13.2"  # the "ovn-central node" address inside the controller's namespace
NB_PORT = 6641


def version():
    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt")) as f:
        return re.search(r"project\(nodelocaldns VERSION ([0-9.]+)", f.read()).group(1)


def podman(*args, timeout=120, check=True):
    r = subprocess.run(PODMAN + list(args), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("podman %s: exit %d\n%s%s" % (" ".join(args), r.returncode,
                                                          r.stdout, r.stderr))
    return r


def in_image(image, *argv, entrypoint=None, user=None):
    """stdout of argv run in a throw-away container of image (no network)."""
    opts = ["run", "--rm", "--network", "none"] + RUN_OPTS
    if entrypoint is not None:
        opts += ["--entrypoint", entrypoint]
    if user is not None:
        opts += ["--user", user]
    return podman(*(opts + [image] + list(argv)), timeout=60).stdout


def packages(image):
    return set(in_image(image, "-W", "-f", "${Package}\\n", entrypoint="dpkg-query").split())


def container_spec(directory, kind):
    """(container, pod spec) of the first `kind` object kustomize renders from deploy/<dir>."""
    docs = s.kustomize(os.path.join(SOURCE_DIR, "deploy", directory))
    if docs is None:
        raise AssertionError("`kubectl kustomize deploy/%s` failed (kubectl, python3-yaml?)"
                             % directory)
    for d in docs:
        if d.get("kind") == kind:
            pod = d["spec"]["template"]["spec"]
            return pod["containers"][0], pod
    raise AssertionError("no %s in deploy/%s" % (kind, directory))


def expand(value, env):
    """$(VAR) references expanded as the kubelet does (unknown ones are left as written)."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)),
                  value)


def security_opts(container):
    """podman options for a container's securityContext (the fields our manifests use)."""
    sc = container.get("securityContext") or {}
    out = []
    if "runAsUser" in sc:
        out += ["--user", str(sc["runAsUser"])]
    if sc.get("readOnlyRootFilesystem"):
        out += ["--read-only"]
    if sc.get("allowPrivilegeEscalation") is False:
        out += ["--security-opt", "no-new-privileges"]
    caps = sc.get("capabilities") or {}
    for c in caps.get("drop", []):
        out += ["--cap-drop", c.lower()]
    for c in caps.get("add", []):
        out += ["--cap-add", c]
    return out


class ImagesTest(s.SystemTestCase):
    @classmethod
    def setUpClass(cls):
        # Not SystemTestCase's: these tests need podman, not a node-cache build.
        if os.geteuid() != 0:
            raise unittest.SkipTest("image tests need root (podman, ip netns, iptables)")
        cls.tag = version()
        cls.images = {t: "%s/%s:%s" % (PREFIX, t, cls.tag) for t in TARGETS}
        r = subprocess.run(["git", "-C", SOURCE_DIR, "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True, timeout=30)
        cls.revision = r.stdout.strip() if r.returncode == 0 else "unknown"
        start = time.monotonic()
        timeout = float(os.environ.get("NLD_IMAGES_TIMEOUT", "1500"))
        r = subprocess.run(["bash", os.path.join(SOURCE_DIR, "scripts", "images.sh")],
                           capture_output=True, text=True, timeout=timeout)
        took = time.monotonic() - start
        if r.returncode != 0:
            raise AssertionError("scripts/images.sh failed (exit %d) after %.0f s:\n%s\n%s"
                                 % (r.returncode, took, r.stdout[-8000:], r.stderr[-4000:]))
        for line in r.stdout.splitlines():
            if line.startswith("images.sh: ") and " bytes" not in line:
                print(line[:200], flush=True)
        print("IMAGE build: scripts/images.sh took %.0f s" % took, flush=True)
        base = re.search(r"base image (\S+)", r.stdout)
        cls.base = base.group(1) if base else None
        for t, image in cls.images.items():
            size = int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout)
            extra = ""
            if cls.base:
                b = int(podman("image", "inspect", "--format", "{{.Size}}", cls.base).stdout)
                extra = " (base %s %.1f MB + %.1f MB)" % (cls.base, b / 1e6, (size - b) / 1e6)
            print("IMAGE %s %d bytes = %.1f MB%s" % (image, size, size / 1e6, extra), flush=True)

    def run_container(self, ns, name, image, opts, args=()):
        """`podman run -d --network host` inside ns, the namespace's resolv.conf as the node's
        (hostNetwork with dnsPolicy Default); removed at cleanup. Returns the name.

        nsenter --net, not `ip netns exec`: the latter also remounts /sys for the namespace, which
        hides the cgroup mounts runc needs ("no cgroup mount found in mountinfo")."""
        resolv = os.path.join("/etc/netns", ns.name, "resolv.conf")
        if os.path.exists(resolv):
            opts = ["-v", resolv + ":/etc/resolv.conf:ro"] + list(opts)
        cmd = ["nsenter", "--net=/run/netns/" + ns.name] + PODMAN + \
            ["run", "-d", "--name", name, "--network", "host"] + RUN_OPTS + list(opts) + \
            [image] + list(args)
        self.addCleanup(subprocess.run, PODMAN + ["rm", "-f", "-t", "0", name],
                        capture_output=True, timeout=60)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("%s: exit %d\n%s" % (" ".join(cmd), r.returncode, r.stderr))
        return name

    def state(self, name):
        return json.loads(podman("inspect", "--format", "{{json .State}}", name).stdout)

    def logs(self, name):
        r = podman("logs", name, check=False)
        return "container %s log:\n%s%s" % (name, r.stdout[-6000:], r.stderr[-6000:])

    def stop(self, name):
        """podman stop (SIGTERM, then SIGKILL after 30 s as the pods' grace period); exit code."""
        podman("stop", "-t", "30", name, timeout=60)
        return self.state(name)["ExitCode"]

    # ------------------------------------------------------------------------------------------

    def test_contents(self):
        for target, image in self.images.items():
            out = in_image(image, "-version").strip()
            self.assertEqual(out, "nodelocaldns %s %s (%s)" % (target, self.tag, self.revision))
        if self.base:
            base_packages = packages(self.base)
        for target, image in self.images.items():
            binary = "/" + target
            ldd = in_image(image, binary, entrypoint="ldd")
            self.assertNotIn("not found", ldd, "%s: %s" % (image, ldd))
            tools = in_image(image, "-c", "for t in cc gcc g++ c++ clang ld as make cmake ninja; "
                             "do command -v $t; done; true", entrypoint="/bin/sh")
            self.assertEqual(tools.strip(), "", "%s holds build tools" % image)
            have = packages(image)
            self.assertEqual([p for p in have if p.endswith("-dev")], [], image)
            if not self.base:
                continue
            # What the build added to the base must be needed: the owners of the libraries the
            # binary loads (and iptables for node-cache) and their dependencies.
            # (dpkg knows some libraries by their /usr/lib path, ldd prints /lib: ask for both)
            owners = in_image(image, "-c", "for l in $(ldd %s | awk '$2 == \"=>\" {print $3}'); "
                              "do dpkg -S $l 2>/dev/null || dpkg -S $(readlink -f $l); done | "
                              "cut -d: -f1" % binary, entrypoint="/bin/sh").split()
            self.assertIn("libc6", owners, "%s: owners of %s's libraries" % (image, binary))
            roots = set(owners) | ({"iptables"} if target == "node-cache" else set())
            if target == "node-cache":
                # dlopen()ed by the template plugin (only for Corefiles with template records),
                # so ldd cannot see it: it must be there, loadable, and counts as needed.
                zs = in_image(image, "-c", "ls /usr/lib/*/libzscanner.so.4", entrypoint="/bin/sh")
                self.assertIn("libzscanner.so.4", zs, "%s: the template plugin's libzscanner" % image)
                roots.add("libzscanner4")
            deps = in_image(image, "depends", "--recurse", "--installed", "--no-recommends",
                            "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces",
                            "--no-enhances", *sorted(roots), entrypoint="apt-cache",
                            ).split()
            needed = roots | {re.sub(r":.*$", "", d.strip("<>")) for d in deps
                              if not d.endswith(":")}
            added = have - base_packages
            self.assertTrue(added, "%s adds no package to its base" % image)
            self.assertEqual(sorted(added - needed), [],
                             "%s: packages added to the base that %s does not need (needed: %s)"
                             % (image, binary, sorted(needed & added)))
            print("IMAGE %s adds %s" % (image, " ".join(sorted(added))), flush=True)
        user = podman("image", "inspect", "--format", "{{.Config.User}}",
                      self.images["ovn-localdns-controller"]).stdout.strip()
        self.assertEqual(user, "65534:65534")
        self.assertEqual(in_image(self.images["ovn-localdns-controller"], "-u",
                                  entrypoint="id").strip(), "65534")
        self.assertEqual(in_image(self.images["node-cache"], "-u", entrypoint="id").strip(), "0")

    def test_manifest_commands_exist_in_images(self):
        deploy = os.path.join(SOURCE_DIR, "deploy")
        for directory in sorted(os.listdir(deploy)):
            path = os.path.join(deploy, directory, "kustomization.yaml")
            if not os.path.isfile(path):
                continue
            with open(path) as f:
                if re.search(r"^kind:\s*Component\b", f.read(), re.M):
                    continue  # rendered only as part of the kustomizations that use it
            docs = s.kustomize(os.path.join(deploy, directory))
            self.assertIsNotNone(docs, "kubectl kustomize deploy/%s" % directory)
            for d in docs:
                pod = (d.get("spec") or {}).get("template", {}).get("spec")
                if not pod:
                    continue
                for c in pod.get("containers", []) + pod.get("initContainers", []):
                    repo = c["image"].split("@")[0].rsplit(":", 1)[0].rsplit("/", 1)[-1]
                    if repo not in self.images:
                        continue
                    image = self.images[repo]
                    command = c.get("command") or json.loads(podman(
                        "image", "inspect", "--format", "{{json .Config.Entrypoint}}",
                        image).stdout)
                    r = podman("run", "--rm", "--network", "none", *RUN_OPTS, "--entrypoint",
                               "/bin/sh", image, "-c", 'test -x "$1"', "sh", command[0],
                               check=False)
                    self.assertEqual(r.returncode, 0,
                                     "deploy/%s: container %s runs %s, which image %s lacks"
                                     % (directory, c["name"], command[0], image))

    def test_node_cache_daemonset(self):
        container, pod = container_spec("kube-ovn", "DaemonSet")
        self.assertTrue(pod.get("hostNetwork"), "the DaemonSet runs with host networking")
        docs = s.kustomize(os.path.join(SOURCE_DIR, "deploy", "kube-ovn"))
        configmaps = {d["metadata"]["name"]: d["data"] for d in docs
                      if d.get("kind") == "ConfigMap"}
        tmp = self.make_tmp("nld-img-")
        ns = self.start_ns(addresses=(s.CLUSTER_DNS, s.UPSTREAM_SVC_IP),
                           resolv_conf="nameserver 127.0.0.1\n")
        self.start_knot(listen=[(s.CLUSTER_DNS, 53), (s.UPSTREAM_SVC_IP, 53), ("127.0.0.1", 53)],
                        netns=ns)

        # The pod's volumes: ConfigMaps as files, hostPaths as the manifest has them except the
        # statedir, which would be shared with every other test on this host.
        volumes = {}
        for v in pod.get("volumes", []):
            path = os.path.join(tmp, "vol-" + v["name"])
            if "configMap" in v:
                data = configmaps.get(v["configMap"]["name"], {})
                items = v["configMap"].get("items") or [{"key": k, "path": k} for k in data]
                os.makedirs(path)
                for it in items:
                    with open(os.path.join(path, it["path"]), "w") as f:
                        f.write(data[it["key"]].replace("__PILLAR__DNS__DOMAIN__",
                                                        "cluster.local"))
            elif "hostPath" in v and v["hostPath"]["path"] == "/run/xtables.lock":
                path = "/run/xtables.lock"
                if not os.path.exists(path):  # type FileOrCreate
                    open(path, "a").close()
            elif "hostPath" in v:
                os.makedirs(path)
            else:
                self.fail("volume %s of an unknown type" % v["name"])
            volumes[v["name"]] = path
        mounts = [(volumes[m["name"]], m["mountPath"]) for m in container.get("volumeMounts", [])]
        self.assertIn(("/run/xtables.lock", "/run/xtables.lock"), mounts)
        self.assertIn("/etc/coredns", [m for _, m in mounts])
        opts = []
        for src, dst in mounts:
            opts += ["-v", "%s:%s" % (src, dst)]
        # Environment: literal values, the pod's UID, and what Kubernetes injects for the
        # kube-dns-upstream Service.
        env = {"KUBE_DNS_UPSTREAM_SERVICE_HOST": s.UPSTREAM_SVC_IP,
               "KUBE_DNS_UPSTREAM_SERVICE_PORT": "53"}
        for e in container.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
            elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.uid":
                env[e["name"]] = str(uuid.uuid4())
        for k, v in env.items():
            opts += ["-e", "%s=%s" % (k, v)]
        opts += security_opts(container)
        self.assertIn("NET_ADMIN", opts)
        args = [expand(a, env) for a in container.get("args", [])]
        name = "nld-img-nc-%d" % os.getpid()
        self.run_container(ns, name, self.images["node-cache"], opts, args)

        def serving():
            st = self.state(name)
            if not st["Running"]:
                raise AssertionError("node-cache container exited with %s\n%s"
                                     % (st["ExitCode"], self.logs(name)))
            r = ns.run(["kdig", "+time=1", "+retry=0", "@" + s.LOCAL_V4,
                        "kubernetes.default.svc.cluster.local", "A"], timeout=5)
            return "->>HEADER<<-" in r.stdout
        try:
            h.wait_until(serving, 30, interval=0.2, what="the container's first answer")
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.logs(name)))

        for proto in ("udp", "tcp"):
            for qname, rdtype, want in (
                    ("kubernetes.default.svc.cluster.local", "A", {"10.96.0.1"}),
                    ("10.0.96.10.in-addr.arpa", "PTR", {"kube-dns.kube-system.svc.cluster.local."}),
                    ("www.example.test", "A", {"192.0.2.10", "192.0.2.11"})):
                m = ns.dns(qname, rdtype, s.LOCAL_V4, 53, proto)
                what = "%s %s @%s/%s\n%s" % (qname, rdtype, s.LOCAL_V4, proto, m)
                self.assertEqual(m.rcode(), dns.rcode.NOERROR, what)
                self.assertEqual({rd.to_text() for rs in m.answer for rd in rs}, want, what)
        r = ns.run(["kdig", "+tcp", "+time=2", "+retry=0", "@" + s.LOCAL_V4,
                    "svc-7.ns-7.svc.cluster.local", "A"], timeout=10)
        self.assertIn("10.96.1.8", r.stdout, "kdig over TCP:\n" + r.stdout)

        self.wait_rules_exact(ns, s.LOCAL_V4, False, 5.0, "rules of the container\n"
                              + self.logs(name))
        status, body = ns.http_get("http://%s:8080/health" % s.LOCAL_V4)
        self.assertEqual(status, 200, "GET /health: %r" % body)
        status, body = ns.http_get("http://127.0.0.1:9253/metrics")
        self.assertEqual(status, 200, "GET :9253/metrics")
        self.assertRegex(body, r'coredns_build_info\{[^}]*revision="%s"[^}]*\} 1'
                         % re.escape(self.revision))
        self.assertRegex(body, r'coredns_build_info\{[^}]*version="%s"' % re.escape(self.tag))
        self.assertIn(s.LOCAL_V4, ns.addresses(s.LINK), "local IP on the link")

        code = self.stop(name)
        self.assertEqual(code, 0, "exit code after podman stop\n" + self.logs(name))
        self.assertEqual(ns.nodelocal_rules(), [], "rules left after stop\n" + self.logs(name))
        self.assertNotIn(s.LOCAL_V4, ns.addresses(s.LINK), "address left after stop")
        self.assertTrue(ns.link_exists(s.LINK), "the node's link must stay")

    def test_controller_deployment(self):
        container, pod = container_spec("ovn-localdns-controller", "Deployment")
        self.assertTrue(pod.get("hostNetwork"), "the Deployment runs with host networking")
        tmp = self.make_tmp("nld-img-ovn-")
        ns = self.start_ns(addresses=(NB_IP,), veth=False)
        # A real ovsdb-server with OVN's NB schema in the namespace, on TCP as ovn-central serves
        # it (the controller runs as nobody: no unix socket in a root-only temp dir); ovn-nbctl
        # drives it through its unix socket.
        nb = ovn.Nb(tmp)
        log = open(os.path.join(tmp, "nb-server.out"), "w")
        self.addCleanup(log.close)
        nb.proc = subprocess.Popen(
            ns.prefix() + ["ovsdb-server", "--remote=punix:" + nb.sock,
                           "--remote=ptcp:%d:%s" % (NB_PORT, NB_IP), "--unixctl=" +
                           os.path.join(tmp, "nb.ctl"), "--no-chdir",
                           "--log-file=" + os.path.join(tmp, "ovsdb-server.log"), nb.db],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=h.die_with_parent)
        h.track(nb.proc, "ovsdb-server")
        self.addCleanup(nb.stop)
        h.wait_until(lambda: subprocess.run(nb.nbctl_cmd("show"), capture_output=True,
                                            timeout=15).returncode == 0,
                     15, interval=0.1, what="ovsdb-server answering")
        nb.kube_ovn_base()
        nb.add_node("node1", ip4="100.64.0.2")
        nb.add_node("node2", ip4="100.64.0.3")

        # What Kubernetes injects for Kube-OVN's ovn-nb Service, then the manifest's own values;
        # an NB address written in the manifest points at no test server, so it is replaced.
        env = {"OVN_NB_SERVICE_HOST": NB_IP, "OVN_NB_SERVICE_PORT": str(NB_PORT)}
        for e in container.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
        if "OVN_NB_ADDR" in env:
            env["OVN_NB_ADDR"] = "tcp:[%s]:%d" % (NB_IP, NB_PORT)
        args = [expand(a, env) for a in container.get("args", [])]
        self.assertTrue(any(a.startswith("--ovn-nb-addr=tcp:[%s]:%d" % (NB_IP, NB_PORT))
                            for a in args), "NB address from the environment: %s" % args)
        opts = security_opts(container)
        for k, v in env.items():
            opts += ["-e", "%s=%s" % (k, v)]
        name = "nld-img-ctl-%d" % os.getpid()
        self.run_container(ns, name, self.images["ovn-localdns-controller"], opts, args)

        dns_ip = next(a.split("=", 1)[1] for a in args if a.startswith("--node-local-dns-ip="))
        expected = [ovn.expected_policy(n, 4, dns_ip, j)
                    for n, j in (("node1", "100.64.0.2"), ("node2", "100.64.0.3"))]

        def converged():
            st = self.state(name)
            if not st["Running"]:
                raise AssertionError("controller container exited with %s\n%s"
                                     % (st["ExitCode"], self.logs(name)))
            return ovn.converged(nb, expected)
        try:
            h.wait_until(converged, 30, interval=0.2, what="the controller's policies")
        except AssertionError as e:
            raise AssertionError("%s\nNB policies: %s\n%s"
                                 % (e, nb.local_dns_policies(), self.logs(name)))
        self.assertEqual(nb.option(), dns_ip)
        port = re.search(r"--metrics-addr=\S*:(\d+)", " ".join(args))
        if port:
            status, body = ns.http_get("http://127.0.0.1:%s/healthz" % port.group(1))
            self.assertEqual(status, 200, "GET /healthz: %r" % body)
        code = self.stop(name)
        self.assertEqual(code, 0, "exit code after podman stop\n" + self.logs(name))


if __name__ == "__main__":
    s.run_tests()
