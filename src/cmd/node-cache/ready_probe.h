#pragma once
// `node-cache -probe-ready ADDR`: the DaemonSet's readiness probe (exec). It asks the DNS server
// on ADDR (ip:port, e.g. 169.254.20.10:53) the RFC 4892 identity query `id.server. CH TXT` over
// UDP and succeeds only if the answer names THIS pod's process.
//
// Why not a TCP connect or any DNS query: during a surge rollout the old and the new pod serve
// the same address (the new one took the old one's sockets over, docs/availability.md), so
// "something answers" is true of the new pod before it serves at all. node-cache answers
// `id.server.` itself (server::Pipeline) with its identity, and the probe runs in the same pod
// (same POD_UID from the downward API), so it can tell whose process answered.
//
// Starts nothing (no interface, rules, state directory or listeners): one socket, at most
// kTries × 1 s. Thread affinity: the main thread, once.
#include <string>

namespace nld::cmd {

/// The identity node-cache answers to `id.server.` / `hostname.bind.` CH TXT: $POD_UID when set
/// and non-empty (the downward API's metadata.uid: unique per pod, also across a rollout on one
/// node, where both pods share the node's hostname), else the hostname.
std::string processIdentity();

/// Runs the probe against `address` ("ip:port", "[v6]:port"); prints the outcome (one line,
/// stdout on success, stderr on failure). Returns the exit code: 0 ready, 1 not.
int probeReady(const std::string& address);

}  // namespace nld::cmd
