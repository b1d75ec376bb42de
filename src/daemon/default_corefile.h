#pragma once
// The embedded configuration of `node-cache -default-config` (README quick start): the upstream
// node-local-dns Corefile layout (cluster zone, both reverse zones and "."), served on
// 127.0.0.1:5353. With no kube-dns on a workstation, every block forwards to the machine's
// /etc/resolv.conf; the cluster block keeps the manifest's cache settings.
#include <string_view>

namespace nld::daemon {

inline constexpr std::string_view kDefaultCorefile = R"(cluster.local:5353 {
    errors
    cache {
            success 9984 30
            denial 9984 5
    }
    loop
    bind 127.0.0.1
    forward . /etc/resolv.conf
    prometheus 127.0.0.1:9253
    health 127.0.0.1:8080
    }
in-addr.arpa:5353 {
    errors
    cache 30
    loop
    bind 127.0.0.1
    forward . /etc/resolv.conf
    prometheus 127.0.0.1:9253
    }
ip6.arpa:5353 {
    errors
    cache 30
    loop
    bind 127.0.0.1
    forward . /etc/resolv.conf
    prometheus 127.0.0.1:9253
    }
.:5353 {
    errors
    cache 30
    loop
    bind 127.0.0.1
    forward . /etc/resolv.conf
    prometheus 127.0.0.1:9253
    }
)";

}  // namespace nld::daemon
