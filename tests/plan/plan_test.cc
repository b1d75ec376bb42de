// Compiling a Corefile into a Plan: what the plan refuses that the Corefile reader accepts
// (every refusal names the file and line of the block, or of the directive when the plugin
// knows it), and what it compiles for the data path. The data path itself: tests/server.
#include "plan/plan.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "common/log.h"
#include "config/corefile.h"
#include "support/capture_stdout.h"
#include "support/temp_dir.h"

namespace nld::plan {
namespace {

/// buildPlan's error for `text` (file "Corefile"), or "" if the plan was built. No forward
/// observers: the plan does not need the server's metrics.
std::string refusal(const std::string& text) {
  try {
    buildPlan(config::parseCorefile(text, "Corefile"), 1, nullptr);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

/// `what` is found in `error`, which starts with `where`.
void expectRefused(const std::string& error, const std::string& where, const std::string& what) {
  EXPECT_EQ(error.rfind(where + ": ", 0), 0u) << error;
  EXPECT_NE(error.find(what), std::string::npos) << error;
}

TEST(PlanRefusal, RewriteWithHostsOrTemplateInOneBlockNamesTheBlock) {
  // CoreDNS runs rewrite before template and hosts; ours would not hand them the rewritten name,
  // so the combination is refused at load instead of answering from the client's name.
  for (const auto& [other, plugin] :
       {std::pair<std::string, std::string>{"hosts {\n  10.0.0.1 a.example.\n }", "hosts"},
        {"template IN A {\n  rcode NXDOMAIN\n }", "template"}}) {
    // The refused block is the second one, on line 4.
    const std::string text =
        "a.:53 {\n forward . 127.0.0.1:9\n}\n"
        ".:53 {\n rewrite name a.example. b.example.\n " +
        other + "\n forward . 127.0.0.1:9\n}\n";
    expectRefused(refusal(text), "Corefile:4",
                  "plugin/rewrite: rewrite together with " + plugin +
                      " in one server block is not supported");
  }
  // Each alone, or in separate blocks, loads.
  EXPECT_EQ(refusal("a.:53 {\n rewrite name x.a. y.a.\n forward . 127.0.0.1:9\n}\n"
                    "b.:53 {\n hosts {\n  10.0.0.1 h.b.\n }\n}\n"
                    "c.:53 {\n template IN A {\n  rcode NXDOMAIN\n }\n}\n"),
            "");
}

TEST(PlanRefusal, ForwardNextAndFailoverNameTheBlock) {
  // Read by the Corefile reader (CoreDNS >= 1.11.4 syntax) but not implemented by the forwarder.
  expectRefused(refusal("# comment\n\nexample.org:53 {\n forward . 127.0.0.1:9 {\n  next NXDOMAIN\n"
                        " }\n}\n"),
                "Corefile:3", "plugin/forward: 'next' is not supported by nodelocaldns");
  expectRefused(refusal(".:53 {\n forward . 127.0.0.1:9 {\n  failover SERVFAIL\n }\n}\n"),
                "Corefile:1", "plugin/forward: 'failover' is not supported by nodelocaldns");
}

TEST(PlanRefusal, AnUnreadableHostsFileNamesTheHostsLine) {
  // A path through a regular file: stat fails with ENOTDIR, not "does not exist" (a warning).
  test::TempDir dir("nld-plan-test-");
  const std::string file = dir.write("plain", "10.0.0.1 a.example.\n");
  const std::string error = refusal(".:53 {\n forward . 127.0.0.1:9\n hosts " + file +
                                    "/hosts example. {\n  fallthrough\n }\n}\n");
  expectRefused(error, "Corefile:3", "plugin/hosts: unable to access hosts file");
  // A file that does not exist is only warned about (CoreDNS: it may appear later).
  EXPECT_EQ(refusal(".:53 {\n hosts " + dir.file("absent") + " example.\n}\n"), "");
}

TEST(PlanRefusal, TheBlockOfAnImportedFileIsNamed) {
  test::TempDir dir("nld-plan-test-");
  const std::string imported = dir.write("blocks.conf",
                                         "# imported\nexample.org:53 {\n forward . 127.0.0.1:9 {\n"
                                         "  next NXDOMAIN\n }\n}\n");
  expectRefused(refusal("import " + imported + "\n"), imported + ":2",
                "plugin/forward: 'next' is not supported");
}

TEST(PlanRefusal, WarningsDoNotRefuse) {
  // Parsed but only partly implemented: custom log formats and the `write` timeout are warned
  // about, with the block's file:line, and the plan is built.
  log::init(false);
  std::string out;
  {
    test::CaptureStdout cap;
    EXPECT_EQ(refusal("\n.:53 {\n log . \"{name}\"\n timeouts {\n  write 5s\n }\n"
                      " forward . 127.0.0.1:9\n}\n"),
              "");
    out = cap.text();
  }
  EXPECT_NE(out.find("[WARNING] Corefile:2: plugin/log: custom names, formats and classes are "
                     "not implemented"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("[WARNING] Corefile:2: plugin/timeouts: 'write' has no deadline"),
            std::string::npos)
      << out;
}

TEST(Plan, ListenersBlocksAndForwardSettings) {
  auto plan = buildPlan(
      config::parseCorefile("cluster.local:53 {\n bind 127.0.0.1\n cache 30\n"
                            " forward . 127.0.0.1:9 127.0.0.2:9 {\n  max_concurrent 10\n }\n}\n"
                            ".:53 {\n bind 127.0.0.1\n forward . 127.0.0.3:9\n}\n",
                            "Corefile"),
      3, nullptr);
  ASSERT_EQ(plan->listeners.size(), 1u);
  const ListenerPlan& l = plan->listeners[0];
  EXPECT_EQ(l.server_label, "dns://127.0.0.1:53");
  ASSERT_EQ(l.zones.entries().size(), 2u);
  EXPECT_EQ(l.zones.entries()[0].text, "cluster.local.");  // longest first
  ASSERT_EQ(plan->blocks.size(), 2u);
  const BlockPlan& cluster = plan->blocks[0];
  EXPECT_EQ(cluster.zones_label, "cluster.local.");
  EXPECT_EQ(cluster.server_label, "dns://127.0.0.1:53");
  ASSERT_TRUE(cluster.cache.has_value());
  EXPECT_EQ(cluster.cache->partitions, 3u);  // one per worker
  EXPECT_FALSE(cluster.cache_identity.empty());
  ASSERT_EQ(cluster.forwards.size(), 1u);
  EXPECT_EQ(cluster.forwards[0].labels, (std::vector<std::string>{"127.0.0.1:9", "127.0.0.2:9"}));
  EXPECT_EQ(cluster.forwards[0].settings.max_concurrent, 10u);
  EXPECT_EQ(cluster.forwards[0].observer, nullptr);  // no observers given
  EXPECT_NE(cluster.forwards[0].shared, nullptr);
  const BlockPlan& root = plan->blocks[1];
  EXPECT_FALSE(root.cache.has_value());
  EXPECT_TRUE(root.cache_identity.empty());
  ASSERT_EQ(root.forwards.size(), 1u);
  EXPECT_EQ(root.forwards[0].settings.max_concurrent, kDefaultMaxConcurrent);
}

}  // namespace
}  // namespace nld::plan
